"""Every command at 80 columns, as a new user meets it: the work itself and the usual
mistakes. Nothing may be wider than the terminal, and no mistake may show a traceback."""

from __future__ import annotations

import shutil

import orjson
import pytest

from alignment import simulate_capture
from capture import Session
from tests.alignment._sessions import write_session
from tests.pipeline.demo_session import labelled_demo_session
from tests.pipeline.terminal import COLUMNS, in_terminal

HIDE = """
import sys
class Hidden:  # an environment without an extra: importing {module} fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "{module}":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hidden())
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("tty")
    labelled_demo_session(root / "sessions", count=10)
    (root / "empty").mkdir()
    (root / "taken").mkdir()
    (root / "taken" / "mine.txt").write_text("keep")
    return root


def _check(screen, code: int, *fragments: str, json: bool = False) -> None:
    assert screen.code == code, screen.text
    wide = [line for line in screen.lines if len(line) > COLUMNS and not json]
    assert not wide, f"lines over {COLUMNS} columns: {wide}"
    assert "Traceback" not in screen.text, screen.text
    for fragment in fragments:
        assert fragment in screen.flat, screen.text


def test_a_session_through_align_labels_export_render_view(work):
    session = work / "sessions" / "demo"
    _check(in_terminal("align", work / "sessions"), 0, "10/10 matched",
           f"next: stpe labels {session}")
    _check(in_terminal("labels", session), 0, "10 frames (10 with state)",
           f"next: stpe export {session} --format lerobot --out DATASET")
    _check(in_terminal("export", session, "--format", "parquet", "--out", work / "pq"), 0,
           f"wrote {work / 'pq'} (parquet)")
    _check(in_terminal("render", session, "--out", work / "o.mp4"), 0,
           f"overlay: 10 frames -> {work / 'o.mp4'}")
    _check(in_terminal("view", session, "--out", work / "v.rrd"), 0,
           "10 frames, 10 images", f"saved to {work / 'v.rrd'}")
    _check(in_terminal("plugin", "build", "--out", work / "p.rbxmx"), 0, "built")
    _check(in_terminal("--help"), 0, "Exit codes")
    for name in ("record", "align", "labels", "export", "view", "annotate", "repair"):
        _check(in_terminal(name, "--help"), 0, "--json", "-q, --quiet")


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["labels", "{work}/empty"], 2, "is not a session (session.json is missing) and holds "
                                    "no sessions"),
    (["align", "{work}/nowhere"], 2, "does not exist"),
    (["export", "{work}/sessions", "--format", "lerobot", "--out", "{work}/taken"], 2,
     "already exists; pass --overwrite"),
    (["export", "{work}/sessions", "--format", "tfrecord", "--out", "{work}/x"], 2,
     "'tfrecord' is not one of"),
    (["render", "{work}/sessions", "{work}/sessions/demo", "--out", "{work}/r.mp4"], 0,
     "overlay: 10 frames"),  # the same session twice is one session
    (["view", "{work}/sessions", "--out", "{work}/taken"], 2, "is a directory"),
    (["view", "{work}/sessions", "{work}/sessions", "--out", "{work}/taken/mine.txt"], 2,
     "exists; pass --overwrite"),
    (["annotate", "{work}/sessions", "--stages", "paint"], 2, "unknown stage(s) paint"),
    (["simulate", "--url", "http://127.0.0.1:9", "--seconds", "0.2"], 1,
     "is `stpe record` running?"),
    (["demo", "--seconds", "0"], 1, "--seconds must be in (0, 3600]"),
    (["frobnicate"], 2, "No such command 'frobnicate'"),
    (["align", "{work}/sessions", "-q", "--tolerance-ms", "-1"], 1,
     "tolerance must be positive"),
])
def test_mistakes_get_one_clear_message(work, args, code, fragment):
    screen = in_terminal(*(a.format(work=work) for a in args))
    _check(screen, code, fragment)
    assert (work / "taken" / "mine.txt").read_text() == "keep"


def test_export_without_the_export_extra_names_it(work):
    screen = in_terminal("export", work / "sessions", "--format", "lerobot", "--out",
                         work / "lr", prelude=HIDE.format(module="pandas"))
    _check(screen, 3, "pandas is not installed", "'export' extra",
           "pip install -e '.[export]'")
    assert not (work / "lr").exists()


def test_serve_without_the_serve_extra_names_it(work):
    screen = in_terminal("serve", "--sessions", work / "sessions", "--port", "0",
                         "--no-browser", prelude=HIDE.format(module="duckdb"))
    _check(screen, 3, "duckdb is not installed", "'serve' extra", "pip install -e '.[serve]'")
    assert not (work / "sessions" / ".stpe-serve").exists()


def test_errors_are_json_too_under_json(work):
    screen = in_terminal("labels", work / "empty", "--json")
    _check(screen, 2, json=True)  # a JSON document's strings are never broken
    start = screen.text.index("{")
    document = orjson.loads(screen.text[start:screen.text.rindex("}") + 1])
    assert document["exit_code"] == 2 and "holds no sessions" in document["error"]


def test_align_refuses_a_killed_session_and_names_repair(work, tmp_path):
    session = shutil.copytree(work / "sessions" / "demo", tmp_path / "killed")
    manifest = orjson.loads((session / "session.json").read_bytes())
    manifest["status"] = "recording"
    (session / "session.json").write_bytes(orjson.dumps(manifest))
    before = (session / "aligned.parquet").read_bytes()
    _check(in_terminal("align", session), 1, "still marked 'recording'",
           f"stpe repair {session}")
    assert (session / "aligned.parquet").read_bytes() == before


def test_align_without_video_keeps_a_timecode_alignment(work, tmp_path):
    session = shutil.copytree(work / "sessions" / "demo", tmp_path / "novideo")
    _check(in_terminal("align", session), 0, "timecode 10")
    aligned = (session / "aligned.parquet").read_bytes()
    (session / "video.mkv").unlink()
    _check(in_terminal("align", session), 1, "has no video.mkv",
           "matched 10 frames by their timecode", "--overwrite")
    assert (session / "aligned.parquet").read_bytes() == aligned
    screen = in_terminal("align", session, "--overwrite")
    _check(screen, 0, "has no video.mkv: frames are matched by the fitted clock only")
    report = orjson.loads(Session.open(session).file("alignment").read_bytes())
    assert report["methods"].get("timecode", 0) == 0


def test_ctrl_c_during_align_writes_nothing(tmp_path):
    sim = simulate_capture(20.0, latency_ms=25.0, seed=3)
    session = write_session(sim, tmp_path, video=True)
    screen = in_terminal("align", session,
                         interrupt_when=lambda text: "reading the timecode" in text)
    _check(screen, 130, "interrupted")
    assert not (session / "aligned.parquet").exists()
    assert not (session / "alignment.json").exists()


def test_ctrl_c_during_export_leaves_no_dataset(tmp_path):
    # long enough that the export is still running when Ctrl-C arrives on a fast machine
    labelled_demo_session(tmp_path / "sessions", count=600)
    out = tmp_path / "out" / "lerobot"
    out.parent.mkdir()
    screen = in_terminal("export", tmp_path / "sessions", "--format", "lerobot", "--out", out,
                         interrupt_when=lambda _: any(out.parent.glob(".lerobot.tmp-*")))
    _check(screen, 130, "interrupted")
    assert list(out.parent.iterdir()) == []
