import av
import numpy as np
import pytest

from capture import RecorderError
from capture._video import VideoWriter


def test_true_timestamps_survive_and_odd_sizes_are_padded(tmp_path):
    path = tmp_path / "v.mkv"
    grabs = [0, 16_000, 35_500, 50_123, 100_000]  # variable frame rate, a dropped grab
    with VideoWriter(path, 65, 33, crf=10) as writer:
        pts = [writer.write(np.full((33, 65, 3), 40 * i, np.uint8), g)
               for i, g in enumerate(grabs)]
    assert pts == [0, 16_000, 36_000, 50_000, 100_000]  # Matroska keeps milliseconds
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert [round(f.pts * stream.time_base * 1_000_000) for f in frames] == pts
    assert (frames[0].width, frames[0].height) == (66, 34)
    means = [f.to_ndarray(format="rgb24")[:33, :65].mean() for f in frames]
    np.testing.assert_allclose(means, [0, 40, 80, 120, 160], atol=3)


def test_pts_must_increase_and_size_must_match(tmp_path):
    with VideoWriter(tmp_path / "v.mkv", 32, 32) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8), 10_000)
        with pytest.raises(RecorderError, match="pts must increase"):
            writer.write(np.zeros((32, 32, 3), np.uint8), 10_000)
        with pytest.raises(RecorderError, match="expected 32x32"):
            writer.write(np.zeros((16, 32, 3), np.uint8), 20_000)


def test_mp4_keeps_times_to_the_90khz_tick(tmp_path):
    path = tmp_path / "v.mp4"
    times_us = [0, 16_683, 33_367, 51_001, 66_734]
    with VideoWriter(path, 32, 32, fps_hint=60, container="mp4") as writer:
        stored = [writer.write(np.zeros((32, 32, 3), np.uint8), t) for t in times_us]
    assert np.abs(np.array(stored) - times_us).max() <= 6  # 1/180000 s
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    np.testing.assert_allclose(decoded, np.array(times_us) / 1e6, atol=1 / 180_000)


def test_unknown_container_is_refused(tmp_path):
    with pytest.raises(RecorderError, match="unknown container"):
        VideoWriter(tmp_path / "v.avi", 32, 32, container="avi")
