"""`import_seed`: the seed prototype's per-frame layout -> an aligned STPE session.

Each record becomes a wire sample (`seq` = the record's frame number, client time = its
timestamp minus the first, `wall_ms` = the timestamp); each image a video frame whose time
is its record's timestamp (never `i / fps`). Fields the seed did not log are filled with
neutral values and listed in the manifest's `notes.imported.unknown` (docs/alignment.md):
the camera has a position only, so its orientation is taken as looking at the root part
(`camera_orientation: "look_at_root"`), or unknown (identity) without a root position.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from alignment._align import ROW_GROUP, align_session, read_aligned
from alignment._errors import ImportFormatError
from alignment._report import AlignmentReport
from alignment._seed_source import (
    SeedFrame,
    SeedRecord,
    ZipLimits,
    extract_zip,
    image_size,
    read_seed_frames,
)
from capture import CaptureSettings, PluginInfo, Region, Sample, SessionWriter
from capture._layout import ALIGNED, VIDEO
from capture._video import VideoWriter

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = ZipLimits()
GAP_FACTOR = 2.5  # a timestamp step this many times the median is a gap
DEFAULT_FOV = 70.0  # Roblox's default Camera.FieldOfView
IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
UNKNOWN = ("character.humanoid.move_direction", "character.humanoid.walk_speed",
           "character.humanoid.floor_material", "character.humanoid.health",
           "character.root.angular_velocity", "character.root.size", "character.bbox",
           "camera.fov_y", "camera.gui_inset", "camera.root_projection", "entities")


@dataclass(frozen=True)
class SeedImport:
    """What `import_seed` found and wrote."""

    session: Path
    frames: int
    missing_frames: list[tuple[int, int]]  # (first, last) runs of frame numbers not found
    timestamp_gaps: list[dict[str, float]]
    frame_size: tuple[int, int]
    viewport: tuple[float, float] | None
    report: AlignmentReport


def _rotation(right: Any, up: Any, look: Any) -> list[float]:
    back = -np.asarray(look, np.float64)
    m = np.stack([np.asarray(right, np.float64), np.asarray(up, np.float64), back], axis=1)
    return m.reshape(-1).tolist()


def _look_at(eye: np.ndarray, target: np.ndarray) -> list[float]:
    back = eye - target
    back = back / (np.linalg.norm(back) or 1.0)
    right = np.cross([0.0, 1.0, 0.0], back)
    right = right / (np.linalg.norm(right) or 1.0)
    return _rotation(right, np.cross(back, right), -back)


def _sample(record: SeedRecord, t: float, dt: float, viewport: tuple[float, float]) -> dict:
    hrp = record.hrp
    position = hrp and (hrp.cframe.position if hrp.cframe else hrp.position)
    sample: dict[str, Any] = {"seq": record.frame, "t": t, "dt": dt,
                              "wall_ms": round(record.timestamp * 1000),
                              "inputs": {"keys": list(record.inputs)}}
    if position is not None:
        cf = hrp.cframe if hrp and hrp.cframe else None
        rotation = (_rotation(cf.right_vector, cf.up_vector, cf.look_vector)
                    if cf and cf.right_vector and cf.up_vector and cf.look_vector else IDENTITY)
        ground = record.ground
        point = ground and (ground.landing_point or ground.touch_point)
        state = record.humanoid_state or "Unknown"
        sample["character"] = {
            "humanoid": {"state": state, "move_direction": [0.0, 0.0, 0.0], "walk_speed": 0.0,
                         "jump": state == "Jumping", "floor_material": "Unknown",
                         "health": 100.0},
            "root": {"cframe": [*position, *rotation],
                     "velocity": list(hrp.velocity or (0.0, 0.0, 0.0)),
                     "angular_velocity": [0.0, 0.0, 0.0], "size": [2.0, 2.0, 1.0]},
            "bbox": {"cframe": [*position, *rotation], "size": [4.0, 5.0, 1.0]},
            "ground": {"hit": point is not None, "point": point,
                       "normal": ground.landing_normal if ground else None,
                       "instance": ground.landing_instance if ground else None,
                       "distance": ground.distance_to_landing if ground else None},
        }
    eye = record.camera.position if record.camera else None
    if eye is not None and position is not None:
        camera_rotation = _look_at(np.asarray(eye), np.asarray(position))
    else:
        camera_rotation = IDENTITY
    sample["camera"] = {"cframe": [*(eye or (0.0, 0.0, 0.0)), *camera_rotation],
                        "fov_y": DEFAULT_FOV, "viewport": list(viewport),
                        "focus": list(position or eye or (0.0, 0.0, 0.0)),
                        "gui_inset": [0.0, 0.0, 0.0, 0.0], "type": "Custom"}
    try:
        return Sample.model_validate(sample).model_dump(mode="json")
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ImportFormatError(f"frame {record.frame}: {'.'.join(map(str, error['loc']))} "
                                f"{error['msg']} (docs/protocol.md, \"Ranges\")") from None


def _orientation(frames: list[SeedFrame]) -> str:
    """How the camera orientation was derived: `look_at_root` when every record has both
    positions, else `unknown (N frames)` for those left at identity."""
    unknown = sum(1 for f in frames if not (f.record.camera and f.record.camera.position
                                            and f.record.hrp and (f.record.hrp.position or
                                                                  f.record.hrp.cframe)))
    return f"unknown ({unknown} frames), else look_at_root" if unknown else "look_at_root"


def _gaps(frames: list[SeedFrame]) -> tuple[list[tuple[int, int]], list[dict[str, float]]]:
    numbers = sorted(f.record.frame for f in frames)
    missing = [(a + 1, b - 1) for a, b in itertools.pairwise(numbers) if b > a + 1]
    stamps = np.array([f.record.timestamp for f in frames])
    steps = np.diff(stamps)
    median = float(np.median(steps)) if steps.size else 0.0
    jumps = [{"after_frame": float(frames[i].record.frame), "gap_s": float(steps[i])}
             for i in np.flatnonzero(steps > GAP_FACTOR * median)] if median > 0 else []
    return missing, jumps


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImportFormatError(f"{path} is not a readable image (truncated or not PNG/JPEG)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _frame_size(frames: list[SeedFrame], max_pixels: int) -> tuple[int, int]:
    """The frames' common (width, height), from their headers, before decoding any."""
    width, height = image_size(frames[0].image)
    if width * height > max_pixels or not width or not height:
        raise ImportFormatError(f"{frames[0].image} is {width}x{height} pixels; images up to "
                                f"{max_pixels} pixels are imported")
    for frame in frames[1:]:
        size = image_size(frame.image)
        if size != (width, height):
            raise ImportFormatError(f"{frame.image} is {size[0]}x{size[1]}, the first frame "
                                    f"{width}x{height}; frames must match")
    return width, height


def _write(frames: list[SeedFrame], writer: SessionWriter, viewport: tuple[float, float] | None,
           max_pixels: int) -> tuple[int, int]:
    width, height = _frame_size(frames, max_pixels)
    first = _read_image(frames[0].image)
    viewport = viewport or (float(width), float(height))
    t0 = frames[0].record.timestamp
    stamps = [f.record.timestamp for f in frames]
    dts = np.diff(stamps, prepend=stamps[0] - (1 / (frames[0].record.fps or 60.0)))
    writer.append_state(
        orjson.dumps({"seq": f.record.frame, "arrival_mono_ns": round(f.record.timestamp * 1e9),
                      "arrival_wall_ns": round(f.record.timestamp * 1e9),
                      "sample": _sample(f.record, f.record.timestamp - t0, float(dt), viewport)})
        for f, dt in zip(frames, dts, strict=True))
    rows = []
    with VideoWriter(writer.path / VIDEO, width, height, fps_hint=60.0) as video:
        for i, frame in enumerate(frames):
            image = first if i == 0 else _read_image(frame.image)
            if image.shape[:2] != (height, width):  # a header that does not match its pixels
                raise ImportFormatError(f"{frame.image} decodes to {image.shape[1]}x"
                                        f"{image.shape[0]}, not the {width}x{height} its "
                                        "header states")
            pts_us = round((frame.record.timestamp - t0) * 1e6)
            if rows and round(pts_us / 1000) <= rows[-1]["pts_us"] // 1000:
                raise ImportFormatError(f"{frame.source}: timestamp within 1 ms of the previous "
                                        "frame's; frames need distinct times")
            stored = video.write(image, pts_us)
            grab = round(frame.record.timestamp * 1e9)  # exactly the record's own time
            rows.append({"index": i, "pts_us": stored, "grab_start_ns": grab,
                         "grab_end_ns": grab, "wall_ns": grab})
    writer.append_frames(rows)
    return width, height


def _frame_rate(frames: list[SeedFrame]) -> float:
    """Frames per second of the frames themselves: (count - 1) over their time span."""
    span = frames[-1].record.timestamp - frames[0].record.timestamp
    return (len(frames) - 1) / span if len(frames) > 1 and span > 0 else 30.0


def _add_game_fps(session: Path, frames: list[SeedFrame]) -> None:
    """Keep each record's own `fps` (the game's) as the `seed.fps` column of aligned.parquet."""
    aligned = read_aligned(session)
    by_seq = {f.record.frame: f.record.fps for f in frames}
    fps = pa.array([by_seq.get(seq) for seq in aligned.column("seq").to_pylist()],
                   pa.float64())
    sink = io.BytesIO()
    pq.write_table(aligned.append_column("seed.fps", fps), sink, row_group_size=ROW_GROUP)
    SessionWriter.reopen(session).write_output(ALIGNED, sink.getvalue())


def _outside_names(exc: ImportFormatError, staging: Path, source: Path) -> ImportFormatError:
    """The error with paths in the staging folder (gone once the import fails) named as
    what the user has: the zip and the member inside it."""
    message = str(exc).replace(str(staging / "extracted") + "/", f"{source}:")
    return ImportFormatError(message.replace(str(staging / "extracted"), str(source)))


def import_seed(source: Path, out: Path, *, limits: ZipLimits = DEFAULT_LIMITS) -> SeedImport:
    """Convert a seed folder or zip at `source` into an aligned session at `out`. Nothing is
    left at `out` (or beside it) when anything fails."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ImportFormatError(f"{source} does not exist; pass the seed's folder or zip")
    if out.is_symlink():
        raise ImportFormatError(f"{out} is a symbolic link (to {os.readlink(out)}); choose a "
                                "new --out folder, not a link")
    if out.exists():
        raise ImportFormatError(f"{out} already exists; choose a new --out folder")
    if out.parent.exists() and not out.parent.is_dir():
        raise ImportFormatError(f"{out.parent} is a file, not a folder; choose an --out "
                                "inside a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    placed = False
    try:
        try:
            root = source
            if source.is_file():
                root = staging / "extracted"
                extract_zip(source, root, limits)
            frames = read_seed_frames(root)
            missing, jumps = _gaps(frames)
            sizes = [f.record.camera.viewport_size for f in frames
                     if f.record.camera and f.record.camera.viewport_size]
            viewport = tuple(sizes[0]) if sizes else None
            writer = SessionWriter.create(staging, out.name)
            width, height = _write(frames, writer, viewport, limits.max_pixels)
        except ImportFormatError as exc:
            raise _outside_names(exc, staging, source) from None
        writer.update_manifest(
            capture=CaptureSettings(fps=_frame_rate(frames),
                                    region=Region(left=0, top=0, width=width, height=height)),
            plugin=PluginInfo(plugin_version="seed", datamodel="imported",
                              viewport=viewport or (float(width), float(height))),
            notes={"imported": {"format": "seed", "source": str(source),
                                "clock_domain": "unix_wall", "unknown": list(UNKNOWN),
                                "camera_orientation": _orientation(frames),
                                "missing_frames": [list(run) for run in missing],
                                "timestamp_gaps": jumps, "game_fps_column": "seed.fps"}})
        writer.finalize()
        writer.path.rename(out)  # aligned in place, so every file names the final path
        placed = True
        report = align_session(out, latency_ms=0.0, use_timecode=False)
        _add_game_fps(out, frames)
    except BaseException:
        if placed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("imported %d frames from %s into %s", len(frames), source, out)
    return SeedImport(out, len(frames), missing, jumps, (width, height), viewport,
                      report)
