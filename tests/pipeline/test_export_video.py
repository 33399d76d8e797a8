"""The exports' constant-rate MP4 (`pipeline/export/_video.py`), read back with PyAV, and
the encoder's settings read from the stream itself: x264 writes the options it applied into
an SEI message of the first frame ("x264 - core N - H.264/MPEG-4 AVC codec - ... options:
cabac=1 ref=1 ..."), so they are checked against x264's own record, not our arguments."""

from __future__ import annotations

import io
import re
from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline._errors import PipelineError
from pipeline.export._video import ConstantRateVideo

GREYS = (200, 40, 120, 80, 160, 20)


class Unseekable(io.RawIOBase):
    """A write-only stream that cannot go back, as an upload to object storage."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += bytes(b)
        return len(b)


def _x264_options(data: bytes) -> dict[str, str]:
    found = re.search(rb"x264 - core \d+ .*? options: ([^\x00]+)", data)
    assert found, "no x264 settings in the stream"
    return dict(item.split("=", 1) for item in found.group(1).decode().split())


def _encode(target, width: int, height: int, fps: int, **kwargs) -> None:
    with ConstantRateVideo(target, width, height, fps, **kwargs) as video:
        for grey in GREYS:
            video.write(np.full((height, width, 3), grey, np.uint8))


def _decode(source) -> tuple[str, Fraction, Fraction, list[tuple[int, bool, np.ndarray]]]:
    with av.open(source) as container:
        stream = container.streams.video[0]
        frames = [(f.pts, f.key_frame, f.to_ndarray(format="rgb24"))
                  for f in container.decode(video=0)]
        return container.format.name, stream.time_base, stream.average_rate, frames


@pytest.mark.parametrize("streamed", [False, True], ids=["file", "stream"])
def test_frame_k_is_at_k_over_fps_padded_to_even_with_a_keyframe_every_gop(tmp_path, streamed):
    target = Unseekable() if streamed else tmp_path / "clip"  # no suffix: MP4 regardless
    _encode(target, 33, 17, 10, gop=2)
    data = bytes(target.data) if streamed else target.read_bytes()
    assert data[4:8] == b"ftyp"  # an MP4 (ISO BMFF) file starts with its ftyp box
    assert (b"moof" in data) == streamed  # fragments only where the target cannot seek
    name, time_base, rate, frames = _decode(io.BytesIO(data))
    assert "mp4" in name.split(",")
    assert time_base == Fraction(1, 10) and rate == 10
    assert [pts for pts, _, _ in frames] == list(range(len(GREYS)))
    assert [key for _, key, _ in frames] == [True, False] * 3
    for grey, (_, _, rgb) in zip(GREYS, frames, strict=True):
        assert rgb.shape == (18, 34, 3)  # 17 x 33 padded to even, right and bottom
        # the picture stays where it was (top left); lossy coding moves values a little
        assert np.abs(rgb[:15, :31].astype(int) - grey).max() <= 8
        # the padding is black: darker than the picture, wherever the picture is not black
        if grey >= 80:
            assert rgb[:15, 33].mean() < grey - 25 and rgb[17, :31].mean() < grey - 25


def test_x264_applies_the_documented_settings(tmp_path):
    _encode(tmp_path / "a.mp4", 16, 16, 30)
    options = _x264_options((tmp_path / "a.mp4").read_bytes())
    # a keyframe every 2 frames (LeRobot's encoder), no B-frames, so decode order is
    # presentation order, CRF 23
    assert options["keyint"] == "2" and options["keyint_min"] == "2"
    assert options["bframes"] == "0" and options["rc"] == "crf"
    assert options["crf"] == "23.0"
    # x264's preset "veryfast" (x264 --fullhelp: --ref 1 --subme 2 --trellis 0; me hex)
    assert (options["ref"], options["subme"], options["trellis"], options["me"]) == \
        ("1", "2", "0", "hex")


@pytest.mark.parametrize(("gop", "fps"), [(0, 10), (-1, 10), (2, 0), (2, -5)])
def test_a_gop_or_rate_below_one_is_refused_before_anything_is_written(tmp_path, gop, fps):
    with pytest.raises(PipelineError, match=re.escape(
            f"--gop and the frame rate must be positive (got {gop}, {fps})")):
        ConstantRateVideo(tmp_path / "x.mp4", 4, 4, fps, gop=gop)
    assert not (tmp_path / "x.mp4").exists()


def test_one_frame_a_second_with_every_frame_a_keyframe(tmp_path):
    _encode(tmp_path / "slow.mp4", 8, 8, 1, gop=1)
    _, time_base, rate, frames = _decode(str(tmp_path / "slow.mp4"))
    assert time_base == Fraction(1, 1) and rate == 1
    assert [(pts, key) for pts, key, _ in frames] == [(k, True) for k in range(len(GREYS))]
