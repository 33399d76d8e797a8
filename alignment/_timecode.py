"""Timecode decoding from captured video (docs/timecode.md): locate the strip wherever it
appears, and read every frame's cells from a small crop of the luma plane.

Locating: one pass over the video reads every frame with the strips found so far and
searches for the strip (`locate`) where none reads, at most once every `SCAN_EVERY` frames
and within `LOCATE_BUDGET` of the decoding time; a newly found strip is also read on the
frames kept since the previous find.
The start marker's first white cell (column 1) and the end marker's white cell
(column 37) are always isolated white squares 36 cells apart on one row, whatever the data;
each such pair of connected components is a candidate, kept if the frame decodes with it.
This measures the strip's origin and cell pitch in captured pixels (display scaling).

Decoding rejects rather than guesses: low contrast between the marker references, a cell in
the middle 40 % between them, a cell that is not uniform (an edge inside it), a quiet-zone
cell that is not black, a check row that is not the code row's complement, wrong markers
or a failed check make the frame undecodable.
"""

from __future__ import annotations

import logging
import time
from collections import deque
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
SCAN_EVERY = 30  # frames at least between searches for the strip where none reads
SCAN_AT_LEAST = 60  # frames at most between searches, whatever they cost: a strip shown
# for a second (clap mode shows it for two) is always found
LOCATE_BUDGET = 0.08  # otherwise searching takes at most this share of the decoding time
BACKFILL_BYTES = 256 << 20  # frames kept to read again once a strip is found
PROGRESS_EVERY = 256  # frames between progress reports
HALF_RES_ROWS = 540  # frames this tall or taller are searched at every second pixel
SQUARE_TOLERANCE = 0.15  # measured cells closer than this to square are taken as square
_WHITE = ((1, 1), (1, 3), (1, 37))
_BLACK = ((1, 2), (1, 36), (1, 38))
_QUIET = np.zeros((ROWS, COLUMNS), bool)
_QUIET[0, :] = True
_QUIET[1:, [0, -1]] = True


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
    code, check = bits[1, 1:-1], bits[2, 1:-1]
    if check.any() and np.any(check == code):  # a strip without the check row is all black
        return None
    return cells_to_payload(code.astype(np.uint8))


def locate(luma: np.ndarray) -> StripGeometry | None:
    """Find the strip in one luma image, or None. Frames of 540 rows or more are searched
    at every second pixel (a default 8 px cell stays 4 px wide there, and the search costs
    a quarter); whatever is found is checked by decoding the full image."""
    import cv2

    step = 2 if min(luma.shape) >= HALF_RES_ROWS else 1
    small = luma[::step, ::step]
    white = (small > 128).astype(np.uint8)
    _, _, stats, centroids = cv2.connectedComponentsWithStats(white, connectivity=4)
    w, h = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    ok = (w >= 2) & (h >= 2) & (h <= small.shape[0] // 3) & (area >= 0.7 * w * h)
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
        x0, y0 = float(cx[a]) + 0.5 - 1.5 * pitch_x, mid_y - 1.5 * pitch_y
        shift = (step - 1) / 2  # a searched pixel stands for the centre of its full one
        geometry = StripGeometry(x0 * step - shift, y0 * step - shift, pitch_x * step,
                                 pitch_y * step)
        if step > 1:  # sampling every second pixel biases the corner by up to half a pixel
            geometry = _refined(luma, geometry) or geometry
        grid = geometry.sample_grid(*luma.shape)
        if grid is not None and read_cells(luma, grid) is not None:
            return geometry
    return None


def _refined(luma: np.ndarray, found: StripGeometry) -> StripGeometry | None:
    """`found` measured again at full resolution, on a crop around it (small enough to be
    searched pixel by pixel)."""
    x0 = max(0, int(found.x0 - 2 * found.pitch_x))
    y0 = max(0, int(found.y0 - 2 * found.pitch_y))
    x1 = int(found.x0 + (COLUMNS + 2) * found.pitch_x) + 1
    y1 = int(found.y0 + (ROWS + 2) * found.pitch_y) + 1
    crop = luma[y0:y1, x0:x1]
    if min(crop.shape) >= HALF_RES_ROWS:
        return None
    exact = locate(crop)
    if exact is None:
        return None
    return StripGeometry(exact.x0 + x0, exact.y0 + y0, exact.pitch_x, exact.pitch_y)


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
    """Per frame-table row: the decoded payload or -1, the counts, where the strip was seen
    (runs of frame rows, inclusive) and the time spent locating versus decoding."""

    payload: np.ndarray
    geometry: StripGeometry | None
    decoded: int
    undecodable: int
    seen: tuple[tuple[int, int], ...] = ()
    locate_calls: int = 0
    locate_s: float = 0.0
    decode_s: float = 0.0


def seen_runs(payload: np.ndarray, gap: int = SCAN_EVERY) -> tuple[tuple[int, int], ...]:
    """Inclusive (first, last) frame rows of the stretches where the strip was decoded; two
    decoded frames at most `gap` rows apart belong to the same stretch."""
    rows = np.flatnonzero(np.asarray(payload) >= 0)
    if rows.size == 0:
        return ()
    cut = np.flatnonzero(np.diff(rows) > gap)
    firsts, lasts = rows[np.r_[0, cut + 1]], rows[np.r_[cut, rows.size - 1]]
    return tuple((int(a), int(b)) for a, b in zip(firsts, lasts, strict=True))


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


def _due(calls: int, scan_every: int) -> int:
    """Frames after which the next search happens whatever it costs: between `scan_every`
    and `SCAN_AT_LEAST`, spread by the golden ratio so that searches do not fall in step
    with something periodic on screen (an occluder over the strip every second)."""
    spread = max(SCAN_AT_LEAST - scan_every, 0)
    return scan_every + int((calls * 0.6180339887) % 1.0 * spread)


class _Reader:
    """The strips located so far and their sampling grids; reads a frame with each."""

    def __init__(self) -> None:
        self.found: list[tuple[StripGeometry, tuple[np.ndarray, np.ndarray]]] = []

    def read(self, luma: np.ndarray) -> int | None:
        for k, (_geometry, grid) in enumerate(self.found):
            value = read_cells(luma, grid)
            if value is not None:
                if k:  # the strip that reads is tried first next time
                    self.found.insert(0, self.found.pop(k))
                return value
        return None

    def add(self, geometry: StripGeometry, shape: tuple[int, int]) -> bool:
        grid = geometry.sample_grid(*shape)
        if grid is None:
            return False
        self.found.insert(0, (geometry, grid))
        return True


def decode_video(video: Path, frame_pts_us: np.ndarray, *, scan_every: int = SCAN_EVERY,
                 progress: Callable[[int, int], None] | None = None) -> TimecodeResult:
    """Decode the timecode of every frame of `video`, matched to the frame table by pts, in
    one pass: every frame is read with the strips located so far; where none reads, the
    strip is searched (`locate`) at most once per `scan_every` frames and, unless
    `SCAN_AT_LEAST` frames went by without a search, only while the searches have taken
    under `LOCATE_BUDGET` of the decoding time, and once found the
    frames kept since the last find (up to `BACKFILL_BYTES`) are read again with it, so a
    strip that appears anywhere (late in the video, only at a Play's start and end) is
    read on every frame showing it.
    `progress(done, total)` is called every few hundred frames and at the end."""
    pts = np.asarray(frame_pts_us, np.int64)
    payload = np.full(pts.size, -1, np.int64)
    row_by_pts = {int(p): i for i, p in enumerate(pts)}
    reader = _Reader()
    recent: deque[tuple[int, np.ndarray]] = deque()
    kept_bytes = 0
    since_search = scan_every
    seen_rows = calls = 0
    locate_s = 0.0
    started = time.perf_counter()
    for pts_us, frame in _frames(video):
        row = row_by_pts.get(pts_us)
        if row is None:
            continue
        luma = _luma(frame)
        seen_rows += 1
        since_search += 1
        value = reader.read(luma)
        decoding_s = time.perf_counter() - started - locate_s
        if (value is None and since_search >= scan_every
                and (calls == 0 or since_search >= _due(calls, scan_every)
                     or locate_s <= LOCATE_BUDGET * decoding_s)):
            since_search, calls = 0, calls + 1
            t0 = time.perf_counter()
            geometry = locate(luma)
            locate_s += time.perf_counter() - t0
            if geometry is not None and reader.add(geometry, luma.shape):
                logger.info("%s: timecode strip located at frame row %d", video, row)
                value = reader.read(luma)
                for old_row, old in recent:  # the frames since the last success
                    old_value = reader.read(old)
                    payload[old_row] = -1 if old_value is None else old_value
                recent.clear()
                kept_bytes = 0
        if value is not None:
            payload[row] = value
        else:
            recent.append((row, luma.copy()))
            kept_bytes += luma.size
            while kept_bytes > BACKFILL_BYTES:
                kept_bytes -= recent.popleft()[1].size
        if progress is not None and seen_rows % PROGRESS_EVERY == 0:
            progress(seen_rows, pts.size)
    if progress is not None:
        progress(pts.size, pts.size)
    decoded = int((payload >= 0).sum())
    geometry = reader.found[0][0] if reader.found else None
    if geometry is None:
        logger.info("%s: no timecode strip in %d frames (%d searched)", video, seen_rows, calls)
    return TimecodeResult(payload, geometry, decoded, seen_rows - decoded if geometry else 0,
                          seen_runs(payload), calls, locate_s,
                          time.perf_counter() - started - locate_s)
