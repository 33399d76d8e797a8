"""LeRobot v3.0 that LeRobot reads with its defaults: one episode per session, all episodes
in one data file and one constant-rate video file.

LeRobot turns a time into a frame number with `round(t * fps)` and checks the decoded
frame's time against the query within 1e-4 s. So the video is resampled to the nominal rate
(`_resample.py`): row k of an episode is presented at `from_timestamp + k / fps` and shows
the captured frame nearest that time; `timestamp` is `k / fps` in float64 (exact for
hour-long episodes), and `capture_t` / `source_frame_index` keep the true capture time and
the frame's index in the session (the join key of labels.parquet). `fps` is the nominal
rate, so sessions exported at the same rate merge.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline._errors import PipelineError
from pipeline.export._lerobot_labels import label_columns, label_features
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
from pipeline.export._resample import nearest_rows, resampled_images
from pipeline.export._source import ExportOptions, SessionData
from pipeline.export._splits import episode_ranges
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES
from pipeline.export._video import ConstantRateVideo

VIDEO_KEY = "observation.images.main"
STRING_FEATURES = ("observation.box_ids", "caption")


def nominal_fps(sessions: Sequence[SessionData], options: ExportOptions) -> int:
    """The dataset's nominal rate: the cap, else the sessions' capture rate (one for all)."""
    if options.fps_cap is not None:
        return max(round(options.fps_cap), 1)
    rates = {round(s.session.manifest.capture.fps) for s in sessions
             if s.session.manifest.capture is not None}
    if len(rates) != 1:
        raise PipelineError(f"sessions were captured at different rates {sorted(rates)}; "
                            "pass --fps-cap N to export them at one rate")
    return max(rates.pop(), 1)


def _scalar(dtype: str) -> Feature:
    return Feature(dtype=dtype, shape=[1], names=None)


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
        **label_features(),
        "capture_t": _scalar("float64"), "source_frame_index": _scalar("int64"),
        "timestamp": _scalar("float64"), "frame_index": _scalar("int64"),
        "episode_index": _scalar("int64"), "index": _scalar("int64"),
        "task_index": _scalar("int64"),
    }


def _column(values: Any) -> pa.Array:
    if isinstance(values, list):
        return pa.array(values, pa.string())
    values = np.ascontiguousarray(values)
    if values.ndim == 1:
        return pa.array(values)
    inner = _column(values.reshape(len(values) * values.shape[1], *values.shape[2:]))
    return pa.FixedSizeListArray.from_arrays(inner, values.shape[1])


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _tasks_parquet(path: Path, tasks: dict[str, int]) -> None:
    import pandas as pd  # LeRobot reads this file with pandas (the task is the index)

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pd.DataFrame({"task_index": list(tasks.values())},
                 index=pd.Index(list(tasks), name="task")).to_parquet(buffer)
    path.write_bytes(buffer.getvalue())


def _episode_table(s: SessionData, rows: np.ndarray, fps: int, ep: int, start: int,
                   tasks: dict[str, int]) -> pa.Table:
    n = len(rows)
    labels = label_columns(s.labels, rows)
    task_index = np.array([tasks.setdefault(t, len(tasks)) for t in labels.pop("task")])
    columns = {
        "observation.state": s.state[rows], "action": s.action[rows], **labels,
        "capture_t": s.labels["t"].to_numpy()[rows],
        "source_frame_index": s.labels["frame_index"].to_numpy()[rows].astype(np.int64),
        "timestamp": np.arange(n) / fps, "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, ep, np.int64),
        "index": np.arange(start, start + n, dtype=np.int64), "task_index": task_index}
    return pa.table({k: _column(v) for k, v in columns.items()})


def _stats(table: pa.Table, features: dict[str, Feature]) -> dict[str, dict[str, list[Any]]]:
    """LeRobot statistics of every numeric column (flat fixed-size lists and scalars)."""
    out = {}
    for name in table.column_names:
        if name in STRING_FEATURES:
            continue
        column = table[name].combine_chunks()
        width = features[name].shape[0]
        values = pc.list_flatten(column) if width > 1 or pa.types.is_list(column.type) \
            or pa.types.is_fixed_size_list(column.type) else column
        out[name] = vector_stats(values.to_numpy(zero_copy_only=False).reshape(len(column), -1),
                                 tuple(features[name].shape))
    return out


@register("lerobot")
def export_lerobot(sessions: Sequence[SessionData], root: Path,
                   options: ExportOptions) -> dict[str, Any]:
    """Write a LeRobot v3.0 dataset folder at `root`."""
    sizes = {s.size for s in sessions}
    if len(sizes) != 1:
        raise PipelineError(f"sessions have different frame sizes {sorted(sizes)}; LeRobot "
                            "stores one video stream, export them separately")
    (width, height), fps = sizes.pop(), nominal_fps(sessions, options)
    features = _features(width + width % 2, height + height % 2, fps)
    video_path = root / VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=0, file_index=0)
    video_path.parent.mkdir(parents=True)
    image_stats, data, episodes, tasks = ImageStats(), [], [], {}
    index = 0
    with ConstantRateVideo(video_path, width, height, fps, gop=options.gop) as video:
        for ep, s in enumerate(sessions):
            rows = nearest_rows(s.labels["t"].to_numpy(), fps)
            first = video.frames
            for _k, _row, image in resampled_images(s, options, rows):
                video.write(image)
                image_stats.add(image)
            table = _episode_table(s, rows, fps, ep, index, tasks)
            data.append(table)
            n = len(rows)
            episodes.append({
                "episode_index": ep,
                "tasks": sorted({t for t, i in tasks.items()
                                 if i in set(table["task_index"].to_pylist())}),
                "length": n, "data/chunk_index": 0, "data/file_index": 0,
                "dataset_from_index": index, "dataset_to_index": index + n,
                f"videos/{VIDEO_KEY}/chunk_index": 0, f"videos/{VIDEO_KEY}/file_index": 0,
                f"videos/{VIDEO_KEY}/from_timestamp": first / fps,
                f"videos/{VIDEO_KEY}/to_timestamp": (first + n) / fps,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "stpe/session_id": s.name,
                **{f"stats/{k}/{stat}": v for k, st in _stats(table, features).items()
                   for stat, v in st.items()}})
            index += n
    options.finished(video_path)
    all_data = pa.concat_tables(data)
    _write_parquet(all_data, root / DATA_PATH.format(chunk_index=0, file_index=0))
    _write_parquet(pa.Table.from_pylist(episodes),
                   root / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _tasks_parquet(root / "meta" / "tasks.parquet", tasks)
    info = Info(codebase_version=CODEBASE_VERSION, robot_type="roblox_character",
                total_episodes=len(sessions), total_frames=index, total_tasks=len(tasks),
                chunks_size=1000, data_files_size_in_mb=100, video_files_size_in_mb=500,
                fps=fps, splits=episode_ranges([s.split for s in sessions]), data_path=DATA_PATH,
                video_path=VIDEO_PATH, features=features)
    stats = {**_stats(all_data, features), VIDEO_KEY: image_stats.result()}
    meta = root / "meta"
    (meta / "info.json").write_text(info.model_dump_json(indent=4) + "\n")
    checked = {k: Stats.model_validate(v).model_dump(exclude_none=True) for k, v in stats.items()}
    (meta / "stats.json").write_text(json.dumps(checked, indent=4) + "\n")
    return {"episodes": len(sessions), "frames": index, "fps": fps, "tasks": len(tasks),
            "source_frames": sum(s.labels.num_rows for s in sessions)}
