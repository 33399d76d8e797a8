"""Choosing what an export reads (`pipeline/export/_source.py`): the timecode strip's
rectangle worked by hand, the frame-rate cap at its edges, the strip masked or cropped on
a session whose strip starts on an odd row, and the refusals of sessions that cannot be
exported, each with its message."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.export import ExportOptions
from pipeline.export._source import _keep_rows, iter_images, load_session, strip_rect
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session

# The strip is 40 x 3 cells of 8 viewport px (320 x 24) at the viewport's bottom left;
# captured px = scale * viewport px + offset, rounded outwards and kept inside the frame.
STRIP_CASES = [
    # x0 = 10.3, y0 = 0.75 * (400 - 24) + 4.6 = 286.6, x1 = 0.5 * 320 + 10.3 = 170.3,
    # y1 = 0.75 * 400 + 4.6 = 304.6
    (((0.5, 0.75), (10.3, 4.6), 400.0, (300, 310)), (10, 286, 171, 305)),
    # x0 = -5.5 -> 0, y0 = 76 - 3.2 = 72.8, x1 = 314.5 -> the frame's 200, y1 = 96.8 -> 90
    (((1.0, 1.0), (-5.5, -3.2), 100.0, (200, 90)), (0, 72, 200, 90)),
    # a viewport shorter than the strip: y0 = 20 - 24 = -4 -> 0
    (((1.0, 1.0), (0.0, 0.0), 20.0, (400, 300)), (0, 0, 320, 20)),
]


@pytest.mark.parametrize(("args", "rect"), STRIP_CASES)
def test_strip_rectangle_by_hand(args, rect):
    scale, offset, viewport_h, frame = args
    assert strip_rect(np.array(scale), np.array(offset), viewport_h, frame) == rect


def test_the_frame_rate_cap_keeps_frames_exactly_one_period_apart():
    t = np.arange(6) / 10  # 0.3 - 0.2 is 0.09999999999999998 in floating point
    assert _keep_rows(t, np.ones(6, bool), 10.0).tolist() == [0, 1, 2, 3, 4, 5]
    # the slack is 1e-6 s: a frame exactly that early is kept, a frame 2e-6 s early is not
    assert _keep_rows(np.array([0.0, 1.0 / 10 - 1e-6]), np.ones(2, bool), 10.0).tolist() == [0, 1]
    assert _keep_rows(np.array([0.0, 0.1 - 2e-6, 0.2]), np.ones(3, bool), 10.0).tolist() == [0, 2]
    # frames without state are never kept, and the period runs from the last kept frame
    has_state = np.array([False, True, True, True, True])
    assert _keep_rows(np.array([0.0, 0.05, 0.1, 0.16, 0.2]), has_state, 10.0).tolist() == [1, 3]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """320 x 190 frames captured at a quarter of a 1280 x 720 viewport, 3 px down: the strip
    is x 0..80, y 0.25 * (720 - 24) + 3 = 177 .. 0.25 * 720 + 3 = 183."""
    samples = [synthetic_sample(i, i / 60) for i in range(12)]
    path = make_session(tmp_path_factory.mktemp("source"), samples, [0, 2, 4, 6, 8, 10],
                        [i / 30 for i in range(6)], size=(320, 190), scale=(0.25, 0.25),
                        offset=(0.0, 3.0), video=True)
    assert synthetic_sample(0, 0.0)["camera"]["viewport"] == [1280, 720]
    opened = Session.open(path)
    write_labels(opened, compute_labels(opened))
    return path


def test_mask_blacks_out_exactly_the_strip(session):
    options = ExportOptions(timecode="mask")
    data = load_session(session, options)
    assert data.strip == (0, 177, 80, 183) and data.size == (320, 190)
    raw = {f.index: f.image for f in Session.open(session).iter_frames()}
    images = list(iter_images(data, options))
    assert [row for row, _ in images] == list(range(6))
    for row, image in images:
        before = raw[int(data.frames[row])]
        assert before[177:183, :80].any()  # the frame shows something there
        assert not image[177:183, :80].any()
        outside = np.ones(image.shape[:2], bool)
        outside[177:183, :80] = False
        np.testing.assert_array_equal(image[outside], before[outside])


def test_crop_ends_above_the_strip_at_an_even_height(session):
    options = ExportOptions(timecode="crop")
    data = load_session(session, options)
    assert data.size == (320, 176)  # the strip starts on row 177: 176 rows, even for 4:2:0
    raw = {f.index: f.image for f in Session.open(session).iter_frames()}
    for row, image in iter_images(data, options):
        np.testing.assert_array_equal(image, raw[int(data.frames[row])][:176])


def _copy(session, tmp_path):
    return shutil.copytree(session, tmp_path / "copy")


def test_a_session_without_rows_or_video_is_refused_by_name(session, tmp_path):
    path = _copy(session, tmp_path)
    labels = pq.read_table(path / "labels.parquet")
    (path / "video.mkv").unlink()
    with pytest.raises(PipelineError, match=re.escape(f"{path} has no video to export")):
        load_session(path, ExportOptions())
    pq.write_table(labels.slice(0, 0), path / "labels.parquet")  # no rows at all
    with pytest.raises(PipelineError, match=re.escape(
            f"{path} has no frames with state to export; check the alignment report "
            "(alignment.json)")):
        load_session(path, ExportOptions())


def test_aligned_rows_missing_at_the_end_are_a_mismatch(session, tmp_path):
    path = _copy(session, tmp_path)
    aligned = pq.read_table(path / "aligned.parquet")
    pq.write_table(aligned.slice(0, aligned.num_rows - 1), path / "aligned.parquet")
    with pytest.raises(PipelineError, match=re.escape(
            f"{path}: labels.parquet does not match aligned.parquet; re-run `stpe labels")):
        load_session(path, ExportOptions())


def test_a_video_shorter_than_the_labels_is_refused_with_the_counts(session, tmp_path):
    path = _copy(session, tmp_path)
    options = ExportOptions()
    data = load_session(path, options)
    data.frames[-1] = 99  # a labelled frame the video does not hold
    with pytest.raises(PipelineError, match=re.escape(
            f"{path}: the video holds 5 of the 6 labelled frames; run `stpe repair` and "
            "`stpe align`")):
        list(iter_images(data, options))


def test_an_undecodable_video_is_refused_with_the_decoder_reason(session, tmp_path):
    path = _copy(session, tmp_path)
    options = ExportOptions()
    data = load_session(path, options)
    (path / "video.mkv").write_bytes(b"\x1aE\xdf\xa3" + bytes(4000))  # an EBML id, then junk
    with pytest.raises(PipelineError, match=re.escape(f"cannot decode the video of {path}: ")):
        list(iter_images(data, options))
