"""Alignment in the recording workflow: Play starts after the recording, several Plays,
misreads, frames outside the sampled span, no strip at all."""

import numpy as np
import pytest

from alignment import align_session, read_aligned, simulate_capture
from tests.alignment._sessions import write_session


def _columns(path):
    table = read_aligned(path)
    return (np.array(table.column("seq").fill_null(-1).to_pylist()),
            np.array(table.column("method").to_pylist()), table)


def test_misreads_are_rejected_and_their_frames_fall_back_to_the_clock(tmp_path):
    sim = simulate_capture(4.0, latency_ms=22.0, seed=31)
    truth = sim.true_seq
    # a valid strip of the wrong seq: twice the same value far ahead (an occluded strip
    # whose damage the check cannot see), and once a seq a little behind its neighbours
    wrong = {60: int(truth[60]) + 90, 61: int(truth[60]) + 90, 150: int(truth[150]) - 9}
    path = write_session(sim, tmp_path, video=True, shown_seq=wrong)
    report = align_session(path)
    seq, method, _ = _columns(path)
    bad = np.array(sorted(wrong))
    assert report.timecode["rejected"] == len(wrong)
    assert (method[bad] == "clock").all()
    assert np.abs(seq[bad] - truth[bad]).max() <= 1
    good = np.setdiff1d(np.arange(truth.size), bad)
    assert (method[good] == "timecode").all() and np.array_equal(seq[good], truth[good])


def test_only_frames_inside_the_sampled_span_are_matched(tmp_path):
    sim = simulate_capture(6.0, latency_ms=20.0, seed=32)
    t = (sim.render_ns - sim.render_ns[0]) / 1e9
    stored = (t >= 2.0) & (t < 4.5)
    first, last = np.flatnonzero(stored)[[0, -1]]
    path = write_session(sim, tmp_path, stored=stored)
    report = align_session(path, latency_ms=20.0)
    seq, method, _ = _columns(path)
    before, after = sim.true_seq < first, sim.true_seq > last + 1
    inside = (sim.true_seq > first) & (sim.true_seq < last)
    assert (method[before] == "none").all() and (method[after] == "none").all()
    assert before.sum() > 50 and after.sum() > 50
    assert (method[inside] == "clock").all()
    assert np.abs(seq[inside] - sim.true_seq[inside]).max() <= 1
    assert report.matched <= inside.sum() + 4


def _two_plays(duration=8.0, gap=(3.5, 4.5), seed=33, reset=True):
    sim = simulate_capture(duration, latency_ms=22.0, seed=seed,
                           reset_at_s=gap[1] - 0.2 if reset else None)
    t = (sim.render_ns - sim.render_ns[0]) / 1e9
    stored = (t < gap[0]) | (t >= gap[1])
    second = int(np.flatnonzero(t >= gap[1])[0])
    return sim, stored, second


def test_two_plays_with_continuing_seqs_are_two_segments_and_nothing_is_dropped(tmp_path):
    sim, stored, second = _two_plays(reset=False)  # the client clock runs on between Plays
    truth = sim.true_seq
    tg = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    clap = (tg < 0.5) | ((tg > 3.0) & (tg < 5.0)) | (tg > tg[-1] - 0.5)
    path = write_session(sim, tmp_path, stored=stored, plays=[0, second], video=True,
                         strip=clap & stored[truth])
    report = align_session(path)
    seq, method, _ = _columns(path)
    assert report.state["clock_segments"] == 2
    shown = stored[truth] & stored[np.minimum(truth + 1, truth.max())]
    inside = shown & (truth > 0) & (truth != second - 1)
    assert (method[inside] != "none").all()
    assert np.abs(seq[inside] - truth[inside]).max() <= 1
    assert np.array_equal(seq[method == "timecode"], truth[method == "timecode"])
    gap = ~stored[truth] & ~stored[np.maximum(truth - 1, 0)]
    assert (method[gap] == "none").all() and gap.sum() > 30


def test_an_older_session_whose_second_play_restarted_seq_at_zero_aligns_completely(tmp_path):
    sim, stored, second = _two_plays(reset=True)
    index = np.arange(sim.seq.size)
    seqs = np.where(index >= second, index - second, index)
    path = write_session(sim, tmp_path, stored=stored, seqs=seqs, video=True)
    report = align_session(path)
    seq, method, table = _columns(path)
    truth = sim.true_seq
    showing = stored[truth]
    assert report.state["clock_segments"] == 2
    assert (method[showing] == "timecode").all()
    assert np.array_equal(seq[showing], seqs[truth[showing]])
    client = np.array(table.column("client_t").fill_null(np.nan).to_pylist())
    assert np.array_equal(client[showing], sim.client_t[truth[showing]])
    assert report.matched >= showing.sum()


def test_without_any_strip_the_latency_is_a_stated_prior_never_zero(tmp_path):
    sim = simulate_capture(5.0, latency_ms=25.0, seed=34)
    path = write_session(sim, tmp_path, video=True, strip=False)
    report = align_session(path)
    assert report.latency_source == "prior"
    assert report.latency_ms == pytest.approx(25.0) and report.latency_bound_ms == 20.0
    (warning,) = [w for w in report.warnings if "latency" in w]
    assert "25 +- 10 ms" in warning and "0.6 frames" in warning


def test_latency_comes_from_wherever_the_strip_was_seen(tmp_path):
    sim = simulate_capture(7.0, latency_ms=31.0, seed=35)
    tg = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    path = write_session(sim, tmp_path, video=True, strip=(tg > 4.5) & (tg < 6.0))
    report = align_session(path)
    seq, method, _ = _columns(path)
    assert report.latency_source == "timecode"
    assert report.timecode["seen_frames"] == [[int(np.argmax(tg > 4.5)),
                                               int(np.flatnonzero(tg < 6.0)[-1])]]
    clock = method == "clock"
    assert np.abs(seq[clock] - sim.true_seq[clock]).max() <= 1
