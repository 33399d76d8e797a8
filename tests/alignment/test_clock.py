import numpy as np
import pytest

from alignment import AlignmentError, ClockModel, fit_clock, simulate_capture
from alignment._clock import (
    _lower_hull,
    _uncertainty,
    _with_prior,
    _within,
    fit_envelope,
    fit_probes,
    split_segments,
    theil_sen,
)


def _sync(sim, *, probes=True, anchors=True):
    out = []
    if probes:
        out += [{"kind": "probe", "t0": float(a), "t1_ns": int(b), "t2_ns": int(c),
                 "t3": float(d)} for a, b, c, d in zip(sim.probe_t0, sim.probe_t1_ns,
                                                      sim.probe_t2_ns, sim.probe_t3, strict=True)]
    if anchors:
        out += [{"kind": "anchor", "client": float(c), "arrival_mono_ns": int(a)}
                for c, a in zip(sim.anchor_client, sim.anchor_arrival_ns, strict=True)]
    return out


def _max_error_ms(sim, model, segment):
    return float(np.abs(model.to_host_ns(sim.client_t, segment) - sim.render_ns).max() / 1e6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probes_recover_offset_and_drift_within_the_reported_bounds(seed):
    sim = simulate_capture(60.0, drift_ppm=100.0, delay_up_ms=3.0, delay_down_ms=0.5,
                           jitter_ms=4.0, seed=seed)
    model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    seg = model.main
    assert seg.method == "probes" and len(model.segments) == 1
    assert abs(seg.drift_ppm - 100.0) <= 2 * seg.drift_std_ppm
    assert seg.drift_std_ppm < 20
    # the asymmetry (3.0 - 0.5) / 2 = 1.25 ms is inside the reported bound
    assert seg.asymmetry_bound_ms >= 1.25
    centre = np.array([seg.reference_client])
    error_ms = (model.to_host_ns(centre, np.zeros(1, int))[0]
                - _true_host_ns(sim, seg.reference_client)) / 1e6
    assert abs(error_ms) <= seg.asymmetry_bound_ms + 2 * seg.offset_std_ms


def test_symmetric_delays_recover_the_offset_closely():
    sim = simulate_capture(60.0, delay_up_ms=1.0, delay_down_ms=1.0, jitter_ms=2.0, seed=4)
    model, segment = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    assert _max_error_ms(sim, model, segment) < 0.3


def test_clock_reset_starts_a_new_segment_and_both_fit():
    sim = simulate_capture(40.0, reset_at_s=15.0, seed=2)
    model, segment = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    assert len(model.segments) == 2
    first_after = int(np.searchsorted(sim.render_ns, sim.reset_ns))
    assert np.array_equal(segment, (np.arange(sim.seq.size) >= first_after).astype(int))
    for i, seg in enumerate(model.segments):  # each segment's own client and host span
        assert seg.client_start == sim.client_t[segment == i].min()
        assert seg.client_end == sim.client_t[segment == i].max()
        assert seg.host_start_ns == sim.arrival_ns[segment == i].min()
    assert [s.method for s in model.segments] == ["probes", "probes"]
    assert _max_error_ms(sim, model, segment) < 2.5


def test_receiver_gap_does_not_split_or_bias_the_fit():
    sim = simulate_capture(40.0, receiver_gap_s=(10.0, 14.0), seed=6)
    model, segment = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    assert len(model.segments) == 1
    assert _max_error_ms(sim, model, segment) < 2.5


def test_without_probes_the_lower_envelope_bounds_the_offset_from_above():
    sim = simulate_capture(60.0, delay_up_ms=2.0, jitter_ms=5.0, seed=8)
    model, segment = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim, probes=False))
    seg = model.main
    assert seg.method == "envelope" and seg.asymmetry_bound_ms == 5.0  # the stated prior
    error = (model.to_host_ns(sim.client_t, segment) - sim.render_ns) / 1e6
    # arrivals are late by at least the 2 ms transport delay: the fit is late, within the
    # prior bound on that delay
    assert error.min() > 0
    centre = (seg.to_host_ns(np.array([seg.reference_client]))[0]
              - _true_host_ns(sim, seg.reference_client)) / 1e6
    assert 0 < centre <= seg.asymmetry_bound_ms + 2 * seg.offset_std_ms
    assert abs(seg.drift_ppm - 100.0) <= 2 * seg.drift_std_ppm


def test_only_sample_arrivals_still_fit():
    sim = simulate_capture(30.0, seed=9)
    model, segment = fit_clock(sim.client_t, sim.arrival_ns, [])
    assert model.main.method == "envelope"
    error = (model.to_host_ns(sim.client_t, segment) - sim.render_ns) / 1e6
    assert error.min() > 0 and error.max() < 120  # batches of 100 ms: late, never early


def test_no_samples_is_a_clear_error():
    with pytest.raises(AlignmentError, match="no samples"):
        fit_clock(np.zeros(0), np.zeros(0, np.int64), [])


def test_split_segments_on_backwards_and_forward_jumps():
    client = np.array([10.0, 10.1, 10.2, 0.5, 0.6, 30.0, 30.1])
    arrival = (np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) * 1e9).astype(np.int64)
    assert split_segments(client, arrival).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_theil_sen_ignores_outliers():
    x = np.arange(50, dtype=float)
    y = 3.0 + 2.0 * x
    y[[5, 17, 33]] += 400
    slope, intercept = theil_sen(x, y)
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(3.0)


def _true_host_ns(sim, client):
    """Host time of a client time before any reset (inverse of the simulator's clock)."""
    from alignment._simulate import CLIENT_ORIGIN_S, HOST_ORIGIN_NS

    return HOST_ORIGIN_NS + (np.asarray(client) - CLIENT_ORIGIN_S) * sim.rate * 1e9


def test_stated_uncertainties_cover_the_truth_in_95_percent_of_cases():
    rng = np.random.default_rng(7)
    drift_hits, offset_hits = [], []
    for case in range(40):
        drift = rng.uniform(-50, 50)
        sim = simulate_capture([3.0, 8.0, 30.0, 60.0][case % 4], drift_ppm=drift, seed=case,
                               delay_up_ms=rng.uniform(0.3, 3), delay_down_ms=rng.uniform(0.3, 3),
                               jitter_ms=rng.uniform(0.5, 5))
        model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim, probes=case % 5 != 0))
        seg = model.main
        error_ms = (seg.to_host_ns(np.array([seg.reference_client]))[0]
                    - _true_host_ns(sim, seg.reference_client)) / 1e6
        drift_hits.append(abs(seg.drift_ppm - drift) <= 2 * seg.drift_std_ppm)
        offset_hits.append(abs(error_ms) <= seg.asymmetry_bound_ms + 2 * seg.offset_std_ms)
    assert np.mean(drift_hits) >= 0.95 and np.mean(offset_hits) >= 0.95


def test_few_probes_state_the_drift_prior_never_zero():
    sim = simulate_capture(2.5, drift_ppm=-45.0, probe_hz=4.0, seed=3)
    model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim, anchors=False))
    seg = model.main
    assert seg.points < 16 and seg.method == "probes"
    assert 50.0 <= seg.drift_std_ppm <= 100.0  # the prior, narrowed by what the probes say
    assert abs(seg.drift_ppm + 45.0) <= 2 * seg.drift_std_ppm


def test_the_offset_is_quoted_where_its_uncertainty_holds():
    sim = simulate_capture(60.0, drift_ppm=40.0, delay_up_ms=1.0, delay_down_ms=1.0, seed=5)
    model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    seg = model.main
    assert seg.client_start + 20 < seg.reference_client < seg.client_end - 20
    host_ms = _true_host_ns(sim, seg.reference_client) / 1e6
    true_offset = host_ms - seg.reference_client * 1e3
    assert abs(seg.offset_ms - true_offset) <= seg.asymmetry_bound_ms + 2 * seg.offset_std_ms
    assert seg.summary()["reference_client"] == seg.reference_client


@pytest.mark.parametrize("seed", range(3))
def test_four_minutes_of_probes_give_drift_within_5_ppm(seed):
    drift = [-50.0, 12.0, 50.0][seed]
    sim = simulate_capture(240.0, drift_ppm=drift, jitter_ms=4.0, seed=seed)
    model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    assert abs(model.main.drift_ppm - drift) < 5.0
    assert abs(model.main.drift_ppm - drift) <= 2 * model.main.drift_std_ppm


@pytest.mark.parametrize("seed", range(4))
def test_the_asymmetry_bound_holds_when_probe_replies_are_read_a_frame_late(seed):
    sim = simulate_capture(60.0, delay_up_ms=0.5, delay_down_ms=0.5, jitter_ms=1.0,
                           reply_next_frame=True, seed=seed)
    model, _ = fit_clock(sim.client_t, sim.arrival_ns, _sync(sim))
    seg = model.main
    error_ms = (seg.to_host_ns(np.array([seg.reference_client]))[0]
                - _true_host_ns(sim, seg.reference_client)) / 1e6
    assert abs(error_ms) > 1.0  # the late reading skews every probe
    assert abs(error_ms) <= seg.asymmetry_bound_ms + 2 * seg.offset_std_ms


@pytest.mark.parametrize(("x", "y", "hull"), [
    ([0, 1, 2, 3, 4], [4, 1, 0, 1, 4], [0, 1, 2, 3, 4]),  # a convex curve: every point
    ([0, 1, 2, 3, 4], [0, 4, 1, 6, 0], [0, 4]),  # everything above the chord
    ([1, 2, 3, 4, 5], [4, 1, 0, 1, 4], [0, 1, 2, 3, 4]),  # not starting at x = 0
    ([1, 2, 3, 4, 5], [3, 0, 2, 0, 3], [0, 1, 3, 4]),  # a bump between two minima
])
def test_lower_hull_by_hand(x, y, hull):
    assert _lower_hull(np.array(x, float), np.array(y, float)) == hull


def test_the_envelope_runs_under_a_late_batch_between_two_on_time_ones():
    # host = client exactly for the first and last batch, the middle one 10 ms late: the
    # lower envelope is host = client (x centre 1 lies under the chord 0-2), so the rate is
    # exactly 1 and the offset exactly the first point's
    seg = fit_envelope(np.array([50.0, 51.0, 52.0]),
                       np.array([7_000_000_000, 8_010_000_000, 9_000_000_000]),
                       client_range=(50.0, 52.0), host_start_ns=7_000_000_000)
    assert (seg.rate, seg.intercept_s, seg.method) == (1.0, 0.0, "envelope")
    assert seg.offset_ms == -43_000.0 and seg.reference_client == 51.0
    assert seg.to_host_ns(np.array([51.5])).tolist() == [8.5e9]
    assert ClockModel((seg,)).to_host_ns(np.array([51.5]), np.zeros(1, int)).tolist() == [8.5e9]
    assert (seg.points, seg.points_used) == (3, 3)
    assert (seg.client_start, seg.client_end, seg.host_start_ns) == (50.0, 52.0, 7_000_000_000)
    # the segment as alignment.json reports it
    assert seg.summary() == {
        "client_start": 50.0, "client_end": 52.0, "method": "envelope", "offset_ms": -43_000.0,
        "drift_ppm": 0.0, "offset_std_ms": seg.offset_std_ms, "drift_std_ppm": seg.drift_std_ppm,
        "asymmetry_bound_ms": 5.0, "reference_client": 51.0, "points": 3, "points_used": 3}
    # the prior, barely narrowed by 3 points 10 ms off a line over 2 s
    assert seg.drift_std_ppm == pytest.approx(100.0, rel=1e-5)


def test_the_envelope_finds_the_drift_of_the_fastest_deliveries():
    # 8001 arrivals over 100 s of client time, host running 40 ppm fast: 2000 bins of 4 (the
    # last of 5), in each the last arrival has no delay and the others are 0.5 to 5 ms late.
    # The envelope is the line through the undelayed ones; its drift is pulled towards 0 by
    # the 100 ppm prior only by a factor 100^2 / (100^2 + s^2) with s about 1 ppm (ms-scale
    # residuals over a 100 s lever arm). Whole nanoseconds: 12.5 ms of client time is
    # 12_500_500 ns of host time, so the undelayed arrivals lie exactly on one line.
    rng = np.random.default_rng(3)
    i = np.arange(8001)
    client = 20.0 + i * 0.0125
    delay_ns = rng.integers(500_000, 5_000_000, i.size)
    delay_ns[3::4] = 0
    arrival = 3_000_000_000 + i * 12_500_500 + delay_ns
    seg = fit_envelope(client, arrival, client_range=(20.0, 120.0), host_start_ns=3_000_000_000)
    assert abs(seg.drift_ppm - 40.0) < 0.05
    assert 0 < seg.drift_std_ppm < 5 and 0 < seg.offset_std_ms < 1
    assert seg.points == 8001 and seg.points_used == 2000  # the fastest of each of 2000 bins
    fitted = seg.to_host_ns(client[3::4]) - arrival[3::4]
    assert np.abs(fitted).max() < 20_000  # within 20 us of the undelayed arrivals


@pytest.mark.parametrize(("second_ns", "drift", "intercept"), [
    (10_001_000_000, 50.0, 0.0),  # the first point on the line, the second 0.5 ms above it
    (9_999_000_000, -50.0, -0.5e-3),  # the second on the line, the first 0.5 ms above it
])
def test_the_envelope_of_two_points_leans_on_the_drift_prior(second_ns, drift, intercept):
    # 10 s apart, 1 ms more (less) on the host: +-100 ppm measured with the prior's 100 ppm
    # uncertainty (2 points), so the combined drift is halfway, +-50 ppm, +- 100 / sqrt(2);
    # with 2 points the offset's uncertainty is the largest residual, 0.5 ms
    seg = fit_envelope(np.array([0.0, 10.0]), np.array([0, second_ns]),
                       client_range=(0.0, 10.0), host_start_ns=0)
    assert seg.drift_ppm == pytest.approx(drift, abs=1e-6)
    assert seg.drift_std_ppm == pytest.approx(100 / 2 ** 0.5)
    assert seg.intercept_s == pytest.approx(intercept, abs=1e-12)
    assert seg.offset_std_ms == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("arrivals", [[7_000_000_000], [7_003_000_000, 7_000_000_000,
                                                         7_001_000_000]])
def test_the_envelope_of_one_client_time_is_its_earliest_arrival(arrivals):
    seg = fit_envelope(np.full(len(arrivals), 5.0), np.array(arrivals),
                       client_range=(5.0, 5.0), host_start_ns=7_000_000_000)
    assert (seg.rate, seg.intercept_s, seg.offset_ms) == (1.0, 0.0, 2000.0)
    assert (seg.points, seg.points_used) == (len(arrivals), 1)
    assert seg.drift_std_ppm == 100.0 and seg.offset_std_ms == pytest.approx(0.02)


# Standard errors worked by hand from docs/alignment.md: the residual scale is the larger of
# 1.4826 MAD, the standard deviation over n - 2 degrees of freedom and 20 us, times
# sqrt(n / (n - 2)) and Student's t 97.5 % quantile over 1.96 for n - 2 degrees of freedom
# (2.31 for 8, 2.27 between 8 and 10, 3.18 for 3); offset sigma / sqrt(n) in ms, drift
# sigma / sqrt(sum (x - mean)^2) in ppm, at least the 100 ppm prior under 8 points.
_UNCERTAINTY_CASES = {
    # n = 10, +-1 ms alternating: MAD 1 ms (1.4826 ms) beats the deviation sqrt(10/8) ms
    "mad": (np.arange(10.0), np.tile([1e-3, -1e-3], 5), 1.4826e-3 * 1.25 ** 0.5 * 2.31 / 1.96,
            10, 82.5),
    # n = 10, two outliers of +-5 ms: MAD 0, deviation sqrt(50 / 8) ms
    "deviation": (np.arange(10.0), np.r_[np.zeros(8), 5e-3, -5e-3],
                  (50e-6 / 8) ** 0.5 * 1.25 ** 0.5 * 2.31 / 1.96, 10, 82.5),
    # n = 11, +-1 ms alternating from +: median +1 ms, MAD 0; mean 1/11 ms, so the squared
    # deviations sum to (11 - 1/11) ms^2 = 120/11 ms^2 over 9 degrees of freedom
    "interpolated t": (np.arange(11.0), np.tile([1e-3, -1e-3], 6)[:11],
                       (120e-6 / 11 / 9) ** 0.5 * (11 / 9) ** 0.5 * 2.27 / 1.96, 11, 110.0),
    # n = 5 on a line: the 20 us stamping noise, drift at least the prior
    "stamping noise": (np.arange(5.0) + 100.0, np.zeros(5), 20e-6 * (5 / 3) ** 0.5 * 3.18 / 1.96,
                       5, 10.0),
}


@pytest.mark.parametrize("case", sorted(_UNCERTAINTY_CASES))
def test_uncertainty_by_hand(case):
    x, residual, sigma, n, sxx = _UNCERTAINTY_CASES[case]
    offset_ms, drift_ppm = _uncertainty(x, residual)
    assert offset_ms == pytest.approx(sigma / n ** 0.5 * 1e3, rel=1e-9)
    expected_drift = sigma / sxx ** 0.5 * 1e6
    assert drift_ppm == pytest.approx(max(expected_drift, 100.0) if n < 8 else expected_drift,
                                      rel=1e-9)


def test_uncertainty_of_under_three_points_is_the_largest_residual_and_the_prior():
    assert _uncertainty(np.array([0.0, 1.0]), np.array([1e-3, -3e-3])) == (3.0, 100.0)
    assert _uncertainty(np.array([5.0]), np.array([0.0])) == pytest.approx((0.02, 100.0))
    assert _uncertainty(np.zeros(0), np.zeros(0)) == pytest.approx((0.02, 100.0))


@pytest.mark.parametrize(("rate", "std", "combined", "combined_std"), [
    (1 + 300e-6, 100.0, 1 + 150e-6, 50 * 2 ** 0.5),  # as sure as the prior: halfway
    (1 - 80e-6, 50.0, 1 - 64e-6, 2000 ** 0.5),  # weight 100^2 / (100^2 + 50^2) = 0.8
    (1 + 20e-6, 0.0, 1 + 20e-6, 0.0),  # an exact drift keeps its own
])
def test_drift_prior_by_hand(rate, std, combined, combined_std):
    got_rate, got_std = _with_prior(rate, std)
    assert got_rate == pytest.approx(combined, abs=1e-15)
    assert got_std == pytest.approx(combined_std, rel=1e-12, abs=1e-12)


def test_probes_fit_through_the_fastest_probe_of_each_window():
    # 12 probes centred at client 10, 11, .., 21 s; host = 5000 s + (client - 10 s) exactly.
    # Three windows of 11/3 s (12 // 4 = 3); in each one probe is fast and symmetric (0.5,
    # 1 and 2 ms each way) and the rest slow and lopsided (1 ms up, 9 ms down: their
    # midpoints read 4 ms early). The fit must use only the three fast ones: the exact line,
    # delays 1, 2 and 4 ms, whose 75th percentile is 3 ms.
    hold_s = 0.2e-3
    fast = {1: 0.5e-3, 6: 1e-3, 11: 2e-3}
    t0, t1, t2, t3 = [], [], [], []
    for k in range(12):
        up, down = (fast[k], fast[k]) if k in fast else (1e-3, 9e-3)
        send = 10.0 + k - (up + hold_s + down) / 2
        host_in_ns = 5_000_000_000_000 + round((send + up - 10.0) * 1e9)
        t0.append(send)
        t1.append(host_in_ns)
        t2.append(host_in_ns + round(hold_s * 1e9))
        t3.append(send + up + hold_s + down)
    seg = fit_probes(np.array(t0), np.array(t1), np.array(t2), np.array(t3),
                     client_range=(10.0, 21.0), host_start_ns=5_000_000_000_000)
    assert (seg.method, seg.points, seg.points_used) == ("probes", 12, 3)
    assert (seg.client_start, seg.client_end, seg.host_start_ns) == (10.0, 21.0, 5 * 10**12)
    assert seg.reference_client == pytest.approx(10.0 + (1 + 6 + 11) / 3, abs=1e-9)
    assert seg.drift_ppm == pytest.approx(0.0, abs=1e-5)
    assert seg.offset_ms == pytest.approx((5000.0 - 10.0) * 1e3, abs=1e-5)
    assert seg.asymmetry_bound_ms == pytest.approx(1.5, abs=1e-9)  # half the 3 ms
    # 3 points on the line: the 20 us stamping noise, widened by t(1 dof) 12.71 / 1.96 and
    # sqrt(3 / 1), over sqrt(3); the drift's own (under 8 points) is at least the 100 ppm
    # prior, and combined with it, 100 / sqrt(2)
    assert seg.offset_std_ms == pytest.approx(0.02 * 12.71 / 1.96, rel=1e-9)
    assert seg.drift_std_ppm == pytest.approx(100 / 2 ** 0.5, rel=1e-9)
    host = seg.to_host_ns(np.array([10.0, 21.0]), origin_ns=5_000_000_000_000)
    assert host == pytest.approx([0.0, 11e9], abs=100)


@pytest.mark.parametrize(("client", "arrival_ns"), [
    # the mean client time (6 s) lies under the first hull edge: host = client there, the
    # last arrival is 1 ms late
    ([0.0, 8.0, 10.0], [0, 8_000_000_000, 10_001_000_000]),
    # the mean (4 s) lies under the last edge; the first arrival is 1 ms late
    ([0.0, 2.0, 10.0], [1_000_000, 2_000_000_000, 10_000_000_000]),
])
def test_the_envelope_takes_the_hull_edge_under_the_mean_client_time(client, arrival_ns):
    seg = fit_envelope(np.array(client), np.array(arrival_ns), client_range=(0.0, 10.0),
                       host_start_ns=0)
    assert seg.drift_ppm == pytest.approx(0.0, abs=1e-6)
    assert seg.offset_ms == pytest.approx(0.0, abs=1e-9)


def test_theil_sen_thins_evenly_over_all_points():
    # 3000 points on two lines (slope 1, then 2 from x = 1800): the 1500 evenly thinned
    # points give the median of all pairwise slopes (computed here directly, 4.5 M pairs)
    x = np.arange(3000.0)
    y = np.where(x < 1800, x, 1800 + 2 * (x - 1800))
    i, j = np.triu_indices(x.size, k=1)
    full = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    slope, intercept = theil_sen(x, y)
    assert 1.2 < full < 1.35 and slope == pytest.approx(full, abs=2e-3)
    # the median residual, over the thinned points: within 0.1 of that over all of them
    assert intercept == pytest.approx(float(np.median(y - slope * x)), abs=0.1)


@pytest.mark.parametrize(("x", "y", "slope", "intercept"), [
    # pairwise slopes 0, 0, 1, 0, 1.5, 3: median 0.5; residuals 0, -0.5, -1, 1.5: -0.25
    ([0, 1, 2, 3], [0, 0, 0, 3], 0.5, -0.25),
    # the same, half as far apart: pairs under 1 s apart count as much
    ([0, 0.5, 1, 1.5], [0, 0, 0, 1.5], 0.5, -0.125),
    # two points at one x: that pair has no slope, the other five are 1
    ([0, 0, 1, 2], [0, 0, 1, 2], 1.0, 0.0),
    # one x only: slope 1 (clocks run alike), intercept the median of y - x
    ([5, 5], [1, 2], 1.0, -3.5),
    ([5], [2], 1.0, -3.0),
])
def test_theil_sen_by_hand(x, y, slope, intercept):
    assert theil_sen(np.array(x, float), np.array(y, float)) == (pytest.approx(slope),
                                                                 pytest.approx(intercept))


@pytest.mark.parametrize(("count", "windows"), [(600, 150), (1000, 200)])
def test_probe_windows_are_a_quarter_of_the_probes_at_most_200(count, windows):
    # evenly spread probes, host = client: every window holds at least one, and keeps one
    client = np.arange(count, dtype=float)
    host_ns = (client * 1e9).astype(np.int64)
    seg = fit_probes(client - 1e-4, host_ns, host_ns, client + 1e-4,
                     client_range=(0.0, count - 1.0), host_start_ns=0)
    assert (seg.points, seg.points_used) == (count, windows)


def test_two_probes_quote_the_largest_residual_as_the_offset_uncertainty():
    # two symmetric probes (0.5 ms each way, 0.2 ms hold) 10 s apart, the second 1 ms late
    # on the host: the line (drift halfway to the prior) misses each by 0.25 ms
    t0 = np.array([0.0, 10.0]) - 0.6e-3
    t1 = np.array([1_000_000_000_000, 1_010_001_000_000])
    seg = fit_probes(t0, t1, t1 + 200_000, t0 + 1.2e-3, client_range=(0.0, 10.0),
                     host_start_ns=0)
    assert (seg.points, seg.points_used) == (2, 2)
    assert seg.drift_ppm == pytest.approx(50.0, abs=1e-6)
    assert seg.offset_std_ms == pytest.approx(0.25, abs=1e-6)


def test_one_sample_is_one_segment():
    assert split_segments(np.array([5.0]), np.array([7])).tolist() == [0]
    assert split_segments(np.zeros(0), np.zeros(0, np.int64)).tolist() == []
    model, segment = fit_clock(np.array([5.0]), np.array([7_000_000_000]), [])
    assert segment.tolist() == [0] and model.main.offset_ms == 2000.0


def test_split_segments_on_their_bounds():
    s = 1_000_000_000
    # the same client time twice is no reset; exactly 1 s of client time beyond the host's
    # 0.5 s is no jump, 1.4 s beyond its 0.1 s is
    assert split_segments(np.array([1.0, 1.0, 1.1]), np.array([0, 1, 2]) * s // 10).tolist() \
        == [0, 0, 0]
    assert split_segments(np.array([0.0, 1.5]), np.array([0, s // 2])).tolist() == [0, 0]
    assert split_segments(np.array([0.0, 1.5]), np.array([0, s // 10])).tolist() == [0, 1]
    # Play starts add breaks to the clock's own
    client = np.array([5.0, 5.1, 0.2, 0.3, 0.4])
    arrival = np.arange(5) * s // 10
    starts = np.array([True, False, False, True, False])
    assert split_segments(client, arrival, starts).tolist() == [0, 0, 1, 2, 2]


def test_within_by_hand():
    # client inside [1, 3] (both ends in), host inside [10, 30) (the end out)
    client = np.array([1.0, 3.0, 2.0, 2.0, 0.9, 3.1, 2.0])
    host = np.array([15, 15, 10, 30, 15, 15, 9])
    assert _within(client, host, (1.0, 3.0, 10, 30)).tolist() == [
        True, True, True, False, False, False, False]


def test_without_probes_the_fit_follows_the_anchors_and_skips_incomplete_ones():
    # samples every 0.1 s arrive 50 ms late (batched); the batch anchors arrive on time;
    # host = 1000 s + (client - 10 s). Anchors without a client time or an arrival are
    # skipped, whatever else they hold.
    client = 10.0 + np.arange(51) * 0.1
    host_ns = 1000 * 10**9 + np.arange(51) * 100_000_000
    sync = [{"kind": "anchor", "client": float(c), "arrival_mono_ns": int(h)}
            for c, h in zip(client[::5], host_ns[::5], strict=True)]
    sync += [{"kind": "anchor", "client": None, "arrival_mono_ns": 0},
             {"kind": "anchor", "client": 12.0, "arrival_mono_ns": None}]
    model, segment = fit_clock(client, host_ns + 50_000_000, sync)
    seg = model.main
    assert seg.method == "envelope" and segment.tolist() == [0] * 51
    assert seg.host_start_ns == 1000 * 10**9 + 50_000_000  # the first sample's arrival
    assert seg.offset_ms == pytest.approx((1000.0 - 10.0) * 1e3, abs=1e-6)
    assert seg.drift_ppm == pytest.approx(0.0, abs=1e-3)


def test_no_samples_message_in_full():
    with pytest.raises(AlignmentError) as error:
        fit_clock(np.zeros(0), np.zeros(0, np.int64), [])
    assert str(error.value) == ("the state log holds no samples, so there is no clock to fit; "
                                "record a session with the plugin running")


def test_probes_count_within_a_second_of_the_samples_client_span():
    # samples at client 10..20 s (host = 1000 s + client - 10 s); the segment takes probes
    # up to max(1 s, 5 % of its 10 s span) = 1 s either side, at any host time before the
    # next segment: those at 9.2 and 20.9 s, not those at 21.3 and 25 s
    client = 10.0 + np.arange(21) * 0.5
    arrival = 1000 * 10**9 + np.arange(21) * 500_000_000 + 2_000_000

    def probe(c):
        t1 = 1000 * 10**9 + round((c - 10.0) * 1e9) - 100_000
        return {"kind": "probe", "t0": c - 0.6e-3, "t1_ns": t1, "t2_ns": t1 + 200_000,
                "t3": c + 0.6e-3}

    model, _ = fit_clock(client, arrival, [probe(c) for c in (9.2, 20.9, 21.3, 25.0)])
    seg = model.main
    assert (seg.method, seg.points) == ("probes", 2)
    assert seg.offset_ms == pytest.approx(990_000.0, abs=1e-3)


def _probe_at(client_s: float, host_zero_ns: int, client_zero: float) -> dict:
    """A probe with a 1.2 ms round trip, host = host_zero + (client - client_zero)."""
    t1 = host_zero_ns + round((client_s - client_zero) * 1e9) - 100_000
    return {"kind": "probe", "t0": client_s - 0.6e-3, "t1_ns": t1, "t2_ns": t1 + 200_000,
            "t3": client_s + 0.6e-3}


def test_a_long_segment_takes_probes_within_five_percent_of_its_span():
    # samples at client 10..110 s: the margin is max(1 s, 5 % of 100 s) = 5 s either side,
    # so the probes at 6.5, 112 and 114 s count and those at 3.5, 115.5 and 117 s do not
    client = 10.0 + np.arange(201) * 0.5
    arrival = 1000 * 10**9 + np.arange(201) * 500_000_000 + 2_000_000
    sync = [_probe_at(c, 1000 * 10**9, 10.0) for c in (3.5, 6.5, 112.0, 114.0, 115.5, 117.0)]
    seg = fit_clock(client, arrival, sync)[0].main
    assert (seg.method, seg.points) == ("probes", 3)
    assert seg.offset_ms == pytest.approx(990_000.0, abs=1e-3)


def test_a_probe_sent_before_a_reset_never_counts_in_the_segment_after_it():
    # a reset at host 1060 s brings the client clock back to 0; the probe at client 10 s
    # was sent at host 1010 s, before the reset, so the second segment (whose client span
    # 0..50 s holds 10 s too) must not take it: it keeps only its own two probes
    client = np.r_[np.arange(51.0), np.arange(51.0)]
    arrival = np.r_[1000 * 10**9 + np.arange(51) * 10**9,
                    1060 * 10**9 + np.arange(51) * 10**9] + 2_000_000
    before = [_probe_at(c, 1000 * 10**9, 0.0) for c in (10.0, 30.0)]
    after = [_probe_at(c, 1060 * 10**9, 0.0) for c in (20.0, 40.0)]
    model, segment = fit_clock(client, arrival, before + after)
    assert np.array_equal(segment, np.repeat([0, 1], 51))
    first, second = model.segments
    assert (first.method, first.points) == ("probes", 2)
    assert (second.method, second.points) == ("probes", 2)
    assert first.offset_ms == pytest.approx(1_000_000.0, abs=1e-3)
    assert second.offset_ms == pytest.approx(1_060_000.0, abs=1e-3)


def test_points_at_one_client_time_give_the_drift_prior():
    # no spread in client time: the drift is unknown, so it is the prior, never infinite
    offset_ms, drift_ppm = _uncertainty(np.full(5, 7.0), np.array([1, -1, 2, -2, 0]) * 1e-3)
    assert np.isfinite(offset_ms)
    assert drift_ppm == 100.0


@pytest.mark.parametrize(("n", "drift_ppm"), [
    # on a line at x = 0, 10, ..., 70 s: sigma is the 20 us stamping noise widened by
    # sqrt(8 / 6) and t(6 dof) 2.45 / 1.96; sxx = 100 * 42 = 4200 s^2. Eight points keep
    # their own drift (0.63 ppm); seven (sxx = 2800) are raised to the 100 ppm prior
    (8, 20e-6 * (8 / 6) ** 0.5 * 2.45 / 1.96 / 4200 ** 0.5 * 1e6),
    (7, 100.0),
])
def test_eight_points_are_the_fewest_that_keep_their_own_drift(n, drift_ppm):
    _, got = _uncertainty(np.arange(n) * 10.0, np.zeros(n))
    assert got == pytest.approx(drift_ppm, rel=1e-9)


def test_each_segment_is_logged_with_its_method_offset_and_drift(caplog):
    client = 10.0 + np.arange(21) * 0.5
    arrival = 1000 * 10**9 + np.arange(21) * 500_000_000 + 2_000_000
    with caplog.at_level("INFO", logger="alignment._clock"):
        fit_clock(client, arrival, [_probe_at(c, 1000 * 10**9, 10.0) for c in (12.0, 18.0)])
    assert [r.getMessage() for r in caplog.records if r.name == "alignment._clock"] == [
        "clock segment 0: probes fit, offset 990000.000 ms, drift 0.0 ppm"]


def test_a_play_start_splits_the_clock_even_where_the_client_time_runs_on():
    # the client clock runs on across two Plays (no reset, no jump); the flags alone split
    client = np.arange(20.0)
    arrival = 1000 * 10**9 + np.arange(20) * 10**9 + 2_000_000
    starts = np.zeros(20, bool)
    starts[[0, 12]] = True
    model, segment = fit_clock(client, arrival, [], play_starts=starts)
    assert np.array_equal(segment, np.repeat([0, 1], [12, 8]))
    assert [(s.client_start, s.client_end) for s in model.segments] == [(0.0, 11.0),
                                                                         (12.0, 19.0)]


def test_eight_points_within_one_second_keep_their_own_drift():
    # x = 0, 0.1, ..., 0.7 s: sxx = 0.01 * 42 = 0.42 s^2, under 1 s^2 yet not zero, so the
    # drift is sigma / sqrt(0.42): 20 us * sqrt(8 / 6) * 2.45 / 1.96 / 0.648 = 44.5 ppm
    _, got = _uncertainty(np.arange(8) * 0.1, np.zeros(8))
    assert got == pytest.approx(20e-6 * (8 / 6) ** 0.5 * 2.45 / 1.96 / 0.42 ** 0.5 * 1e6,
                                rel=1e-9)
