"""LeRobot v3.0 metadata: info.json and stats.json as pydantic models, written from the
v3.0 layout (huggingface/lerobot, `lerobot/datasets/utils.py`), and per-feature statistics.

```
meta/info.json                      Info
meta/stats.json                     {feature: Stats}
meta/tasks.parquet                  task (index), task_index
meta/episodes/chunk-000/file-000.parquet
data/chunk-000/file-000.parquet
videos/observation.images.main/chunk-000/file-000.mp4   (one file per episode)
```
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)

# A statistic per dimension, nested to the feature's shape; finite numbers only (JSON has
# no NaN, and LeRobot normalises with these values).
Values = TypeAliasType("Values", "list[float] | list[Values]")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Feature(Strict):
    dtype: Literal["float32", "float64", "int64", "bool", "string", "video", "image"]
    shape: list[int] = Field(min_length=1)
    names: list[str] | dict[str, list[str]] | None
    info: dict[str, Any] | None = None


class Info(Strict):
    codebase_version: Literal["v3.0"]
    robot_type: str | None
    total_episodes: int = Field(ge=0)
    total_frames: int = Field(ge=0)
    total_tasks: int = Field(ge=0)
    chunks_size: int = Field(gt=0)
    data_files_size_in_mb: int = Field(gt=0)
    video_files_size_in_mb: int = Field(gt=0)
    fps: int = Field(gt=0)
    splits: dict[str, str]
    data_path: Literal["data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"]
    video_path: Literal[
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"] | None
    features: dict[str, Feature]


class Stats(Strict):
    min: Values
    max: Values
    mean: Values
    std: Values
    count: list[int]
    q01: Values | None = None
    q10: Values | None = None
    q50: Values | None = None
    q90: Values | None = None
    q99: Values | None = None


def vector_stats(values: np.ndarray, shape: tuple[int, ...] | None = None
                 ) -> dict[str, list[Any]]:
    """LeRobot statistics of an (n, ...) array, per dimension, shaped `shape` (default:
    flat)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    shape = shape or (values.shape[1],)

    def shaped(v: np.ndarray) -> list[Any]:
        return v.reshape(shape).tolist()

    out: dict[str, list[Any]] = {
        "min": shaped(values.min(0)), "max": shaped(values.max(0)),
        "mean": shaped(values.mean(0)), "std": shaped(values.std(0)),
        "count": [len(values)]}
    for q in QUANTILES:
        out[f"q{round(q * 100):02d}"] = shaped(np.quantile(values, q, axis=0))
    return out


class ImageStats:
    """Running per-channel statistics of RGB frames in [0, 1], shaped (3, 1, 1) as LeRobot
    stores them; every `step`-th pixel of every `step`-th row of each frame is counted."""

    def __init__(self, step: int = 8) -> None:
        self.step = step
        self.count = 0
        self._sum = np.zeros(3)
        self._sq = np.zeros(3)
        self._min = np.full(3, np.inf)
        self._max = np.full(3, -np.inf)
        self._pixels = 0

    def add(self, image: np.ndarray) -> None:
        px = image[:: self.step, :: self.step].reshape(-1, 3).astype(np.float64) / 255.0
        self._sum += px.sum(0)
        self._sq += (px * px).sum(0)
        self._min = np.minimum(self._min, px.min(0))
        self._max = np.maximum(self._max, px.max(0))
        self._pixels += len(px)
        self.count += 1

    def result(self) -> dict[str, list[Any]]:
        mean = self._sum / max(self._pixels, 1)
        std = np.sqrt(np.maximum(self._sq / max(self._pixels, 1) - mean**2, 0.0))

        def shaped(v: np.ndarray) -> list[Any]:
            return v.reshape(3, 1, 1).tolist()

        return {"min": shaped(self._min), "max": shaped(self._max), "mean": shaped(mean),
                "std": shaped(std), "count": [self.count]}
