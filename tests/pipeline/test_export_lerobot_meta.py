"""LeRobot statistics on small hand-worked arrays: `vector_stats` per dimension in the
feature's shape, and `ImageStats` per channel in [0, 1] shaped (3, 1, 1), both accepted by
the stats.json model."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.export._lerobot_meta import ImageStats, Stats, vector_stats

KEYS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}


def test_vector_stats_per_dimension_in_the_feature_shape():
    # two rows of a (2, 2) feature; per dimension (population std, linear quantiles
    # lo + q * (hi - lo) between the two sorted values):
    #   [0, 4]:   min 0,  max 4,  mean 2,  std 2, q01 0.04,  q10 0.4,  q50 2,  q90 3.6, q99 3.96
    #   [10, 10]: min 10, max 10, mean 10, std 0, every quantile 10
    #   [5, 1]:   min 1,  max 5,  mean 3,  std 2, q01 1.04,  q10 1.4,  q50 3,  q90 4.6, q99 4.96
    #   [-2, 2]:  min -2, max 2,  mean 0,  std 2, q01 -1.96, q10 -1.6, q50 0,  q90 1.6, q99 1.96
    rows = [[[0, 10], [5, -2]], [[4, 10], [1, 2]]]
    expected = {
        "min": [[0, 10], [1, -2]], "max": [[4, 10], [5, 2]], "mean": [[2, 10], [3, 0]],
        "std": [[2, 0], [2, 2]], "q01": [[0.04, 10], [1.04, -1.96]],
        "q10": [[0.4, 10], [1.4, -1.6]], "q50": [[2, 10], [3, 0]],
        "q90": [[3.6, 10], [4.6, 1.6]], "q99": [[3.96, 10], [4.96, 1.96]]}
    shaped = vector_stats(np.array(rows), (2, 2))
    flat = vector_stats(np.array(rows).reshape(2, 4))  # no shape: one flat list
    assert set(shaped) == set(flat) == KEYS
    assert shaped["count"] == flat["count"] == [2]
    for key, value in expected.items():
        assert np.shape(shaped[key]) == (2, 2), key
        np.testing.assert_allclose(shaped[key], value, rtol=1e-12, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(flat[key], np.ravel(value), rtol=1e-12, atol=1e-12,
                                   err_msg=key)
    assert Stats.model_validate(shaped).mean == [[2, 10], [3, 0]]


def test_image_stats_per_channel_over_several_frames():
    # every pixel counted (step 1); two 1x2 frames, four pixels, in units of 1/255:
    #   R 0, 255, 0, 255     -> [0, 1, 0, 1]        mean 0.5, std 0.5
    #   G 51, 51, 153, 153   -> [.2, .2, .6, .6]    mean 0.4, std 0.2
    #   B 255, 255, 51, 51   -> [1, 1, .2, .2]      mean 0.6, std 0.4
    stats = ImageStats(step=1)
    stats.add(np.array([[[0, 51, 255], [255, 51, 255]]], np.uint8))
    stats.add(np.array([[[0, 153, 51], [255, 153, 51]]], np.uint8))
    out = stats.result()
    assert out["count"] == [2]
    expected = {"min": [0, 0.2, 0.2], "max": [1, 0.6, 1], "mean": [0.5, 0.4, 0.6],
                "std": [0.5, 0.2, 0.4]}
    for key, value in expected.items():
        assert np.shape(out[key]) == (3, 1, 1), key
        np.testing.assert_allclose(np.ravel(out[key]), value, rtol=1e-9, atol=1e-9,
                                   err_msg=key)
    assert Stats.model_validate(out).count == [2]


def test_image_stats_of_one_pixel():
    # a single pixel (51, 102, 153): its value is the mean, min and max, the std is 0
    stats = ImageStats(step=1)
    stats.add(np.array([[[51, 102, 153]]], np.uint8))
    out = stats.result()
    for key in ("min", "max", "mean"):
        np.testing.assert_allclose(np.ravel(out[key]), [0.2, 0.4, 0.6], rtol=1e-12,
                                   err_msg=key)
    np.testing.assert_allclose(np.ravel(out["std"]), 0, atol=1e-7)
    assert out["count"] == [1]


def test_image_stats_count_every_eighth_pixel_of_every_eighth_row_by_default():
    # a 17x17 white frame whose pixels at rows and columns 0, 8 and 16 (the nine sampled
    # with the default step 8) are (0, 102, 204): any other pixel counted would bring 255
    image = np.full((17, 17, 3), 255, np.uint8)
    image[::8, ::8] = (0, 102, 204)
    stats = ImageStats()
    stats.add(image)
    out = stats.result()
    for key in ("min", "max", "mean"):
        np.testing.assert_allclose(np.ravel(out[key]), [0, 0.4, 0.8], rtol=1e-12,
                                   atol=1e-12, err_msg=key)
    np.testing.assert_allclose(np.ravel(out["std"]), 0, atol=1e-7)
    assert out["count"] == [1]


def test_stats_model_rejects_what_stats_json_does_not_hold():
    good = {"min": [0.0], "max": [1.0], "mean": [0.5], "std": [0.5], "count": [2]}
    assert Stats.model_validate(good).q50 is None  # quantiles are optional
    with pytest.raises(ValidationError):
        Stats.model_validate({**good, "extra": [1]})
    with pytest.raises(ValidationError):
        Stats.model_validate({**good, "count": [2.5]})  # a count is a whole number
    with pytest.raises(ValidationError):
        Stats.model_validate({k: v for k, v in good.items() if k != "count"})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_stats_refuse_a_value_json_cannot_hold(bad):
    good = {"min": [[0.0]], "max": [[1.0]], "mean": [[0.5]], "std": [[0.1]], "count": [3]}
    assert Stats.model_validate(good).mean == [[0.5]]
    for key in ("min", "mean", "q50"):
        with pytest.raises(ValidationError):
            Stats.model_validate({**good, key: [[0.0], [bad]]})
