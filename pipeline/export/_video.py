"""Constant-rate H.264 MP4 for exports: frame k of the file is presented at exactly k / fps
(the time base is 1/fps), so `round(t * fps)` finds every frame, and a keyframe every `gop`
frames keeps random access cheap (LeRobot's own encoder uses 2).

Into a stream that cannot seek (an upload to object storage) the MP4 is fragmented: an
empty `moov` first, then one `moof`+`mdat` fragment per keyframe interval, so nothing is
rewritten at the end. FFmpeg, PyAV and torchcodec (LeRobot's default decoder) read it frame
for frame like the plain file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from pipeline._errors import PipelineError

LEROBOT_GOP = 2
# FFmpeg's mov muxer: fragments at keyframes behind an empty moov, offsets relative to each
# moof (the form of fragmented MP4 that needs no seek back)
FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof"


class ConstantRateVideo:
    """Append RGB frames at a fixed rate; odd sizes are padded with black right/bottom."""

    def __init__(self, target: Path | BinaryIO, width: int, height: int, fps: int, *,
                 gop: int = LEROBOT_GOP, crf: int = 23, preset: str = "veryfast") -> None:
        if gop < 1 or fps < 1:
            raise PipelineError(f"--gop and the frame rate must be positive (got {gop}, {fps})")
        self.width, self.height = width + width % 2, height + height % 2
        self.frames = 0
        # the track's time base is 1/fps (left to itself the muxer picks 1/(512 fps))
        options = {"video_track_timescale": str(fps)}
        if isinstance(target, Path):
            self._container = av.open(str(target), "w", format="mp4", options=options)
        else:
            self._container = av.open(target, "w", format="mp4",
                                      options={**options, "movflags": FRAGMENTED})
        stream = self._container.add_stream("libx264", rate=fps, options={
            "crf": str(crf), "preset": preset, "g": str(gop), "bf": "0",
            "keyint_min": str(gop)})
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        self._stream = stream

    def write(self, image: np.ndarray) -> None:
        """Encode `image` (H x W x 3 uint8 RGB) as the next frame."""
        h, w = image.shape[:2]
        if (h, w) != (self.height, self.width):
            image = np.pad(image, ((0, self.height - h), (0, self.width - w), (0, 0)))
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> ConstantRateVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
