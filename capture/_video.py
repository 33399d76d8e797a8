"""H.264 in Matroska with true timestamps: the one video encoder every writer uses.

Frames carry their own presentation time (`pts_us`, from the grab time), so variable frame
rate and dropped grabs are represented as they happened, never re-timed to `i / fps`.
Matroska stores milliseconds, so the stored pts is the grab time rounded to 1 ms; the frame
table keeps the exact grab times in nanoseconds. Matroska clusters are closed at least every
second, so a crash loses at most the last second of video.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from capture._errors import RecorderError

logger = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)  # what Matroska stores
CLUSTER_MS = 1000


class VideoWriter:
    """Encode RGB frames with explicit microsecond timestamps into a crash-tolerant file.

    Odd frame sizes are padded with black on the right/bottom (H.264 4:2:0 needs even sizes);
    `Session.iter_frames` crops the padding back off using the manifest's capture size.
    """

    def __init__(self, path: Path, width: int, height: int, *, fps_hint: float = 60.0,
                 crf: int = 18, preset: str = "veryfast") -> None:
        if width <= 0 or height <= 0:
            raise RecorderError(f"video size must be positive, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height = width, height
        self._padded = (width + width % 2, height + height % 2)
        self._last_pts = -1
        self.frames_written = 0
        try:
            self._container = av.open(str(self.path), "w", format="matroska",
                                      options={"cluster_time_limit": str(CLUSTER_MS),
                                               "flush_packets": "1"})
        except av.FFmpegError as exc:
            raise RecorderError(f"cannot create {self.path}: {exc}") from None
        stream = self._container.add_stream(
            "libx264", rate=Fraction(fps_hint).limit_denominator(1000),
            options={"crf": str(crf), "preset": preset, "tune": "zerolatency"})
        stream.width, stream.height = self._padded
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        self._stream = stream
        self._closed = False

    def write(self, image: np.ndarray, pts_us: int) -> int:
        """Encode one H x W x 3 uint8 RGB (or BGRA from a screen grab, 4 channels) frame.

        Returns the pts as stored, in microseconds (a multiple of 1000)."""
        pts_ms = round(pts_us / 1000)
        if pts_ms <= self._last_pts:
            raise RecorderError(f"pts must increase by at least 1 ms: {pts_us} us after "
                                f"{self._last_pts} ms")
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
        frame.pts = pts_ms
        frame.time_base = TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts_ms
        self.frames_written += 1
        return pts_ms * 1000

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
