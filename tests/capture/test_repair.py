"""`stpe repair` on sessions cut short: every byte kept, every readable frame recovered,
the frame table matching the video; and the real thing, `stpe record` killed with -9."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from capture import (
    Session,
    SessionError,
    SessionWriter,
    SimulatedPlugin,
    now_anchor,
    repair_session,
)
from capture._layout import EVENTS, FRAMES, STATE, SYNC, VIDEO
from capture._repair import DAMAGED_VIDEO, LOST_FRAMES
from capture._video import VideoWriter
from pipeline.cli import cli
from tests.conftest import make_sample

N_FRAMES = 45
STEP_NS = 33_333_333


def _colour(i: int) -> tuple[int, int, int]:
    return (i * 5 % 256, 255 - i * 5 % 256, 60)


def _crashed_session(tmp_path, *, keep_video: float = 0.6) -> SessionWriter:
    """A session as a killed recorder leaves it: status "recording", a video cut at
    `keep_video` of its length, a torn state line, a sync record missing its newline."""
    writer = SessionWriter.create(tmp_path, "s")
    t0 = now_anchor()
    writer.update_manifest(video_start=t0, notes={"recorder_pid": 2**22 + 7})
    with VideoWriter(writer.path / VIDEO, 64, 48, fps_hint=30) as video:
        for i in range(N_FRAMES):
            pts = video.write(np.full((48, 64, 3), _colour(i), np.uint8), i * STEP_NS // 1000)
            start = t0.host_mono_ns + i * STEP_NS
            writer.append_frames([{"index": i, "pts_us": pts, "grab_start_ns": start,
                                   "grab_end_ns": start + 1_000_000,
                                   "wall_ns": t0.host_wall_ns + i * STEP_NS,
                                   "dropped_before": 0}])
    writer.append_state(orjson.dumps({"seq": s, "arrival_mono_ns": t0.host_mono_ns + s,
                                      "arrival_wall_ns": t0.host_wall_ns + s,
                                      "sample": make_sample(s, s / 60)}) for s in range(20))
    writer.close()
    data = (writer.path / VIDEO).read_bytes()
    (writer.path / VIDEO).write_bytes(data[: int(len(data) * keep_video)])
    with open(writer.path / STATE, "ab") as f:
        f.write(b'{"seq": 20, "arrival_mono_ns": 12')
    with open(writer.path / SYNC, "ab") as f:
        f.write(b'{"kind": "anchor", "client": 1.5, "wall_ms": 1700000000000}')
    return writer


def _digest(root) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_repair_keeps_every_byte_and_reconciles_frames_with_the_video(tmp_path):
    writer = _crashed_session(tmp_path)
    root = writer.path
    damaged_bytes = (root / VIDEO).read_bytes()
    rows_before = (root / FRAMES).read_bytes()

    report = repair_session(root)

    assert report.torn_bytes == {STATE: len(b'{"seq": 20, "arrival_mono_ns": 12')}
    assert (root / (STATE + ".torn")).read_bytes() == b'{"seq": 20, "arrival_mono_ns": 12\n'
    assert report.completed_lines == (SYNC,)
    session = Session.open(root)
    assert session.sync_records()[-1] == {"kind": "anchor", "client": 1.5,
                                          "wall_ms": 1700000000000}
    assert [r["seq"] for r in session.state_records()] == list(range(20)) and report.samples == 20
    assert (root / DAMAGED_VIDEO).read_bytes() == damaged_bytes

    kept = session.read_frames().to_pylist()
    lost = [orjson.loads(line) for line in (root / LOST_FRAMES).read_bytes().splitlines()]
    assert [orjson.dumps(r) for r in kept + lost] == rows_before.splitlines()  # nothing lost
    assert report.video == "remuxed" and 5 < report.frames_decodable < N_FRAMES
    assert len(kept) == report.frames_decodable
    assert list(report.lost_frames) == [r["index"] for r in lost] == list(
        range(len(kept), N_FRAMES))
    frames = list(session.iter_frames())
    assert [f.index for f in frames] == [r["index"] for r in kept]
    for frame in frames:
        mean = frame.image.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, _colour(frame.index), atol=6)

    assert session.manifest.status == "recovered"
    assert session.manifest.stopped.host_mono_ns == (
        session.manifest.video_start.host_mono_ns + (N_FRAMES - 1) * STEP_NS)
    assert [e["kind"] for e in session.events()][-2:] == ["repair", "stop"]

    after = _digest(root)
    again = repair_session(root)
    assert again.already_recovered and again.frames_decodable == len(kept)
    assert _digest(root) == after  # idempotent


def test_corrupt_or_hostile_lines_inside_a_log_move_to_torn_in_order(tmp_path):
    writer = _crashed_session(tmp_path, keep_video=1.0)
    events = (writer.path / EVENTS).read_bytes()
    (writer.path / EVENTS).write_bytes(events + b"\x00\xffnot json\n" + events)
    frames = (writer.path / FRAMES).read_bytes().splitlines(keepends=True)
    hostile = [b'{"index": "x", "pts_us": 0}', b'{"index": 3, "pts_us": -5}', b"[1, 2]",
               b'{"index": 1e400}', b'"' + b"A" * 100_000 + b'"']
    (writer.path / FRAMES).write_bytes(b"".join(frames[:3]) + b"\n".join(hostile) + b"\n"
                                       + b"".join(frames[3:]))
    report = repair_session(writer.path)
    assert report.torn_bytes[EVENTS] == len(b"\x00\xffnot json")
    assert report.torn_bytes[FRAMES] == sum(len(h) for h in hostile)
    assert (writer.path / (FRAMES + ".torn")).read_bytes() == b"\n".join(hostile) + b"\n"
    assert report.lost_frames == () and report.frames_decodable == N_FRAMES
    session = Session.open(writer.path)
    assert session.read_frames()["index"].to_pylist() == list(range(N_FRAMES))
    assert [e["kind"] for e in session.events()] == ["start", "start", "repair", "stop"]


def test_refusals_change_nothing(tmp_path):
    complete = SessionWriter.create(tmp_path, "done")
    complete.finalize()
    before = _digest(complete.path)
    assert repair_session(complete.path).intact  # checked in place, nothing to do
    assert _digest(complete.path) == before

    (tmp_path / "plain").mkdir()
    with pytest.raises(SessionError, match="not a session"):
        repair_session(tmp_path / "plain")
    (tmp_path / "plain" / "session.json").write_bytes(b'{"schema": "stpe.session/1", "sess')
    with pytest.raises(SessionError, match="not a valid manifest"):
        repair_session(tmp_path / "plain")

    writer = _crashed_session(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "stpe"])
    try:
        writer.update_manifest(notes={"recorder_pid": live.pid})
        before = _digest(writer.path)
        with pytest.raises(SessionError, match=f"still being recorded by process {live.pid}"):
            repair_session(writer.path)
        assert _digest(writer.path) == before
        assert repair_session(writer.path, force=True).video == "remuxed"
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("video", [b"", b"\x1a\x45\xdf\xa3 garbage" * 10])
def test_an_unreadable_video_is_kept_and_every_frame_reported_lost(tmp_path, video):
    writer = _crashed_session(tmp_path)
    (writer.path / VIDEO).write_bytes(video)
    report = repair_session(writer.path)
    assert report.video == "unreadable" and report.lost_frames == tuple(range(N_FRAMES))
    assert (writer.path / DAMAGED_VIDEO).read_bytes() == video
    assert not (writer.path / VIDEO).exists()
    assert Session.open(writer.path).read_frames().num_rows == 0


def test_stpe_repair_prints_a_summary(tmp_path):
    writer = _crashed_session(tmp_path)
    result = CliRunner().invoke(cli, ["repair", str(writer.path)])
    assert result.exit_code == 0, result.output
    assert "state.jsonl: 33 bytes of torn or corrupt lines kept in state.jsonl.torn" in (
        result.stdout)
    assert f"session recovered: {writer.path}" in result.stdout
    again = CliRunner().invoke(cli, ["repair", str(writer.path)])
    assert "was already recovered; nothing to do" in again.stdout


@pytest.mark.x11
def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stpe_record_killed_with_sigkill_is_recovered(display, xvfb, tmp_path):
    env = {**os.environ, "DISPLAY": xvfb.display}
    recorder = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "record", "--out", str(tmp_path), "--port", "0",
         "--fps", "30"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        lines = []
        while not lines or not lines[-1].startswith(b"plugin address: "):
            line = recorder.stdout.readline()
            assert line, f"stpe record exited early: {lines}"
            lines.append(line)
        url = lines[-1].split(b": ", 1)[1].strip().decode()
        plugin = SimulatedPlugin(url, timeout_s=0.5).start()
        plugin.play(1.5)
        time.sleep(0.3)  # let the last batch be acknowledged
        acknowledged = plugin.stored_through
        children = _children(recorder.pid)
        assert children  # the batch validation process, at least
        killed_ns = time.perf_counter_ns()
        recorder.send_signal(signal.SIGKILL)
        recorder.wait()
        plugin.stop()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "processes outlived stpe record"
    finally:
        recorder.kill()
        recorder.wait()
        recorder.stdout.close()

    (path,) = tmp_path.iterdir()
    assert Session.open(path).manifest.status == "recording"
    result = CliRunner().invoke(cli, ["repair", str(path)])
    assert result.exit_code == 0, result.output
    session = Session.open(path)
    assert session.manifest.status == "recovered"
    assert acknowledged >= 45  # of 90 samples submitted
    seqs = {r["seq"] for r in session.state_records()}
    assert set(range(acknowledged + 1)) <= seqs
    frames = list(session.iter_frames())
    table = session.read_frames()
    assert len(frames) == table.num_rows > 0
    last_grab = table["grab_start_ns"].to_pylist()[frames[-1].index]
    assert killed_ns - last_grab < 1_000_000_000


def test_stpe_repair_refuses_what_is_not_a_crashed_session(tmp_path):
    missing = CliRunner().invoke(cli, ["repair", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "file").write_bytes(b"x")
    a_file = CliRunner().invoke(cli, ["repair", str(tmp_path / "file")])
    assert a_file.exit_code == 2 and "is a file" in a_file.output
    complete = SessionWriter.create(tmp_path, "done")
    complete.finalize()
    result = CliRunner().invoke(cli, ["repair", str(complete.path)])
    assert result.exit_code == 0 and "every log line is whole; nothing to do" in result.output
