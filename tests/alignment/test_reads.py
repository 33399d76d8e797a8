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
    payload = np.array([6, 6, 9, -1, 7, 5])
    grab = np.array([12, 1012, 15, 30, 1015, 700], np.float64) * MS
    assert candidate_rows(payload, grab, host, seqs, segment).tolist() == [1, 4, -1, -1, 5, 3]


def test_candidate_rows_unwrap_the_24_bit_payload():
    host = np.array([0.0, 10.0, 20.0]) * MS
    seqs = np.array([2**24 - 1, 2**24, 2**24 + 1])
    assert candidate_rows(np.array([2**24 - 1, 0, 1]), host, host, seqs,
                          np.zeros(3, np.int64)).tolist() == [0, 1, 2]


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
    assert latency == pytest.approx(2 * MS) and bound == pytest.approx(2e3 / np.sqrt(2) + 8 * MS)


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
    # offset is uncertain by 5 ms (4 x 5 ms more)
    host = np.arange(22, dtype=np.float64) * 16 * MS
    grab = np.arange(18, dtype=np.float64) * 16 * MS + 30 * MS
    reads = np.arange(18)
    reads[17] = 21
    exact = check_reads(reads, grab, host, np.zeros(22, np.int64), np.zeros(1))
    loose = check_reads(reads, grab, host, np.zeros(22, np.int64), np.array([5.0 * MS]))
    assert (exact.rows[17], exact.rejected) == (-1, 1)
    assert (loose.rows[17], loose.rejected) == (21, 0)


def test_no_reads_no_latency():
    checked = check_reads(np.full(3, -1), np.zeros(3), np.zeros(3), np.zeros(3, np.int64),
                          np.zeros(1))
    assert checked.rows.tolist() == [-1, -1, -1]
    assert (checked.latency_ns, checked.latency_bound_ns, checked.rejected) == (None, None, 0)
