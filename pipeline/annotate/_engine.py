"""Running stages over sessions: in this process (default) or on Ray.

Work is stage-major: one stage's model is loaded once, runs over every session, and is
dropped before the next stage loads, so one model is resident at a time. Within a session,
frames are decoded on a thread ahead of the model, grouped into shards of `shard_frames`
decoded frames, and each shard is written as soon as it is done; finished shards are
skipped on a later run without loading the model when nothing is left to do.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from capture import Session, VideoFrame
from pipeline._errors import MissingExtraError, PipelineError
from pipeline.annotate._inputs import prefetch_frames, read_label_events, read_labels
from pipeline.annotate._outputs import StageOutputs
from pipeline.annotate._registry import AnnotateSettings, ShardInput, Stage, create_stage

logger = logging.getLogger(__name__)

Progress = Callable[[str, str, int, int], None]  # session id, stage, frames done, total
Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class StageReport:
    """What one stage did for one session."""

    session: str
    stage: str
    shards_written: int
    shards_skipped: int
    summary: dict[str, Any] = field(default_factory=dict)


def _shards(frames: Iterator[VideoFrame], size: int, overlap: int
            ) -> Iterator[tuple[int, list[VideoFrame], list[VideoFrame]]]:
    """(shard number, its frames, the `overlap` frames before it) from a frame stream."""
    before: deque[VideoFrame] = deque(maxlen=max(overlap, 1))
    current: list[VideoFrame] = []
    shard = 0
    for frame in frames:
        current.append(frame)
        if len(current) == size:
            yield shard, current, list(before) if overlap else []
            before.extend(current)
            current, shard = [], shard + 1
    if current:
        yield shard, current, list(before) if overlap else []


def _summary(sidecars: Sequence[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"shards": len(sidecars)}
    for sidecar in sidecars:
        for key, value in sidecar.get("counts", {}).items():
            totals[key] = totals.get(key, 0) + value
    if totals.get("captions"):
        totals["flagged_fraction"] = totals.get("flagged", 0) / totals["captions"]
    return totals


class StageRunner:
    """One stage, loaded at most once, run over any number of sessions."""

    def __init__(self, name: str, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.stage: Stage = create_stage(name, settings)
        self.model: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {"stage": self.stage.name, "model_id": s.model_id(self.stage.name),
                "dtype": s.dtype,
                "settings": {k: s.as_json()[k] for k in self.stage.settings_keys}}

    def run(self, path: Path | str, progress: Progress | None = None) -> StageReport:
        """Annotate one session with this stage (resuming: done shards are skipped)."""
        s, name = self.settings, self.stage.name
        session = Session.open(path)
        session_id = session.manifest.session_id
        total = session.read_frames().num_rows
        shard_count = -(-total // s.shard_frames)
        outputs = StageOutputs(session.path, name, self.identity())
        todo = [k for k in range(shard_count) if not outputs.is_done(k)]
        if not todo:
            logger.info("%s: %s already done (%d shards)", session_id, name, shard_count)
            return StageReport(session_id, name, 0, shard_count,
                               _summary(outputs.sidecars()))
        labels = read_labels(session) if self.stage.needs_labels else {}
        events = read_label_events(session) if self.stage.needs_labels else ()
        if self.model is None:
            self.model = self.stage.load()
        written, done_frames = 0, 0
        frames = prefetch_frames(session, s.prefetch)
        try:
            for shard, batch, overlap in _shards(frames, s.shard_frames, self.stage.overlap):
                done_frames += len(batch)
                if shard in todo:
                    output = self.stage.process(ShardInput(shard, batch, overlap, labels,
                                                           events))
                    outputs.write_shard(shard, [f.index for f in batch], output, self.model)
                    written += 1
                if progress is not None:
                    progress(session_id, name, min(done_frames, total), total)
                if shard >= todo[-1]:
                    break
        finally:
            frames.close()
        summary = _summary(outputs.sidecars())
        outputs.write_meta(self.model, summary)
        return StageReport(session_id, name, written, shard_count - written, summary)

    def close(self) -> None:
        self.stage.close()
        self.model = None


def annotate(paths: Sequence[Path | str], stages: Sequence[str], settings: AnnotateSettings,
             *, engine: Engine = "local", progress: Progress | None = None
             ) -> list[StageReport]:
    """Run `stages` (in order) over the sessions at `paths`; one report per (stage, session).

    >>> annotate(["sessions/s1"], ["embed"], AnnotateSettings(device="cuda", dtype="bf16"))
    """
    for path in paths:
        Session.open(path)  # fail early on a path that is not a session
    if engine == "ray":
        return _annotate_ray(paths, stages, settings)
    if engine != "local":
        raise PipelineError(f"engine {engine!r} is unknown; use 'local' or 'ray'")
    reports = []
    for name in stages:
        runner = StageRunner(name, settings)
        try:
            reports.extend(runner.run(p, progress) for p in paths)
        finally:
            runner.close()
    return reports


def _annotate_ray(paths: Sequence[Path | str], stages: Sequence[str],
                  settings: AnnotateSettings) -> list[StageReport]:
    """Each stage on a pool of Ray actors (one model load per actor, one GPU each on CUDA)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)

    @ray.remote(num_gpus=1 if settings.device == "cuda" else 0)
    class _Actor:
        def __init__(self, name: str) -> None:
            self.runner = StageRunner(name, settings)

        def run(self, path: str) -> StageReport:
            return self.runner.run(path)

    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    width = max(1, min(len(paths), gpus if settings.device == "cuda" else cpus))
    reports: list[StageReport] = []
    for name in stages:
        actors = [_Actor.remote(name) for _ in range(width)]
        pool = ActorPool(actors)
        reports.extend(pool.map(lambda actor, p: actor.run.remote(str(p)), list(paths)))
        for actor in actors:
            ray.kill(actor)
    return reports
