"""`stpe render`: an overlay video of a session from its video, labels.parquet and
aligned.parquet, with every frame at its source time (pts in milliseconds, as captured)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from capture import Session, SessionWriter
from capture._video import VideoWriter
from pipeline._errors import PipelineError
from pipeline.overlay._draw import OverlayFrame, draw_overlay, velocity_tip

logger = logging.getLogger(__name__)

OVERLAY = "overlay.mp4"
TRAIL_FRAMES = 45


@dataclass(frozen=True)
class OverlayResult:
    path: Path
    frames: int
    first_pts_us: int | None
    last_pts_us: int | None


def _column(table: pa.Table, name: str, rows: int) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * rows


def overlay_frames(labels: pa.Table, aligned: pa.Table) -> dict[int, OverlayFrame]:
    """One OverlayFrame per labelled frame, keyed by frame_index."""
    n = labels.num_rows
    index = labels.column("frame_index").to_pylist()
    velocity_by_frame = {}
    if "character.root.velocity" in aligned.column_names:
        velocity_by_frame = dict(zip(aligned.column("frame_index").to_pylist(),
                                     zip(aligned.column("character.root.cframe").to_pylist(),
                                         aligned.column("character.root.velocity").to_pylist(),
                                         strict=True), strict=True))
    cols = {name: _column(labels, name, n) for name in (
        "t", "root_px", "objects", "humanoid_state", "keys", "speed", "move_dir_cam",
        "caption", "method", "K", "T_cam_world")}
    out = {}
    for i in range(n):
        tip = None
        cframe, velocity = velocity_by_frame.get(index[i], (None, None))
        if cols["root_px"][i] is not None and cframe is not None and velocity is not None \
                and cols["K"][i] is not None:
            tip = velocity_tip(np.array(cframe[:3]), np.array(velocity),
                               np.array(cols["K"][i]).reshape(3, 3),
                               np.array(cols["T_cam_world"][i]).reshape(4, 4))
        root = cols["root_px"][i]
        out[index[i]] = OverlayFrame(
            frame_index=index[i], t=cols["t"][i] or 0.0,
            root_px=None if root is None else (root[0], root[1]), velocity_tip_px=tip,
            objects=cols["objects"][i] or [], humanoid_state=cols["humanoid_state"][i],
            keys=tuple(cols["keys"][i] or ()), speed=cols["speed"][i],
            move_dir_cam=cols["move_dir_cam"][i], caption=cols["caption"][i] or "",
            method=cols["method"][i])
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def render_overlay(session_path: Path | str, out: Path | str | None = None, *,
                   progress: Callable[[int, int], None] | None = None) -> OverlayResult:
    """Render the overlay video of a session to `out` (default `<session>/overlay.mp4`).

    `progress(done, total)` is called after each frame. Needs `stpe align` and
    `stpe labels` to have run; frames without labels are copied without overlay."""
    from alignment import read_aligned
    from pipeline.labels import read_labels

    session = Session.open(session_path)
    labels = read_labels(session)
    frames = overlay_frames(labels, read_aligned(session))
    capture = session.manifest.capture
    if capture is None:
        raise PipelineError(f"{session.path} has no capture settings; it was not recorded "
                            "with a video (re-record it with `stpe record`)")
    target = Path(out) if out is not None else session.path / OVERLAY
    target.parent.mkdir(parents=True, exist_ok=True)
    total = session.read_frames().num_rows
    trail: deque[tuple[float, float]] = deque(maxlen=TRAIL_FRAMES)
    first = last = None
    count = 0
    inside = target.resolve().is_relative_to(session.path.resolve())
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", dir=None if inside else target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = VideoWriter(tmp, capture.region.width, capture.region.height,
                             fps_hint=capture.fps, crf=20, container="mp4")
        try:
            for video_frame in session.iter_frames():
                frame = frames.get(video_frame.index)
                image = video_frame.image
                if frame is not None:
                    image = draw_overlay(image, frame, list(trail))
                    if frame.root_px is not None:
                        trail.append(frame.root_px)
                writer.write(image, video_frame.pts_us)
                first = video_frame.pts_us if first is None else first
                last, count = video_frame.pts_us, count + 1
                if progress is not None:
                    progress(count, total)
        finally:
            writer.close()
        if inside:  # the session's files are written by the store only
            relative = target.resolve().relative_to(session.path.resolve())
            SessionWriter.reopen(session.path).write_output(str(relative), tmp.read_bytes())
        else:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the video is not
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("overlay of %d frames written to %s", count, target)
    return OverlayResult(target, count, first, last)
