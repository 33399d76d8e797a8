from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from alignment import AlignmentError, ImportFormatError, read_aligned, simulate_capture
from capture._video import VideoWriter
from pipeline.cli import cli
from tests.alignment._sessions import VIEWPORT, viewport_frame, write_session
from tests.conftest import make_sample


@pytest.fixture(scope="module")
def sim():
    return simulate_capture(3.0, latency_ms=25.0, seed=21)


@pytest.fixture(scope="module")
def external(sim, tmp_path_factory):
    """An OBS-like recording (our encoder, no session) and a bare-sample state log."""
    root = tmp_path_factory.mktemp("external")
    video = root / "play.mkv"
    with VideoWriter(video, *VIEWPORT, crf=28) as out:
        for seq, grab in zip(sim.true_seq, sim.grab_start_ns, strict=True):
            out.write(viewport_frame(int(seq)), int(grab - sim.grab_start_ns[0]) // 1000)
    log = root / "state.jsonl"
    lines = []
    for k in range(sim.seq.size):
        sample = make_sample(int(sim.seq[k]), float(sim.client_t[k]))
        sample["wall_ms"] = int(sim.wall_ms[k])
        lines.append(orjson.dumps(sample))
    log.write_bytes(b"\n".join(lines) + b"\n")
    return video, log


def _run(*args):
    return CliRunner().invoke(cli, ["align", *map(str, args)])


def test_align_session_prints_the_summary(sim, tmp_path):
    path = write_session(sim, tmp_path, video=True)
    result = _run(path)
    assert result.exit_code == 0, result.output
    assert f"{sim.true_seq.size}/{sim.true_seq.size} matched" in result.output
    assert read_aligned(path).column("seq").to_pylist() == sim.true_seq.tolist()


def test_external_video_recovers_the_start_from_the_timecode(sim, external, tmp_path):
    video, log = external
    out = tmp_path / "imported"
    result = _run("--state", log, "--video", video, "--out", out)
    assert result.exit_code == 0, result.output
    table = read_aligned(out)
    assert table.column("seq").to_pylist() == sim.true_seq.tolist()
    frame_t = table.column("t").to_numpy()
    grab = sim.grab_start_ns
    assert frame_t == pytest.approx((grab - grab[0]) / 1e9, abs=1e-3)  # container ms


def test_external_video_without_timecode_uses_the_wall_start(sim, external, tmp_path):
    video, log = external
    start = datetime.fromtimestamp(int(sim.frame_wall_ns[0]) / 1e9, UTC).isoformat()
    out = tmp_path / "walled"
    result = _run("--state", log, "--video", video, "--out", out, "--no-timecode",
                  "--video-start-wall", start, "--latency-ms", 25)
    assert result.exit_code == 0, result.output
    seq = np.array(read_aligned(out).column("seq").to_pylist())
    assert np.abs(seq - sim.true_seq).max() <= 1


def test_a_sessions_state_log_is_accepted_with_an_offset(sim, external, tmp_path):
    video, _ = external
    session = write_session(sim, tmp_path / "rec")
    offset = (sim.grab_start_ns[0] - sim.render_ns[0]) / 1e6  # video start after sample 0
    out = tmp_path / "offset"
    result = _run("--state", session / "state.jsonl", "--video", video, "--out", out,
                  "--no-timecode", "--offset-ms", offset, "--latency-ms", 25)
    assert result.exit_code == 0, result.output
    seq = np.array(read_aligned(out).column("seq").to_pylist())
    assert np.abs(seq - sim.true_seq).max() <= 1


def test_external_video_without_any_start_is_refused(external, tmp_path):
    video, log = external
    out = tmp_path / "nowhere"
    result = _run("--state", log, "--video", video, "--out", out, "--no-timecode")
    assert isinstance(result.exception, AlignmentError)
    assert "--video-start-wall" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (b'{"seq": 0, "t": 1.0, "dt": 0.01, "camera": {"cframe": [0, 0', "not a valid sample"),
    (b"[1, 2, 3]\n", "not a valid sample"),
    (b'{"seq": -4, "t": 1.0}\n', "not a valid sample"),
    (b"\n\n", "holds no samples"),
    (b"{" + b" " * (1 << 20) + b"}\n", "exceeds"),
])
def test_bad_state_logs_write_nothing(external, tmp_path, content, message):
    video, _ = external
    log = tmp_path / "bad.jsonl"
    log.write_bytes(content)
    out = tmp_path / "out" / "session"
    result = _run("--state", log, "--video", video, "--out", out)
    assert isinstance(result.exception, ImportFormatError)
    assert message in str(result.exception) and "bad.jsonl" in str(result.exception)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_not_a_video_writes_nothing(external, tmp_path):
    _, log = external
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x01garbage" * 100)
    out = tmp_path / "out"
    result = _run("--state", log, "--video", fake, "--out", out)
    assert isinstance(result.exception, ImportFormatError)
    assert "cannot read video" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


@pytest.mark.parametrize("extra, message", [
    (["--video-start-wall", "yesterday"], "not an ISO 8601"),
    (["--video-start-wall", "2026-01-01T00:00:00"], "no time zone"),
    (["--video-start-wall", "2026-01-01T00:00:00+00:00", "--offset-ms", "5"], "not both"),
])
def test_bad_start_options(external, tmp_path, extra, message):
    video, log = external
    result = _run("--state", log, "--video", video, "--out", tmp_path / "o", *extra)
    assert isinstance(result.exception, AlignmentError)
    assert message in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_usage_errors(tmp_path, external):
    _, log = external
    assert "give a SESSION" in _run().output
    tmp_path.joinpath("s").mkdir()
    result = _run(tmp_path / "s", "--state", log)
    assert result.exit_code == 2 and "not both" in result.output


def test_existing_out_is_refused(external, tmp_path):
    video, log = external
    (tmp_path / "taken").mkdir()
    result = _run("--state", log, "--video", video, "--out", tmp_path / "taken")
    assert isinstance(result.exception, AlignmentError) and "already exists" in str(
        result.exception)


def test_an_obs_video_started_before_play_is_placed_by_the_timecode(tmp_path):
    # OBS records 3 s of the editor before Play: no strip there, and the state log starts
    # at Play; the strip is first seen far past any fixed search window
    sim = simulate_capture(6.0, latency_ms=25.0, seed=22)
    t = (sim.render_ns - sim.render_ns[0]) / 1e9
    first = int(np.argmax(t >= 3.0))
    playing = sim.true_seq >= first
    video = tmp_path / "obs.mkv"
    with VideoWriter(video, *VIEWPORT, crf=28) as out:
        for seq, grab, on in zip(sim.true_seq, sim.grab_start_ns, playing, strict=True):
            out.write(viewport_frame(int(seq), strip=bool(on)),
                      int(grab - sim.grab_start_ns[0]) // 1000)
    log = tmp_path / "state.jsonl"
    lines = []
    for k in range(first, sim.seq.size):
        sample = make_sample(int(sim.seq[k]), float(sim.client_t[k]))
        sample["wall_ms"] = int(sim.wall_ms[k])
        lines.append(orjson.dumps(sample))
    log.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "obs"
    result = _run("--state", log, "--video", video, "--out", out)
    assert result.exit_code == 0, result.output
    table = read_aligned(out)
    seq = np.array(table.column("seq").fill_null(-1).to_pylist())
    method = np.array(table.column("method").to_pylist())
    assert (method[playing] == "timecode").all()
    assert np.array_equal(seq[playing], sim.true_seq[playing])
    before = sim.true_seq < first - 1
    assert (method[before] == "none").all() and before.sum() > 100


def test_whole_millisecond_wall_stamps_do_not_shift_the_clock(sim, external, tmp_path):
    video, log = external
    start = datetime.fromtimestamp(int(sim.frame_wall_ns[0]) / 1e9, UTC).isoformat()
    out = tmp_path / "wall"
    result = _run("--state", log, "--video", video, "--out", out, "--no-timecode",
                  "--video-start-wall", start, "--latency-ms", 25)
    assert result.exit_code == 0, result.output
    table = read_aligned(out)
    seq = np.array(table.column("seq").to_pylist())
    # the true residual: content time (grab - 25 ms) minus the matched sample's render time
    truth_ms = (sim.grab_start_ns - 25_000_000 - sim.render_ns[seq]) / 1e6
    shift = np.array(table.column("residual_ms").to_pylist()) - truth_ms
    assert abs(float(np.mean(shift))) < 0.3  # cutting to whole ms put samples ~1 ms early
