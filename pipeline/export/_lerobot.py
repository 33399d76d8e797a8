"""LeRobot v3.0 that LeRobot reads with its defaults: one episode per session, all episodes
in one data file, each episode in its own constant-rate video file (with object storage as
`--out`, written straight to the store as it is encoded: no video is staged locally).

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline._errors import PipelineError
from pipeline.export._lerobot_labels import COLUMNS, label_columns, label_features
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
from pipeline.export._source import ExportOptions, SessionData, label_batches
from pipeline.export._splits import episode_ranges
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES
from pipeline.export._video import ConstantRateVideo

VIDEO_KEY = "observation.images.main"
CHUNKS_SIZE = 1000  # files per chunk folder, as LeRobot writes them
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
    if isinstance(values, pa.Array):
        return values
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


def _rows_table(s: SessionData, labels: pa.Table, rows: np.ndarray, first: int,
                k0: int, fps: int, ep: int, start: int, tasks: dict[str, int]) -> pa.Table:
    """Data rows k0, k0 + 1, ... of episode `ep`, showing kept rows `rows` of `s`; `labels`
    holds the kept rows from `first` on."""
    n = len(rows)
    k = np.arange(k0, k0 + n)
    label = label_columns(labels, rows - first)
    task_index = np.array([tasks.setdefault(t, len(tasks)) for t in label.pop("task")],
                          np.int64)
    columns = {
        "observation.state": s.state[rows], "action": s.action[rows], **label,
        "capture_t": s.t[rows], "source_frame_index": s.frames[rows],
        "timestamp": k / fps, "frame_index": k, "episode_index": np.full(n, ep, np.int64),
        "index": start + k, "task_index": task_index}
    return pa.table({k: _column(v) for k, v in columns.items()})


def _episode_tables(s: SessionData, rows: np.ndarray, fps: int, ep: int, start: int,
                    tasks: dict[str, int]) -> Iterator[pa.Table]:
    """The data rows of one episode (output row k shows kept row rows[k], non-decreasing),
    built a batch of labels.parquet rows at a time."""
    first = 0
    for labels in label_batches(s, COLUMNS):
        lo, hi = np.searchsorted(rows, [first, first + labels.num_rows])
        if hi > lo:
            yield _rows_table(s, labels, rows[lo:hi], first, int(lo), fps, ep, start, tasks)
        first += labels.num_rows


def _stats(path: Path, features: dict[str, Feature], ranges: Sequence[tuple[int, int]]
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """LeRobot statistics of every numeric column of the data file (flat fixed-size lists
    and scalars), over all rows and over each [from, to) range of rows. The file is read one
    column at a time, so memory holds one column, not the table (decoded on this thread,
    the pool's free pages returned after each, as `iter_parquet` does); the values are
    those written, and the statistics are numpy's on them (exact quantiles included)."""
    overall: dict[str, Any] = {}
    episodes: list[dict[str, Any]] = [{} for _ in ranges]
    for name in pq.read_schema(path).names:
        if name in STRING_FEATURES:
            continue
        column = pq.read_table(path, columns=[name], use_threads=False)[name].combine_chunks()
        shape = tuple(features[name].shape)
        nested = pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)
        values = pc.list_flatten(column) if nested else column
        values = values.to_numpy(zero_copy_only=False).reshape(len(column), -1)
        del column
        overall[name] = vector_stats(values, shape)
        for out, (a, b) in zip(episodes, ranges, strict=True):
            out[name] = vector_stats(values[a:b], shape)
        pa.default_memory_pool().release_unused()
    return overall, episodes


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
    image_stats, episodes, tasks = ImageStats(), [], {}
    data_path = root / DATA_PATH.format(chunk_index=0, file_index=0)
    data_path.parent.mkdir(parents=True)
    writer: pq.ParquetWriter | None = None
    index = 0
    try:
        for ep, s in enumerate(sessions):
            chunk, file = divmod(ep, CHUNKS_SIZE)  # one video file per episode
            video_path = root / VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=chunk,
                                                  file_index=file)
            rows = nearest_rows(s.t, fps)
            with options.sequential(video_path) as target, \
                    ConstantRateVideo(target, width, height, fps, gop=options.gop) as video:
                for _k, _row, image in resampled_images(s, options, rows):
                    video.write(image)
                    image_stats.add(image)
            used: set[int] = set()
            for table in _episode_tables(s, rows, fps, ep, index, tasks):
                if writer is None:
                    writer = pq.ParquetWriter(data_path, table.schema, compression="snappy")
                writer.write_table(table.cast(writer.schema))
                used.update(table["task_index"].to_pylist())
            n = len(rows)
            episodes.append({
                "episode_index": ep,
                "tasks": sorted(t for t, i in tasks.items() if i in used),
                "length": n, "data/chunk_index": 0, "data/file_index": 0,
                "dataset_from_index": index, "dataset_to_index": index + n,
                f"videos/{VIDEO_KEY}/chunk_index": chunk,
                f"videos/{VIDEO_KEY}/file_index": file,
                f"videos/{VIDEO_KEY}/from_timestamp": 0.0,
                f"videos/{VIDEO_KEY}/to_timestamp": n / fps,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "stpe/session_id": s.name})
            index += n
    finally:
        if writer is not None:
            writer.close()
    overall, per_episode = _stats(data_path, features, [
        (e["dataset_from_index"], e["dataset_to_index"]) for e in episodes])
    for episode, stats in zip(episodes, per_episode, strict=True):
        episode.update({f"stats/{k}/{stat}": v for k, st in stats.items()
                        for stat, v in st.items()})
    _write_parquet(pa.Table.from_pylist(episodes),
                   root / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _tasks_parquet(root / "meta" / "tasks.parquet", tasks)
    info = Info(codebase_version=CODEBASE_VERSION, robot_type="roblox_character",
                total_episodes=len(sessions), total_frames=index, total_tasks=len(tasks),
                chunks_size=CHUNKS_SIZE, data_files_size_in_mb=100, video_files_size_in_mb=500,
                fps=fps, splits=episode_ranges([s.split for s in sessions]), data_path=DATA_PATH,
                video_path=VIDEO_PATH, features=features)
    stats = {**overall, VIDEO_KEY: image_stats.result()}
    meta = root / "meta"
    (meta / "info.json").write_text(info.model_dump_json(indent=4) + "\n")
    checked = {k: Stats.model_validate(v).model_dump(exclude_none=True) for k, v in stats.items()}
    (meta / "stats.json").write_text(json.dumps(checked, indent=4) + "\n")
    return {"episodes": len(sessions), "frames": index, "fps": fps, "tasks": len(tasks),
            "source_frames": sum(s.count for s in sessions)}
