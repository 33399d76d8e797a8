"""The simulator's display pipeline: its truth is not the aligner's constant-latency model."""

import numpy as np

from alignment import simulate_capture


def test_vsync_quantises_what_reaches_the_screen_and_double_buffering_drops_frames():
    sim = simulate_capture(10.0, fps_range=(70, 80), latency_ms=30.0, seed=2)
    shown = sim.screen_ns >= 0
    assert 0.7 < shown.mean() < 0.9  # a 70-80 fps game on a 60 Hz display loses frames
    period = 1e9 / 60
    phase = (sim.screen_ns[shown] - sim.screen_ns[shown][0]) % period
    assert np.all(np.minimum(phase, period - phase) < 2)  # every flip on the refresh grid
    delay = (sim.screen_ns[shown] - sim.render_ns[shown]) / 1e6
    assert abs(delay.mean() - 30.0) < 2.0 and delay.std() > 3.0  # jittered, not constant
    # a grab shows the latest sample on screen, never one that was not shown
    assert shown[sim.true_seq].all()
    on = sim.screen_ns[sim.true_seq]
    assert np.all(on <= sim.grab_start_ns)


def test_without_vsync_some_grabs_catch_a_tear_between_two_shown_samples():
    sim = simulate_capture(10.0, vsync_hz=None, tear_fraction=1.0, seed=4)
    torn = sim.tear_seq >= 0
    assert 0 < torn.mean() < 0.2
    assert np.all(sim.tear_seq[torn] > sim.true_seq[torn])
    assert np.all(sim.screen_ns[sim.tear_seq[torn]] - sim.grab_start_ns[torn] < 1e6)


def test_one_arrival_per_batch():
    sim = simulate_capture(3.0, batch_hz=10.0, seed=1)
    assert np.unique(sim.arrival_ns).size <= 31
    assert np.all(np.diff(sim.arrival_ns) >= 0)
