"""Timecode decoding from captured video (docs/timecode.md): locate the strip once, then read
every frame's cells from a small crop of the luma plane.

Locating: the start marker's first white cell (column 1) and the end marker's white cell
(column 37) are always isolated white squares 36 cells apart on one row, whatever the data;
each such pair of connected components is a candidate, kept if the frame decodes with it.
This measures the strip's origin and cell pitch in captured pixels (display scaling).

Decoding rejects rather than guesses: low contrast between the marker references, a cell in
the middle 40 % between them, a cell that is not uniform (an edge inside it), a quiet-zone
cell that is not black, wrong markers or a failed check make the frame undecodable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignment._errors import AlignmentError
from alignment._timecode_code import COLUMNS, ROWS, cells_to_payload

logger = logging.getLogger(__name__)

MIN_CONTRAST = 48.0  # luma levels between the white and black references
AMBIGUOUS = 0.2  # half-width of the rejected band around the threshold, x contrast
MAX_CELL_STD = 0.2  # x contrast: a cell with more spread straddles an edge
LOCATE_FRAMES = 120
PROGRESS_EVERY = 256  # frames between progress reports
SQUARE_TOLERANCE = 0.15  # measured cells closer than this to square are taken as square
_WHITE = ((1, 1), (1, 3), (1, 37))
_BLACK = ((1, 2), (1, 36), (1, 38))
_QUIET = np.zeros((ROWS, COLUMNS), bool)
_QUIET[[0, 2], :] = True
_QUIET[1, [0, -1]] = True


@dataclass(frozen=True)
class StripGeometry:
    """The strip's top-left corner and cell pitch, in captured pixels."""

    x0: float
    y0: float
    pitch_x: float
    pitch_y: float

    def sample_grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Pixel rows (3, k) and columns (40, k) of each cell's central half, or None when
        the strip does not fit inside a `height` x `width` image."""
        k = max(2, round(min(self.pitch_x, self.pitch_y) / 2))
        frac = (np.arange(k) + 0.5) / k - 0.5  # spans the central half of the cell
        ys = self.y0 + (np.arange(ROWS)[:, None] + 0.5 + frac[None, :] * 0.5) * self.pitch_y
        xs = self.x0 + (np.arange(COLUMNS)[:, None] + 0.5 + frac[None, :] * 0.5) * self.pitch_x
        ys, xs = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
        if ys.min() < 0 or xs.min() < 0 or ys.max() >= height or xs.max() >= width:
            return None
        return ys, xs


def read_cells(luma: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> int | None:
    """The 24-bit payload shown in a luma image, or None when it is undecodable."""
    ys, xs = grid
    boxes = luma[ys[:, None, :, None], xs[None, :, None, :]].astype(np.float32)
    mean = boxes.mean(axis=(2, 3))
    std = boxes.std(axis=(2, 3))
    white = float(np.mean([mean[c] for c in _WHITE]))
    black = float(np.mean([mean[c] for c in _BLACK]))
    contrast = white - black
    if contrast < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    if np.any(np.abs(mean - threshold) < AMBIGUOUS * contrast):
        return None
    if np.any(std > MAX_CELL_STD * contrast):
        return None
    bits = mean > threshold
    if bits[_QUIET].any():
        return None
    return cells_to_payload(bits[1, 1:-1].astype(np.uint8))


def locate(luma: np.ndarray) -> StripGeometry | None:
    """Find the strip in one luma image, or None."""
    import cv2

    white = (luma > 128).astype(np.uint8)
    _, _, stats, centroids = cv2.connectedComponentsWithStats(white, connectivity=4)
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    ok = (w >= 2) & (h >= 2) & (h <= luma.shape[0] // 3) & (area >= 0.7 * w * h)
    ok &= (w <= 3 * h) & (h <= 3 * w)
    idx = np.flatnonzero(ok)[:4000]
    if idx.size < 2:
        return None
    cx, cy = centroids[1:, 0][idx], centroids[1:, 1][idx]
    cw, ch = w[idx].astype(np.float64), h[idx].astype(np.float64)
    dx = cx[None, :] - cx[:, None]
    pairs = ((np.abs(dx - 36 * cw[:, None]) < 0.1 * 36 * cw[:, None] + 2)
             & (np.abs(cy[None, :] - cy[:, None]) < 0.25 * ch[:, None] + 1)
             & (np.abs(ch[None, :] - ch[:, None]) < 0.25 * ch[:, None] + 1))
    for a, b in zip(*np.nonzero(pairs), strict=True):
        pitch_x = float(dx[a, b]) / 36
        # thresholding widens (or narrows) a square by the same blur both ways
        pitch_y = float(ch[a] + ch[b]) / 2 - (float(cw[a] + cw[b]) / 2 - pitch_x)
        if abs(pitch_y / pitch_x - 1) < SQUARE_TOLERANCE:
            pitch_y = pitch_x  # cells are square in the viewport: the rest is blur
        mid_y = float(cy[a] + cy[b]) / 2 + 0.5  # centroids count pixel centres from 0
        geometry = StripGeometry(float(cx[a]) + 0.5 - 1.5 * pitch_x, mid_y - 1.5 * pitch_y,
                                 pitch_x, pitch_y)
        grid = geometry.sample_grid(*luma.shape)
        if grid is not None and read_cells(luma, grid) is not None:
            return geometry
    return None


def _luma(frame: object) -> np.ndarray:
    """The frame's luma plane without a colour conversion when it is planar YUV."""
    fmt = frame.format.name  # type: ignore[attr-defined]
    if fmt.startswith(("yuv", "yuvj", "nv12")):
        plane = frame.planes[0]  # type: ignore[attr-defined]
        data = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return data[:, : plane.width]
    return frame.to_ndarray(format="gray")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TimecodeResult:
    """Per frame-table row: the decoded payload or -1, and the counts."""

    payload: np.ndarray
    geometry: StripGeometry | None
    decoded: int
    undecodable: int


def _frames(video: Path) -> Iterator[tuple[int, Any]]:
    import av

    try:
        container = av.open(str(video))
    except av.FFmpegError as exc:
        raise AlignmentError(f"cannot open video {video}: {exc}; expected a video file "
                             "PyAV/FFmpeg can read") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        for frame in container.decode(stream):
            if frame.pts is not None:
                yield round(frame.pts * tb * 1_000_000), frame


def decode_video(video: Path, frame_pts_us: np.ndarray, *,
                 locate_frames: int = LOCATE_FRAMES,
                 progress: Callable[[int, int], None] | None = None) -> TimecodeResult:
    """Decode the timecode of every frame of `video`, matched to the frame table by pts;
    `progress(done, total)` is called every few hundred frames and at the end."""
    pts = np.asarray(frame_pts_us, np.int64)
    payload = np.full(pts.size, -1, np.int64)
    row_by_pts = {int(p): i for i, p in enumerate(pts)}
    geometry = None
    for seen, (_, frame) in enumerate(_frames(video)):
        if seen >= locate_frames:
            break
        geometry = locate(_luma(frame))
        if geometry is not None:
            break
    if geometry is None:
        logger.info("%s: no timecode strip in the first %d frames", video, locate_frames)
        return TimecodeResult(payload, None, 0, 0)
    grid = None
    seen_rows = 0
    for pts_us, frame in _frames(video):
        row = row_by_pts.get(pts_us)
        if row is None:
            continue
        luma = _luma(frame)
        if grid is None:
            grid = geometry.sample_grid(*luma.shape)
            if grid is None:
                break
        seen_rows += 1
        value = read_cells(luma, grid)
        if value is not None:
            payload[row] = value
        if progress is not None and seen_rows % PROGRESS_EVERY == 0:
            progress(seen_rows, pts.size)
    if progress is not None:
        progress(pts.size, pts.size)
    decoded = int((payload >= 0).sum())
    return TimecodeResult(payload, geometry, decoded, seen_rows - decoded)
