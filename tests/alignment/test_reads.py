"""Timecode reads checked by hand: the row a read names, the longest non-decreasing run,
the onset latency and the checks that keep or reject a read (docs/timecode.md)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alignment._reads import _non_decreasing, candidate_rows, check_reads, onset_latency

MS = 1_000_000


def _longest_non_decreasing_length(values):
    """O(n^2) dynamic programme, independent of the patience sort under test."""
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] <= values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


@given(st.lists(st.integers(0, 6), max_size=30))
def test_non_decreasing_keeps_a_longest_run(values):
    keep = _non_decreasing(np.array(values, np.int64))
    kept = np.array(values, np.int64)[keep]
    assert bool(np.all(np.diff(kept) >= 0))
    assert keep.sum() == _longest_non_decreasing_length(values)


def test_non_decreasing_by_hand():
    # 1, 2, 2, then 5 or 4: both runs are 4 long; the one ending last is kept
    assert _non_decreasing(np.array([3, 1, 2, 2, 5, 4])).tolist() == [
        False, True, True, True, False, True]


def test_candidate_rows_look_seqs_up_in_the_segment_nearest_the_grab():
    # two Plays of an older session, both counting seqs 5, 6, 7
    host = np.array([0, 10, 20, 1000, 1010, 1020], np.float64) * MS
    seqs = np.array([5, 6, 7, 5, 6, 7])
    segment = np.array([0, 0, 0, 1, 1, 1])
    # the last frame reads 6 at 510 ms, 500 ms from both Plays' seq 6: the first Play wins
    payload = np.array([6, 6, 9, -1, 7, 5, 6])
    grab = np.array([12, 1012, 15, 30, 1015, 700, 510], np.float64) * MS
    assert candidate_rows(payload, grab, host, seqs, segment).tolist() == [
        1, 4, -1, -1, 5, 3, 1]


def test_candidate_rows_unwrap_the_24_bit_payload():
    host = np.array([0.0, 10.0, 20.0]) * MS
    seqs = np.array([2**24 - 1, 2**24, 2**24 + 1])
    assert candidate_rows(np.array([2**24 - 1, 0, 1]), host, host, seqs,
                          np.zeros(3, np.int64)).tolist() == [0, 1, 2]


def test_candidate_rows_unwrap_around_the_segment_sample_at_the_grab():
    # Play 1 has seqs 0 and 2**23 + 1 (a long drop between them), Play 2 restarts at 0.
    # The 24-bit payload is unwrapped to the wrap nearest the seq of the segment's first
    # sample at or after the grab, clipped to the segment's own samples:
    # - read 0 grabbed at 95 ms, before Play 1's first sample: around seq 0 it is 0 (row 0);
    #   around 2**23 + 1 it would be 2**24 (more than half a period away from 0)
    # - read 2**23 + 1 grabbed at 115 ms, after Play 1's last sample: around 2**23 + 1 it is
    #   itself (row 1); around 0 (the first sample's, or Play 2's first seq) it would be
    #   2**23 + 1 - 2**24, in no segment
    host = np.array([100, 110, 1000, 1010], np.float64) * MS
    seqs = np.array([0, 2**23 + 1, 0, 1])
    segment = np.array([0, 0, 1, 1])
    payload = np.array([0, 2**23 + 1])
    grab = np.array([95, 115], np.float64) * MS
    assert candidate_rows(payload, grab, host, seqs, segment).tolist() == [0, 1]


def test_onset_latency_by_hand():
    # samples every 16 ms; frames every 10 ms. A new sample appears between grabs 15 and 25
    # (sample 1 at 16: 4 ms), 35 and 45 (sample 2 at 32: 8 ms), 45 and 55 (sample 3 at 48:
    # 2 ms); sample 4 follows an unread frame, so the grab before it is unknown
    host = np.array([0, 16, 32, 48, 64], np.float64) * MS
    grab = np.arange(5, 95, 10, dtype=np.float64) * MS
    rows = np.array([0, 0, 1, 1, 2, 3, 3, -1, 4])
    latency, bound = onset_latency(grab, host, rows)
    mean = (4 + 8 + 2) / 3
    std = np.sqrt(((4 - mean) ** 2 + (8 - mean) ** 2 + (2 - mean) ** 2) / 2)
    assert latency == pytest.approx(mean * MS, abs=1)
    # twice the standard error of the mean plus half the 10 ms grab interval
    assert bound == pytest.approx((2 * std / np.sqrt(3) + 5) * MS, abs=1)


def test_onset_latency_needs_two_changes():
    host = np.array([0, 16, 32], np.float64) * MS
    grab = np.array([5, 15, 25], np.float64) * MS
    assert onset_latency(grab, host, np.array([0, 0, 1])) is None  # one change
    assert onset_latency(grab[:2], host, np.array([0, 1])) is None  # two reads
    # identical delays: the spread is floored at 1 us
    latency, bound = onset_latency(np.array([10, 26, 42], np.float64) * MS, host,
                                   np.array([0, 1, 2]))
    assert latency == pytest.approx(2 * MS)
    assert bound - 8 * MS == pytest.approx(2e3 / np.sqrt(2))


def test_check_reads_by_hand():
    # samples every 16 ms; frame j grabbed at 16 j + 30 ms shows sample j (30 ms latency).
    # Frame 5 reads sample 0 (80 ms later than the others' median: beyond 3 render
    # intervals + 2 ms) and frame 12 reads sample 9 (within tolerance, but it runs
    # backwards after 10 and 11): both rejected
    host = np.arange(20, dtype=np.float64) * 16 * MS
    grab = np.arange(18, dtype=np.float64) * 16 * MS + 30 * MS
    reads = np.arange(18)
    reads[5], reads[12] = 0, 9
    checked = check_reads(reads, grab, host, np.zeros(20, np.int64), np.zeros(1))
    expected = np.arange(18)
    expected[[5, 12]] = -1
    assert checked.rows.tolist() == expected.tolist()
    assert checked.rejected == 2
    # every new sample appears 22 ms (mid-way between grabs 16 ms apart) after its render,
    # over the 13 consecutive pairs of kept frames
    assert checked.latency_ns == pytest.approx(22 * MS)
    assert checked.latency_bound_ns == pytest.approx(8 * MS + 2e3 / np.sqrt(13))


def test_check_reads_widen_by_the_clock_error():
    # the last frame reads a sample 4 renders (64 ms) newer than the one shown: beyond
    # 3 intervals + 2 ms (50 ms) with an exact clock, within it when the segment's clock
    # offset is uncertain by 5 ms (4 x 5 ms more); 3 ms give 62 ms, short of it, and 3.5 ms
    # give 48 + 4 x 3.5 + 2 = 64 ms exactly, the bound itself, which is kept
    host = np.arange(22, dtype=np.float64) * 16 * MS
    grab = np.arange(18, dtype=np.float64) * 16 * MS + 30 * MS
    reads = np.arange(18)
    reads[17] = 21

    def checked(clock_std_ms):
        return check_reads(reads, grab, host, np.zeros(22, np.int64),
                           np.array([clock_std_ms * MS]))

    assert [(c.rows[17], c.rejected) for c in map(checked, [0.0, 3.0, 3.5, 5.0])] == [
        (-1, 1), (-1, 1), (21, 0), (21, 0)]


def test_check_reads_centre_each_read_on_its_own_render_interval():
    # samples every 16 ms, but sample 10 stays 96 ms (a hitch: host 160, then 256); frame m
    # grabbed at 16 m + 30 ms shows the last sample rendered by 16 m: sample m up to 10,
    # sample 10 at m = 10..15 (delays 30, 46, ..., 110 ms), then sample m - 5.
    # Each read's delay less half its render interval: 30 - 8 = 22 ms for the others (the
    # median), 30..110 - 48 = -18..62 ms for sample 10, within 40 ms of 22: all kept under
    # 3 x 16 + 2 = 50 ms (the deviations' MAD is 0: most are exactly 22). Centred on the
    # interval's start, its end or a third of it, the hitch's reads would be 40..120,
    # 80..160 or 5..53 ms off
    host = np.arange(28, dtype=np.float64) * 16 * MS
    host[11:] += 80 * MS
    grab = np.arange(30, dtype=np.float64) * 16 * MS + 30 * MS
    reads = np.r_[np.arange(11), np.full(5, 10), np.arange(11, 25)]
    checked = check_reads(reads, grab, host, np.zeros(28, np.int64), np.zeros(1))
    assert checked.rows.tolist() == reads.tolist()
    assert checked.rejected == 0
    # each new sample, 11 after its hitch too, appears mid-way between grabs 22 ms after it
    assert checked.latency_ns == pytest.approx(22 * MS)


def test_check_reads_scale_the_tolerance_by_the_spread():
    # frames grabbed 7 ms late (even frames) or early (odd), each showing its sample:
    # delays less half the 16 ms interval are 29 and 15 ms. The last (odd) frame misreads
    # sample 23, 64 ms ahead: -49 ms. Sorted: -49, nine 15s, ten 29s: the median is 22 and
    # the median deviation 7 ms, so the tolerance is 5 x 1.4826 x 7 = 51.891 ms (above
    # 3 x 16 = 48) + 2 ms = 53.891 ms; the misread is 71 ms off: rejected
    host = np.arange(26, dtype=np.float64) * 16 * MS
    jitter = np.where(np.arange(20) % 2 == 0, 7.0, -7.0) * MS
    grab = np.arange(20, dtype=np.float64) * 16 * MS + 30 * MS + jitter
    reads = np.arange(20)
    reads[19] = 23
    checked = check_reads(reads, grab, host, np.zeros(26, np.int64), np.zeros(1))
    assert checked.rows.tolist() == [*range(19), -1]
    assert checked.rejected == 1


def test_check_reads_order_only_the_reads_within_tolerance():
    # frames 16 and 17 misread samples 40 and 41 (384 ms ahead: rejected by the tolerance);
    # frame 18 reads 18. Among all reads, 0..15, 40, 41 would be the longest non-decreasing
    # run and drop frame 18; among the reads within tolerance 0..15, 18 are in order
    host = np.arange(45, dtype=np.float64) * 16 * MS
    grab = np.arange(19, dtype=np.float64) * 16 * MS + 30 * MS
    reads = np.arange(19)
    reads[16], reads[17] = 40, 41
    checked = check_reads(reads, grab, host, np.zeros(45, np.int64), np.zeros(1))
    assert checked.rows.tolist() == [*range(16), -1, -1, 18]
    assert checked.rejected == 2


def test_check_reads_fall_back_to_the_display_latency():
    # Play 1 samples every 16 ms (0..144 ms), Play 2 at 1000, 1016, 1032, 1040 ms. Every
    # other frame is unread, so no two consecutive frames show a new sample and the latency
    # comes from the reads' bounds: each of samples 0..11 and 13 is read 30 ms after its
    # render. Render intervals per Play: 16 ms, the last of each Play taking its Play's
    # median (16 ms, not the 856 ms gap to Play 2 nor the 8 ms before it): every read's
    # latency lies in (30 - 16, 30] ms, whose middle is 22 ms and half-width 8 ms
    host = np.r_[np.arange(10) * 16, [1000, 1016, 1032, 1040]].astype(np.float64) * MS
    segment = np.r_[np.zeros(10, np.int64), np.ones(4, np.int64)]
    shown = np.r_[np.arange(12), 13]
    reads = np.full(26, -1)
    reads[::2] = shown
    grab = np.repeat(host[shown], 2) + np.tile([30, 38], 13) * MS
    checked = check_reads(reads, grab, host, segment, np.zeros(2))
    assert checked.rows.tolist() == reads.tolist()
    assert checked.rejected == 0
    assert checked.latency_ns == pytest.approx(22 * MS)
    assert checked.latency_bound_ns == pytest.approx(8 * MS)


def test_no_reads_no_latency():
    checked = check_reads(np.full(3, -1), np.zeros(3), np.zeros(3), np.zeros(3, np.int64),
                          np.zeros(1))
    assert checked.rows.tolist() == [-1, -1, -1]
    assert (checked.latency_ns, checked.latency_bound_ns, checked.rejected) == (None, None, 0)
