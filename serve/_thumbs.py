"""Thumbnails of search results: one frame of a session's video as a small JPEG.

The frame is found by its pts in the frame table (as `Session.iter_frames` matches them),
decoded with PyAV after a seek to the keyframe before it, and cached under
`<work_dir>/thumbs/<session>/<frame>.jpg` so a results grid is decoded once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np

from capture import Session
from capture._layout import VIDEO

THUMB_WIDTH = 320


class ThumbnailError(LookupError):
    """The session has no video, or no frame with that index."""


def _decode(session: Session, frame_index: int) -> np.ndarray:
    import av

    frames = session.read_frames()
    indices = frames["index"].to_pylist()
    if frame_index not in indices:
        raise ThumbnailError(f"{session.path.name} has no frame {frame_index}")
    pts_us = frames["pts_us"].to_pylist()[indices.index(frame_index)]
    video = session.path / VIDEO
    if not video.is_file():
        raise ThumbnailError(f"{session.path.name} has no video ({VIDEO})")
    capture = session.manifest.capture
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        container.seek(int(pts_us / 1_000_000 / tb), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            at = round(frame.pts * tb * 1_000_000)
            if at == pts_us:
                image = frame.to_ndarray(format="rgb24")
                if capture is not None:
                    image = image[: capture.region.height, : capture.region.width]
                return image
            if at > pts_us:
                break
    raise ThumbnailError(f"{session.path.name}: frame {frame_index} is not in {VIDEO}")


def thumbnail(session_path: Path, session_id: str, frame_index: int, cache: Path) -> Path:
    """The cached JPEG of `frame_index` (at most THUMB_WIDTH wide), decoded on first use."""
    out = cache / "thumbs" / session_id / f"{frame_index}.jpg"
    if out.is_file():
        return out
    image = _decode(Session.open(session_path), frame_index)
    height, width = image.shape[:2]
    if width > THUMB_WIDTH:
        image = cv2.resize(image, (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))),
                           interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ThumbnailError(f"could not encode frame {frame_index} of {session_id} as JPEG")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, out)
    return out
