"""H.264 with true timestamps: the one video encoder every writer uses.

Frames carry their own presentation time (`pts_us`), so variable frame rate and dropped
grabs are represented as they happened, never re-timed to `i / fps`. Two containers:

- `matroska` (recording): stores milliseconds, so the stored pts is the grab time rounded
  to 1 ms (the frame table keeps exact grab times in ns); clusters close at least every
  second, so a crash loses at most the last second of video.
- `mp4` (exports, overlays): a 90 kHz track timescale and no B-frames, so every frame's
  presentation time is the requested time within 1/180000 s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from capture._errors import RecorderError

logger = logging.getLogger(__name__)

CLUSTER_MS = 1000
MP4_TIMESCALE = 90_000


@dataclass(frozen=True)
class _Container:
    time_base: Fraction
    format_options: dict[str, str]
    codec_options: dict[str, str]


_CONTAINERS = {
    "matroska": _Container(Fraction(1, 1000),
                           {"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
                           {"tune": "zerolatency"}),
    "mp4": _Container(Fraction(1, MP4_TIMESCALE),
                      {"video_track_timescale": str(MP4_TIMESCALE)}, {"bf": "0"}),
}


class VideoWriter:
    """Encode RGB frames with explicit microsecond timestamps.

    Odd frame sizes are padded with black on the right/bottom (H.264 4:2:0 needs even sizes);
    `Session.iter_frames` crops the padding back off using the manifest's capture size.
    """

    def __init__(self, path: Path, width: int, height: int, *, fps_hint: float = 60.0,
                 crf: int = 18, preset: str = "veryfast",
                 container: Literal["matroska", "mp4"] = "matroska") -> None:
        if width <= 0 or height <= 0:
            raise RecorderError(f"video size must be positive, got {width}x{height}")
        if container not in _CONTAINERS:
            raise RecorderError(f"unknown container {container!r}; use one of "
                                f"{sorted(_CONTAINERS)}")
        spec = _CONTAINERS[container]
        self._time_base = spec.time_base
        self.path = Path(path)
        self.width, self.height = width, height
        self._padded = (width + width % 2, height + height % 2)
        self._last_pts = -1
        self.frames_written = 0
        try:
            self._container = av.open(str(self.path), "w", format=container,
                                      options=spec.format_options)
        except av.FFmpegError as exc:
            raise RecorderError(f"cannot create {self.path}: {exc}") from None
        rate = Fraction(fps_hint).limit_denominator(1000)
        stream = self._container.add_stream(
            "libx264", rate=rate, options={"crf": str(crf), "preset": preset,
                                           "g": str(max(1, round(2 * fps_hint))),
                                           **spec.codec_options})
        stream.width, stream.height = self._padded
        stream.pix_fmt = "yuv420p"
        stream.time_base = spec.time_base
        stream.codec_context.time_base = spec.time_base
        self._stream = stream
        self._closed = False

    def write(self, image: np.ndarray, pts_us: int) -> int:
        """Encode one H x W x 3 uint8 RGB (or BGRA from a screen grab, 4 channels) frame.

        Returns the pts as stored, in microseconds (whole ms for Matroska)."""
        tb = self._time_base
        pts = round(pts_us * tb.denominator / (1_000_000 * tb.numerator))
        if pts <= self._last_pts:
            raise RecorderError(f"pts must increase by at least one tick ({tb} s): "
                                f"{pts_us} us after tick {self._last_pts}")
        if image.shape[0] != self.height or image.shape[1] != self.width:
            raise RecorderError(f"frame is {image.shape[1]}x{image.shape[0]}, "
                                f"expected {self.width}x{self.height}")
        fmt = "bgra" if image.shape[2] == 4 else "rgb24"
        if self._padded != (self.width, self.height):
            padded = np.zeros((self._padded[1], self._padded[0], image.shape[2]), np.uint8)
            padded[: self.height, : self.width] = image
            image = padded
        # wraps the array without copying it (a copy of a 1080p frame costs ~8 ms with the GIL)
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format=fmt)
        frame.pts = pts
        frame.time_base = tb
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts
        self.frames_written += 1
        return round(pts * tb * 1_000_000)

    def close(self) -> None:
        """Flush the encoder and close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
