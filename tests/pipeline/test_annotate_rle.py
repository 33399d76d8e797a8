"""COCO RLE: round trips, agreement with pycocotools, hostile input; derived-file writes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from capture import SessionError, SessionWriter
from pipeline._errors import PipelineError
from pipeline.annotate._rle import mask_box, rle_area, rle_decode, rle_encode

masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda hw: arrays(np.bool_, hw))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_round_trip_and_area(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    assert rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(rle_decode(rle), mask)
    assert rle_area(rle) == int(mask.sum())


@settings(max_examples=200, deadline=None)
@given(masks)
def test_matches_pycocotools(mask: np.ndarray) -> None:
    coco = pytest.importorskip("pycocotools.mask")
    reference = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert rle_encode(mask)["counts"] == reference["counts"].decode()
    np.testing.assert_array_equal(rle_decode({"size": reference["size"],
                                              "counts": reference["counts"].decode()}), mask)


def test_known_values() -> None:
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 1:3] = True  # column-major runs: 4 zeros, 1, 2 zeros, 1, 4 zeros
    assert rle_decode({"size": [3, 4], "counts": [4, 1, 2, 1, 4]}).tolist() == mask.tolist()
    # counts after the 2nd are delta-coded from the one two back: 4, 1, 2, 1-1, 4-2
    assert rle_encode(mask)["counts"] == "41202"
    assert rle_encode(np.ones((2, 2), bool))["counts"] == "04"
    assert mask_box(mask) == (1.0, 1.0, 3.0, 2.0)
    assert mask_box(np.zeros((2, 2), bool)) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("rle", [
    {"size": [3, 4], "counts": "41"},              # too few pixels
    {"size": [3, 4], "counts": "4121199"},         # too many
    {"size": [3, 4], "counts": "4\x7f"},           # invalid character
    {"size": [3, 4], "counts": "l"},               # truncated: continuation bit, no more
    {"size": [2, 2], "counts": [2, -1, 3]},        # negative run
])
def test_corrupt_rle_is_a_clear_error(rle: dict) -> None:
    with pytest.raises(PipelineError, match="RLE"):
        rle_decode(rle)


def test_rle_encode_refuses_non_2d() -> None:
    with pytest.raises(PipelineError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2), bool))


def test_write_output_is_atomic_and_confined(tmp_path) -> None:
    writer = SessionWriter.create(tmp_path, "s1")
    path = writer.write_output("annotations/embed/x.json", b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert not list(path.parent.glob("*.tmp"))
    for hostile in ("../escape.json", "/etc/passwd", "annotations/../../x", "."):
        with pytest.raises(SessionError, match="outside session"):
            writer.write_output(hostile, b"x")
    assert not (tmp_path / "escape.json").exists()
    writer.close()
