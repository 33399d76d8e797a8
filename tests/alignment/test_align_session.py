import numpy as np
import orjson
import pyarrow as pa
import pytest

from alignment import AlignmentError, align_session, read_aligned, simulate_capture
from capture import Session, SessionWriter
from tests.alignment._sessions import VIEWPORT, write_session

FRAME_COLUMNS = [
    ("frame_index", pa.int64()), ("t", pa.float64()), ("pts_us", pa.int64()),
    ("grab_start_ns", pa.int64()), ("content_mono_ns", pa.int64()), ("seq", pa.int64()),
    ("residual_ms", pa.float64()), ("method", pa.string()), ("matched", pa.bool_()),
    ("frame_width", pa.int32()), ("frame_height", pa.int32()),
    ("capture_scale", pa.list_(pa.float64(), 2)), ("capture_offset", pa.list_(pa.float64(), 2)),
]


@pytest.fixture(scope="module")
def timecode_session(tmp_path_factory):
    sim = simulate_capture(4.0, latency_ms=30.0, seed=3)
    path = write_session(sim, tmp_path_factory.mktemp("tc"), video=True, scale=1.25)
    return sim, path


def test_timecode_session_maps_every_frame_exactly(timecode_session):
    sim, path = timecode_session
    report = align_session(path)
    table = read_aligned(path)
    assert [(f.name, f.type) for f in table.schema][: len(FRAME_COLUMNS)] == FRAME_COLUMNS
    assert table.num_rows == sim.true_seq.size
    assert table.column("seq").to_pylist() == sim.true_seq.tolist()
    assert set(table.column("method").to_pylist()) == {"timecode"}
    assert report.timecode["decoded"] == sim.true_seq.size
    assert report.timecode["undecodable"] == 0
    # the simulated mean render-to-screen delay, within the stated bound plus the clock's
    # (the latency absorbs the clock's offset error)
    shown = sim.screen_ns >= 0
    truth_ms = float(np.mean(sim.screen_ns[shown] - sim.render_ns[shown])) / 1e6
    clock = report.clock
    assert abs(report.latency_ms - truth_ms) <= report.latency_bound_ms + \
        clock["asymmetry_bound_ms"] + 2 * clock["offset_std_ms"]
    assert 0 < report.latency_bound_ms < 1000 / 60  # one render interval at most
    assert report.capture_scale == pytest.approx((1.25, 1.25), abs=0.01)
    assert report.capture_offset == pytest.approx((0.0, 0.0), abs=1.5)
    assert table.column("frame_width")[0].as_py() == round(VIEWPORT[0] * 1.25)
    # timecode frames carry the decoded sample itself
    client_t = np.array(table.column("client_t").to_pylist())
    assert np.array_equal(client_t, sim.client_t[sim.true_seq])
    grab = sim.grab_start_ns
    assert table.column("t").to_numpy() == pytest.approx((grab - grab[0]) / 1e9)
    saved = orjson.loads((path / "alignment.json").read_bytes())
    assert saved["matched"] == report.matched == sim.true_seq.size


def test_clock_only_maps_within_one_frame_and_interpolates(tmp_path):
    sim = simulate_capture(30.0, latency_ms=20.0, drop_fraction=0.05, seed=5,
                           receiver_gap_s=(10.0, 12.0))
    path = write_session(sim, tmp_path)
    report = align_session(path, latency_ms=20.0)
    table = read_aligned(Session.open(path))
    seq = np.array(table.column("seq").to_pylist())
    assert report.methods == {"none": 0, "clock": sim.true_seq.size, "timecode": 0}
    assert np.abs(seq - sim.true_seq).max() <= 1
    assert report.video["dropped"] == int(sim.dropped_before.sum()) > 0
    assert report.state["receiver_gaps"] == 1
    assert abs(report.clock["drift_ppm"] - 100) < 4 * report.clock["drift_std_ppm"] + 5
    # make_sample moves the camera along +X at 4 studs/s of client time: linear interpolation
    # keeps position and client time consistent
    client_t = np.array(table.column("client_t").to_pylist())
    cam_x = np.array([c[0] for c in table.column("camera.cframe").to_pylist()])
    assert cam_x == pytest.approx(4 * client_t, abs=1e-9)
    assert not np.allclose(client_t, sim.client_t[seq])  # interpolated, not nearest
    assert table.column("inputs.keys")[0].as_py() == ["W"]


def test_clap_mode_measures_latency_then_maps_the_middle_by_clock(tmp_path):
    sim = simulate_capture(6.0, latency_ms=22.0, seed=13)
    t = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    clap = (t < 1.0) | (t > t[-1] - 1.0)
    path = write_session(sim, tmp_path, video=True, strip=clap)
    calls = []
    report = align_session(path, progress=lambda done, total: calls.append((done, total)))
    table = read_aligned(path)
    method = np.array(table.column("method").to_pylist())
    seq = np.array(table.column("seq").to_pylist())
    frames = table.num_rows
    assert calls == [(done, frames) for done in range(256, frames, 256)] + [(frames, frames)]
    assert report.latency_source == "timecode"
    assert report.timecode["decoded"] == int(clap.sum())
    assert (method[clap] == "timecode").all() and (method[~clap] == "clock").all()
    assert np.array_equal(seq[clap], sim.true_seq[clap])
    assert np.abs(seq[~clap] - sim.true_seq[~clap]).max() <= 1


def test_frames_beyond_tolerance_are_flagged(tmp_path):
    sim = simulate_capture(3.0, seed=7)
    path = write_session(sim, tmp_path)
    report = align_session(path, latency_ms=-200.0)  # content times 200 ms after any sample
    table = read_aligned(path)
    late = np.array(table.column("matched").to_pylist())
    assert report.methods["none"] == int((~late).sum()) > 0
    assert table.filter(pa.compute.invert(table.column("matched"))).column("seq").null_count \
        == report.methods["none"]


def test_timecode_frames_stay_matched_past_the_tolerance(tmp_path):
    sim = simulate_capture(3.0, latency_ms=22.0, seed=13)
    t = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    clap = t < 1.0
    path = write_session(sim, tmp_path, video=True, strip=clap)
    # a latency of -10 s puts every frame's content time past the 3 s session's last sample
    report = align_session(path, latency_ms=-10_000.0)
    method = np.array(read_aligned(path).column("method").to_pylist())
    assert (method[clap] == "timecode").all() and (method[~clap] == "none").all()
    assert report.timecode["held_frames"] == int(clap.sum()) > 0


def test_missing_aligned_names_the_command(tmp_path):
    sim = simulate_capture(1.0, seed=1)
    path = write_session(sim, tmp_path)
    with pytest.raises(AlignmentError, match="stpe align"):
        read_aligned(path)


def test_session_without_frames_is_refused(tmp_path):
    sim = simulate_capture(1.0, seed=1)
    path = write_session(sim, tmp_path)
    (path / "frames.jsonl").write_bytes(b"")
    with pytest.raises(AlignmentError, match="no captured frames"):
        align_session(path)
    assert not (path / "aligned.parquet").exists()
    assert not (path / "alignment.json").exists()


def test_the_sampled_viewport_wins_over_the_one_announced_at_hello(tmp_path):
    sim = simulate_capture(2.0, latency_ms=20.0, seed=9)
    path = write_session(sim, tmp_path)
    writer = SessionWriter.reopen(path)
    plugin = writer.manifest.plugin.model_copy(update={"viewport": (1920.0, 1080.0)})
    writer.update_manifest(plugin=plugin)
    writer.close()
    report = align_session(path, latency_ms=20.0)
    assert report.viewport == pytest.approx(VIEWPORT)
    assert report.capture_scale == pytest.approx((1.0, 1.0))
    assert report.capture_offset == pytest.approx((0.0, 0.0))


def test_aligned_table_is_written_in_row_groups(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from alignment import _align

    monkeypatch.setattr(_align, "ROW_GROUP", 25)  # 1024 in use: readers stream one group
    path = write_session(simulate_capture(4.0, latency_ms=20.0, seed=7), tmp_path)
    align_session(path, latency_ms=20.0)
    meta = pq.ParquetFile(path / "aligned.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert meta.num_rows > 50 and set(sizes[:-1]) == {25} and 0 < sizes[-1] <= 25
