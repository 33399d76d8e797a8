
import numpy as np
import pytest

from alignment import match_frames, unwrap_payload
from alignment._match import (
    CLOCK,
    NONE,
    TIMECODE,
    Matching,
    content_times,
    display_latency,
    render_intervals,
    restrict_to_span,
)


def test_nearest_bracket_and_weight():
    host = np.array([0.0, 10e6, 20e6, 30e6])
    m = match_frames(np.array([-1e6, 4e6, 6e6, 20e6, 35e6, 200e6]), host, tolerance_ms=10)
    assert m.nearest.tolist() == [0, 0, 1, 2, 3, -1]
    assert m.left.tolist()[:5] == [0, 0, 0, 2, 3]
    assert m.right.tolist()[:5] == [0, 1, 1, 2, 3]
    assert m.weight[:5] == pytest.approx([0, 0.4, 0.6, 0, 0])
    assert m.residual_ms[:5] == pytest.approx([-1, 4, -4, 0, 5])
    assert np.isnan(m.residual_ms[5])
    assert m.method.tolist() == [CLOCK] * 5 + [NONE]


def test_a_decoded_frame_stays_matched_when_the_screen_held_its_sample():
    host = np.array([0.0, 10e6, 20e6])
    # both frames are grabbed 200 ms after sample 0: the clock cannot match them, but the
    # second one's timecode says the screen still showed sample 0 (a hitch)
    m = match_frames(np.array([200e6, 200e6]), host, tolerance_ms=50,
                     decoded=np.array([-1, 0]))
    assert m.method.tolist() == [NONE, TIMECODE]
    assert m.nearest.tolist() == [-1, 0]
    assert np.isnan(m.residual_ms[0]) and m.residual_ms[1] == pytest.approx(200.0)
    # the decoded frame's bracket is its sample too (the clock would bracket at sample 2)
    assert m.left.tolist() == m.right.tolist() == [2, 0] and m.weight.tolist() == [0, 0]


def test_nearest_at_match_time_bracket_at_content_time():
    host = np.array([0.0, 10e6, 20e6])
    m = match_frames(np.array([4e6]), host, content_ns=np.array([13e6]))
    assert m.nearest.tolist() == [0]
    assert (m.left[0], m.right[0]) == (1, 2) and m.weight[0] == pytest.approx(0.3)
    assert m.residual_ms[0] == pytest.approx(13.0, rel=1e-12)  # 13e6 ns in ms


def test_content_times_centre_frames_on_the_sample_they_show():
    host = np.array([0.0, 10e6, 30e6, 35e6])  # a variable render interval
    grab = np.array([5e6, 12e6, 29e6, 31e6, 36e6]) + 2e6  # 2 ms display latency
    matched = match_frames(content_times(grab, 2e6, host), host)
    assert matched.nearest.tolist() == [0, 1, 1, 2, 3]


def test_display_latency_from_known_frames():
    host = np.arange(0, 200) * 16.7e6
    rng = np.random.default_rng(0)
    grab = np.sort(rng.uniform(host[0], host[-2], 400)) + 21e6
    shown = np.searchsorted(host, grab - 21e6, side="right") - 1
    latency, bound = display_latency(grab, host, shown)
    assert latency == pytest.approx(21e6, abs=0.3e6)
    assert bound >= 0 and abs(latency - 21e6) <= bound + 0.3e6


def test_decoded_frames_take_their_sample_exactly():
    host = np.arange(5) * 16e6
    m = match_frames(np.array([17e6, 33e6]), host, decoded=np.array([1, -1]))
    assert m.nearest.tolist() == [1, 2]
    assert m.method.tolist() == [TIMECODE, CLOCK]
    assert m.weight[0] == 0 and m.left[0] == m.right[0] == 1


def test_unsorted_host_times_are_handled():
    host = np.array([0.0, 20e6, 10e6])
    m = match_frames(np.array([9e6, 19e6]), host)
    assert m.nearest.tolist() == [2, 1]


def test_unwrap_payload_picks_the_nearest_wrap():
    period = 1 << 24
    assert unwrap_payload(np.array([5, period - 2]), np.array([period + 3, period - 1])).tolist() \
        == [period + 5, period - 2]
    assert unwrap_payload(np.array([5]), np.array([period])).dtype == np.int64


def test_render_intervals_by_hand():
    ms = 1e6
    host = np.array([0, 10, 30, 100, 105, 115, 200]) * ms
    segment = np.array([0, 0, 0, 1, 1, 1, 2])
    # to the next sample; a segment's last takes its median; a lone sample 0
    assert (render_intervals(host, segment) / ms).tolist() == [10, 20, 15, 5, 10, 7.5, 0]
    # without segments the last repeats the one before
    assert (render_intervals(host) / ms).tolist() == [10, 20, 70, 5, 10, 85, 85]
    assert render_intervals(np.array([5.0])).tolist() == [0.0]
    # a segment of two samples: the one interval, twice
    assert (render_intervals(host[2:5], np.array([0, 1, 1])) / ms).tolist() == [0, 5, 5]


def test_restrict_to_span_by_hand():
    ms = 1e6
    host = np.array([0, 10, 20, 100, 110, 120]) * ms
    segment = np.array([0, 0, 0, 1, 1, 1])
    intervals = np.full(6, 10 * ms)  # spans [0, 30) and [100, 130) ms
    content = np.array([25, 30, 99, 500, 100, 0, 0]) * ms
    m = Matching(nearest=np.array([2, 2, 3, 0, 3, -1, 0]),
                 left=np.array([2, 2, 2, 0, 2, 0, 0]), right=np.array([2, 2, 3, 0, 3, 0, 1]),
                 weight=np.array([0.0, 0.0, 0.9, 0.0, 0.6, 0.0, 0.0]),
                 residual_ms=np.array([5.0, 10.0, -1.0, 500.0, -10.0, np.nan, 0.0]),
                 method=np.array([CLOCK, CLOCK, CLOCK, TIMECODE, CLOCK, NONE, CLOCK], np.int8))
    out = restrict_to_span(m, content, host, segment, intervals)
    # 30 ms is past the first span's end (exclusive), 99 ms before the second's start; a
    # timecode frame is never unmatched; a pair across segments keeps its left sample only
    assert out.method.tolist() == [CLOCK, NONE, NONE, TIMECODE, CLOCK, NONE, CLOCK]
    assert out.nearest.tolist() == [2, -1, -1, 0, 3, -1, 0]
    assert out.right.tolist() == [2, 2, 2, 0, 2, 0, 1]
    assert out.weight.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert out.left.tolist() == m.left.tolist()
    np.testing.assert_array_equal(out.residual_ms, [5.0, np.nan, np.nan, 500.0, -10.0, np.nan,
                                                    0.0])
    # one sample (span [0, 10) ms): an unmatched frame beside a matched one
    one = Matching(nearest=np.array([0, -1]), left=np.zeros(2, int), right=np.zeros(2, int),
                   weight=np.zeros(2), residual_ms=np.array([5.0, np.nan]),
                   method=np.array([CLOCK, NONE], np.int8))
    out = restrict_to_span(one, np.array([5, 60]) * ms, np.zeros(1), np.zeros(1, int),
                           np.array([10 * ms]))
    assert out.method.tolist() == [CLOCK, NONE] and out.nearest.tolist() == [0, -1]


def test_display_latency_when_the_bounds_do_not_intersect():
    # samples every 10 ms; three frames say the latency is in (5, 15], (25, 35] and (15, 25]
    # ms: no common value, so the median of the intervals' middles (20) and half their
    # interquartile range (15 to 25 ms / 2) are returned
    ms = 1e6
    host = np.arange(10) * 10 * ms
    grab = np.array([15, 45, 45]) * ms
    shown = np.array([0, 1, 2])
    latency, bound = display_latency(grab, host, shown)
    assert (latency, bound) == (pytest.approx(20 * ms), pytest.approx(5 * ms))


def test_unmatched_frames_beyond_the_tolerance_both_ways():
    host = np.array([0.0, 100e6])
    m = match_frames(np.array([-10e6, -10.5e6, 110e6, 110.5e6]), host, tolerance_ms=10)
    assert m.method.tolist() == [CLOCK, NONE, CLOCK, NONE]
    assert m.nearest.tolist() == [0, -1, 1, -1]


def test_content_times_by_hand():
    # samples at 100, 110, 130, 135 ms: render intervals 10, 20, 5 and 5 ms (the last repeats
    # the one before); slack 1e-4 * 35 ms / 3 = 1166.7 ns. Per frame (grab - 2 ms latency =
    # upper): k the last sample at or before upper + slack, centred = upper - step[k] / 2,
    # clipped to [H_k - step[k-1] / 2 + step[k] / 1000, H_k + step[k] / 2 - step[k] / 1000]
    # while upper lies in [first sample, last sample + its interval)
    ms = 1e6
    host = np.array([100, 110, 130, 135]) * ms
    upper = np.array([95e6, 100e6, 111e6, 125e6, 129_998_900, 129_998_700, 135e6, 140e6, 141e6])
    expected = [
        90e6,  # before the first sample: centred on sample 0's interval, not clipped
        95.01e6,  # on the first sample: 95 clipped up to 100 - 5 + 0.01
        105.02e6,  # 111 - 10 = 101 clipped up to 110 - 10 / 2 + 0.02 (a longer interval)
        115e6,  # 125 - 10, inside sample 1's range
        127_498_900,  # 1100 ns before 130 ms is within the slack: sample 2, 130 - 0.0011 - 2.5
        119_980_000,  # 1300 ns before is not: sample 1, clipped down to 110 + 10 - 0.02
        132_505_000,  # on the last sample: 132.5 clipped up to 135 - 5 / 2 + 0.005
        137_500_000,  # at the last sample's end (exclusive): 140 - 2.5, not clipped
        138_500_000,  # past it: 141 - 2.5
    ]
    out = content_times(upper + 2 * ms, 2 * ms, host)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3)


def test_content_times_with_intervals_in_any_sample_order():
    # two segments, 100 and 110 ms, then 130, 135 and 145 ms: render_intervals gives 10, 10
    # (the first segment's median) and 5, 10, 7.5 (the second's median of 5 and 10)
    ms = 1e6
    host = np.array([100, 110, 130, 135, 145]) * ms
    intervals = np.array([10, 10, 5, 10, 7.5]) * ms
    upper = np.array([105, 125, 131, 153]) * ms
    expected = np.array([
        100,  # 105 - 5
        114.99,  # between the segments: 125 - 5 clipped down to 110 + 5 - 0.01
        128.5,  # 131 - 2.5
        149.25,  # past the last sample plus its own interval (7.5, not the 10 before it)
    ]) * ms
    np.testing.assert_allclose(content_times(upper, 0.0, host, intervals), expected, rtol=0,
                               atol=1e-3)
    # the samples in another order (host times not sorted) give the same times
    swap = [0, 2, 1, 4, 3]
    np.testing.assert_allclose(content_times(upper, 0.0, host[swap], intervals[swap]),
                               expected, rtol=0, atol=1e-3)


def test_content_times_two_samples_and_the_slack_bound():
    ms = 1e6
    # two samples 10 ms apart: both intervals 10 ms; a frame on the second sample centres to
    # 10 - 5, clipped up to 10 - 5 + 0.01
    two = np.array([0, 10]) * ms
    assert render_intervals(two).tolist() == [10 * ms, 10 * ms]
    assert content_times(np.array([10 * ms]), 0.0, two) == pytest.approx([5.01 * ms], abs=1e-3)
    # slack 1e-4 * 20 ms / 2 = 1000 ns exactly: a frame exactly 1000 ns before a sample shows
    # it (4.999 ms clipped up to 5.01 ms), not the sample before (clipped down to 4.99 ms)
    three = np.array([0, 10, 20]) * ms
    out = content_times(np.array([9_999_000.0]), 0.0, three)
    assert out == pytest.approx([5.01 * ms], abs=1e-3)


def test_ties_between_overlapping_segments_keep_seq_order():
    # a segment every 10 ms from 0 and one every 5 ms from 50 ms: 50, 60, 70, 80 and 90 ms are
    # held by two samples each (rows 5..9 and 10, 12, .., 18). Sorted stably, the later row
    # comes second, so 2 ms past a tie the nearest sample and bracket start there, and the
    # bracket ends at the next 5 ms sample (weight 2 / 5)
    ms = 1e6
    host = np.r_[np.arange(10) * 10, 50 + np.arange(10) * 5] * ms
    ties = np.array([50, 60, 70, 80, 90])
    m = match_frames((ties + 2) * ms, host)
    assert m.nearest.tolist() == m.left.tolist() == [10, 12, 14, 16, 18]
    assert m.right.tolist() == [11, 13, 15, 17, 19]
    assert m.weight == pytest.approx([0.4] * 5)
    # 1 ms past a tie the frame shows the later row (5 ms interval, the earlier row's 10 ms
    # before it): T + 1 - 2.5, inside [T - 5 + 0.005, T + 2.5 - 0.005]
    intervals = np.r_[np.full(10, 10.0), np.full(10, 5.0)] * ms
    out = content_times((ties + 1) * ms, 0.0, host, intervals)
    np.testing.assert_allclose(out, (ties - 1.5) * ms, rtol=0, atol=1e-3)


def test_match_frames_bounds_by_hand():
    ms = 1e6
    # default tolerance 50 ms, inclusive
    m = match_frames(np.array([50, 50.5]) * ms, np.array([0, 200]) * ms)
    assert m.method.tolist() == [CLOCK, NONE] and m.method.dtype == np.int8
    # halfway between two samples the earlier one is nearest
    assert match_frames(np.array([5 * ms]), np.array([0, 10]) * ms).nearest.tolist() == [0]
    # the weight is the fraction of any positive span, however short (0.5 ns here)
    assert match_frames(np.array([0.25]), np.array([0, 0.5])).weight.tolist() == [0.5]
    # two samples out of order: 10 ms is row 1
    m = match_frames(np.array([11, 19]) * ms, np.array([20, 10]) * ms)
    assert m.nearest.tolist() == [1, 0]
    assert m.left.tolist() == [1, 1] and m.right.tolist() == [0, 0]
    assert m.weight == pytest.approx([0.1, 0.9])


def test_display_latency_by_hand():
    ms = 1e6
    # frames 20, 22 and 24 ms after samples 0, 1, 2 (10 ms apart; a fourth frame's timecode
    # was not read): lower bounds 10, 12, 14 ms. The 99th percentile of the lower bounds,
    # 12 + 0.98 * 2 = 13.96, and the 1st of the upper, 20 + 0.02 * 2 = 20.04, intersect:
    # their middle 17 and half-width 3.04
    host = np.arange(4) * 10 * ms
    latency, bound = display_latency(np.array([20, 32, 44, 5]) * ms, host,
                                     np.array([0, 1, 2, -1]))
    assert (latency, bound) == (pytest.approx(17 * ms), pytest.approx(3.04 * ms))
    # the intervals given (10, 10, 5, 5 ms; not the 100 ms to the next sample): bounds
    # (10, 20], (10, 20], (20, 25], (20, 25] touch at 20 ms, a half-width of 0
    host = np.arange(4) * 100 * ms
    latency, bound = display_latency(np.array([20, 120, 225, 325]) * ms, host,
                                     np.arange(4), np.array([10, 10, 5, 5]) * ms)
    assert (latency, bound) == (20 * ms, 0.0)
