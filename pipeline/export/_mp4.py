"""H.264 in MP4 with exact timestamps: a 90 kHz track timescale and no B-frames, so every
frame's presentation time is the requested time within 1/180000 s."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TIMESCALE = 90_000


class Mp4Writer:
    """Encode RGB frames at given times (seconds) into an MP4 file; a context manager."""

    def __init__(self, path: Path, width: int, height: int, fps: int, *, crf: int = 23,
                 preset: str = "veryfast") -> None:
        self._container = av.open(str(path), "w", format="mp4",
                                  options={"video_track_timescale": str(TIMESCALE)})
        stream = self._container.add_stream(
            "libx264", rate=fps, options={"crf": str(crf), "preset": preset, "bf": "0",
                                          "g": str(2 * fps)})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, TIMESCALE)
        stream.codec_context.time_base = Fraction(1, TIMESCALE)
        stream.codec_context.thread_count = 0
        self._stream = stream
        self._last = -1
        self._closed = False

    def write(self, image: np.ndarray, seconds: float) -> None:
        pts = round(seconds * TIMESCALE)
        if pts <= self._last:
            raise ValueError(f"frame times must increase: {seconds} s after pts {self._last}")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self._stream.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last = pts

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
