"""LeRobot v3.0: one episode per session, all episodes in one data file and one video file.

Timestamps are the real frame times (seconds from the episode's first exported frame), and
each video frame is stored at `from_timestamp + timestamp`, so LeRobot's decoder finds
every frame within its 1e-4 s tolerance even when the capture rate varied.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from capture._video import VideoWriter
from pipeline._errors import PipelineError
from pipeline.export._lerobot_meta import (
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    VIDEO_PATH,
    Feature,
    ImageStats,
    Info,
    Stats,
    vector_stats,
)
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

VIDEO_KEY = "observation.images.main"
TASK = "Play the Roblox experience"


def nominal_fps(sessions: Sequence[SessionData], options: ExportOptions) -> int:
    """The dataset's nominal rate: the cap, else the mean frame rate, as an integer."""
    if options.fps_cap is not None:
        return max(round(options.fps_cap), 1)
    steps = sum(s.labels.num_rows - 1 for s in sessions)
    span = sum(float(np.ptp(s.labels["t"].to_numpy())) for s in sessions)
    return max(round(steps / span), 1) if span > 0 else 30


def _features(width: int, height: int, fps: int) -> dict[str, Feature]:
    return {
        VIDEO_KEY: Feature(dtype="video", shape=[height, width, 3],
                           names=["height", "width", "channels"],
                           info={"video.height": height, "video.width": width,
                                 "video.codec": "h264", "video.pix_fmt": "yuv420p",
                                 "video.is_depth_map": False, "video.fps": fps,
                                 "video.channels": 3, "has_audio": False}),
        "observation.state": Feature(dtype="float32", shape=[len(STATE_NAMES)],
                                     names=list(STATE_NAMES)),
        "action": Feature(dtype="float32", shape=[len(ACTION_NAMES)],
                          names=list(ACTION_NAMES)),
        "timestamp": Feature(dtype="float32", shape=[1], names=None),
        "frame_index": Feature(dtype="int64", shape=[1], names=None),
        "episode_index": Feature(dtype="int64", shape=[1], names=None),
        "index": Feature(dtype="int64", shape=[1], names=None),
        "task_index": Feature(dtype="int64", shape=[1], names=None),
    }


def _vector_column(values: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _tasks_parquet(path: Path) -> None:
    import pandas as pd  # LeRobot reads this file with pandas (the task is the index)

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pd.DataFrame({"task_index": [0]}, index=pd.Index([TASK], name="task")).to_parquet(buffer)
    path.write_bytes(buffer.getvalue())


@register("lerobot")
def export_lerobot(sessions: Sequence[SessionData], root: Path,
                   options: ExportOptions) -> dict[str, Any]:
    """Write a LeRobot v3.0 dataset folder at `root`."""
    sizes = {s.size for s in sessions}
    if len(sizes) != 1:
        raise PipelineError(f"sessions have different frame sizes {sorted(sizes)}; LeRobot "
                            "stores one video stream, export them separately")
    (width, height), fps = sizes.pop(), nominal_fps(sessions, options)
    video_path = root / VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=0, file_index=0)
    video_path.parent.mkdir(parents=True)
    image_stats, data, episodes = ImageStats(), [], []
    offset, index = 0.0, 0
    with VideoWriter(video_path, width + width % 2, height + height % 2, fps_hint=fps,
                     crf=23, container="mp4") as video:
        for ep, s in enumerate(sessions):
            t = s.labels["t"].to_numpy()
            timestamps = t - t[0]
            for row, image in iter_images(s, options):
                if image.shape[:2] != (height + height % 2, width + width % 2):
                    image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)))
                video.write(image, round((offset + timestamps[row]) * 1_000_000))
                image_stats.add(image)
            n = len(t)
            table = pa.table({
                "observation.state": _vector_column(s.state), "action": _vector_column(s.action),
                "timestamp": pa.array(timestamps.astype(np.float32)),
                "frame_index": pa.array(np.arange(n), pa.int64()),
                "episode_index": pa.array(np.full(n, ep), pa.int64()),
                "index": pa.array(np.arange(index, index + n), pa.int64()),
                "task_index": pa.array(np.zeros(n), pa.int64())})
            data.append(table)
            stats = {"observation.state": vector_stats(s.state), "action": vector_stats(s.action),
                     "timestamp": vector_stats(timestamps[:, None])}
            to_ts = offset + float(timestamps[-1]) + 1.0 / fps
            episodes.append({
                "episode_index": ep, "tasks": [TASK], "length": n,
                "data/chunk_index": 0, "data/file_index": 0,
                "dataset_from_index": index, "dataset_to_index": index + n,
                f"videos/{VIDEO_KEY}/chunk_index": 0, f"videos/{VIDEO_KEY}/file_index": 0,
                f"videos/{VIDEO_KEY}/from_timestamp": offset,
                f"videos/{VIDEO_KEY}/to_timestamp": to_ts,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "stpe/session_id": s.name,
                **{f"stats/{k}/{stat}": v for k, st in stats.items() for stat, v in st.items()}})
            offset, index = to_ts, index + n
    all_data = pa.concat_tables(data)
    _write_parquet(all_data, root / DATA_PATH.format(chunk_index=0, file_index=0))
    _write_parquet(pa.Table.from_pylist(episodes),
                   root / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _tasks_parquet(root / "meta" / "tasks.parquet")
    info = Info(codebase_version=CODEBASE_VERSION, robot_type="roblox_character",
                total_episodes=len(sessions), total_frames=index, total_tasks=1,
                chunks_size=1000, data_files_size_in_mb=100, video_files_size_in_mb=500,
                fps=fps, splits={"train": f"0:{len(sessions)}"}, data_path=DATA_PATH,
                video_path=VIDEO_PATH, features=_features(width + width % 2,
                                                          height + height % 2, fps))
    stats = {
        "observation.state": vector_stats(np.concatenate([s.state for s in sessions])),
        "action": vector_stats(np.concatenate([s.action for s in sessions])),
        "timestamp": vector_stats(all_data["timestamp"].to_numpy()[:, None]),
        "frame_index": vector_stats(all_data["frame_index"].to_numpy()[:, None]),
        "episode_index": vector_stats(all_data["episode_index"].to_numpy()[:, None]),
        "index": vector_stats(all_data["index"].to_numpy()[:, None]),
        "task_index": vector_stats(all_data["task_index"].to_numpy()[:, None]),
        VIDEO_KEY: image_stats.result()}
    meta = root / "meta"
    (meta / "info.json").write_text(info.model_dump_json(indent=4) + "\n")
    checked = {k: Stats.model_validate(v).model_dump(exclude_none=True) for k, v in stats.items()}
    (meta / "stats.json").write_text(json.dumps(checked, indent=4) + "\n")
    return {"episodes": len(sessions), "frames": index, "fps": fps}
