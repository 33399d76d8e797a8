"""`--engine ray`: frame ranges streamed through Ray Data to actors that hold the models.

The unit of work is a frame range: one shard (`shard_frames` frames) of one session, for
the stages that still need it. The driver lists the ranges (resuming: done shards are left
out), Ray Data streams them through `map_batches` to a pool of actors, each of which loads
every stage's model once, decodes only its range (seeking to the keyframe before it, plus
the frames a stage looks back on) and writes the shard's files into the session. A long
session is spread over every actor; progress is reported as ranges finish. The sessions
must be on a filesystem every node sees.

The cluster's resources are checked before anything is built: asking for GPUs from a
cluster without one is an error at once, not a wait for resources that never come.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from capture import Session
from pipeline._errors import MissingExtraError, PipelineError
from pipeline.annotate._engine import Progress, StageReport, StageRunner, summarize
from pipeline.annotate._inputs import read_label_events, read_labels
from pipeline.annotate._outputs import StageOutputs
from pipeline.annotate._registry import AnnotateSettings, ShardInput
from pipeline.annotate._runtime import import_torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions:
    """How the Ray pipeline is laid out: GPUs per actor (None: 1 on CUDA, 0 on the CPU)
    and actors in the pool (None: as many as the cluster holds, at most one per range)."""

    num_gpus: float | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.num_gpus is not None and not self.num_gpus >= 0:
            raise PipelineError(f"--num-gpus {self.num_gpus} is not a GPU count; pass 0 or more "
                                "(a fraction shares a GPU)")
        if self.concurrency is not None and self.concurrency < 1:
            raise PipelineError(f"--concurrency {self.concurrency} is not positive; pass 1 "
                                "or more actors")


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, stop) of one session: shard `shard`, for `stages`."""

    path: str
    shard: int
    start: int
    stop: int
    stages: tuple[str, ...]


def plan_ranges(paths: Sequence[Path | str], stages: Sequence[str],
                settings: AnnotateSettings) -> tuple[list[FrameRange], dict[str, Any]]:
    """The frame ranges still to annotate, in session then frame order, and per session
    what the driver needs afterwards (id, frame count, outputs by stage). A shard made with
    other options stops here, before any model loads, as locally."""
    runners = [StageRunner(name, settings) for name in stages]
    ranges: list[FrameRange] = []
    sessions: dict[str, Any] = {}
    for path in paths:
        session = Session.open(path)
        total = session.read_frames().num_rows
        count = -(-total // settings.shard_frames)
        outputs = {r.stage.name: StageOutputs(session.path, r.stage.name, r.identity())
                   for r in runners}
        todo = {name: {k for k in range(count) if not out.is_done(k)}
                for name, out in outputs.items()}
        if any(r.stage.needs_labels and todo[r.stage.name] for r in runners):
            read_labels(session)  # a missing or broken labels file fails here, not in a worker
            read_label_events(session)
        sessions[str(path)] = {"id": session.manifest.session_id, "total": total,
                               "count": count, "outputs": outputs}
        for shard in range(count):
            needed = tuple(name for name in stages if shard in todo[name])
            if needed:
                start = shard * settings.shard_frames
                ranges.append(FrameRange(str(path), shard, start,
                                         min(total, start + settings.shard_frames), needed))
    return ranges, sessions


class RangeAnnotator:
    """A Ray actor: every stage's model loaded once; each call annotates frame ranges and
    writes their shards. Returns one row per (range, stage) for the driver."""

    def __init__(self, stages: Sequence[str], settings: AnnotateSettings) -> None:
        self.runners = {name: StageRunner(name, settings) for name in stages}
        self.records = {name: runner.load() for name, runner in self.runners.items()}
        self._session: tuple[str, Session, dict, tuple] | None = None

    def _open(self, path: str, labels: bool) -> tuple[Session, dict, tuple]:
        """The session (and its labels when a stage needs them), kept for the next range,
        which is usually of the same session."""
        if self._session is None or self._session[0] != path or (labels and not
                                                                  self._session[2]):
            session = Session.open(path)
            self._session = (path, session,
                             read_labels(session) if labels else {},
                             read_label_events(session) if labels else ())
        return self._session[1], self._session[2], self._session[3]

    def annotate(self, frame_range: FrameRange) -> list[dict[str, Any]]:
        """Decode the range (with the frames the stages look back on) and run its stages."""
        runners = [self.runners[name] for name in frame_range.stages]
        session, labels, events = self._open(
            frame_range.path, any(r.stage.needs_labels for r in runners))
        lookback = max(r.stage.overlap for r in runners)
        frames = []
        with closing(session.iter_frames(max(0, frame_range.start - lookback))) as decoded:
            for frame in decoded:  # closed at the range's end: the container is released
                if frame.index >= frame_range.stop:
                    break
                frames.append(frame)
        before = [f for f in frames if f.index < frame_range.start]
        batch = [f for f in frames if f.index >= frame_range.start]
        rows = []
        for runner in runners:
            name = runner.stage.name
            tail = before[len(before) - runner.stage.overlap:] if runner.stage.overlap else []
            # Ray calls actors on another thread than the one that loaded the models, and
            # torch's grad mode is per thread
            with import_torch().no_grad():
                output = runner.stage.process(ShardInput(frame_range.shard, batch, tail,
                                                         labels, events))
            outputs = StageOutputs(session.path, name, runner.identity())
            outputs.write_shard(frame_range.shard, [f.index for f in batch], output,
                                self.records[name])
            rows.append({"path": frame_range.path, "stage": name, "shard": frame_range.shard,
                         "frames": len(batch), "model": json.dumps(self.records[name])})
        return rows

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = [row for k in range(len(batch["path"]))
                for row in self.annotate(FrameRange(
                    str(batch["path"][k]), int(batch["shard"][k]), int(batch["start"][k]),
                    int(batch["stop"][k]), tuple(str(s) for s in batch["stages"][k])))]
        return {key: [row[key] for row in rows]
                for key in ("path", "stage", "shard", "frames", "model")}


def _worker_error(exc: BaseException) -> PipelineError:
    """What went wrong in a worker, without Ray's wrapping. A worker's exception reaches
    the driver as Ray's exceptions around it, the original only as the text of the
    remote traceback: its last line before Ray's own ("ErrorType: message") is the error.
    The pipeline's and the session store's own errors keep just their message."""
    remote = str(exc)  # a RayTaskError's text holds the remote traceback
    head = remote.split("The above exception was the direct cause")[0].strip().splitlines()
    line = head[-1].strip() if head else type(exc).__name__
    kind, _, message = line.partition(": ")
    if kind.rsplit(".", 1)[-1] in {"PipelineError", "SessionError", "CaptureError"}:
        return PipelineError(message)
    return PipelineError(f"annotating on Ray failed in a worker: {line[:300]}; the shards "
                         "finished before it are kept and a new run resumes after them")


def _resolve(settings: AnnotateSettings, options: RayOptions,
             resources: dict[str, float]) -> tuple[AnnotateSettings, float]:
    """The device and GPUs per actor, checked against the cluster's resources."""
    gpus = float(resources.get("GPU", 0))
    if settings.device == "auto":
        auto = "cuda" if gpus and options.num_gpus != 0 else "cpu"
        settings = replace(settings, device=auto)
    num_gpus = options.num_gpus if options.num_gpus is not None else (
        1.0 if settings.device == "cuda" else 0.0)
    if (settings.device == "cuda" or num_gpus > 0) and gpus == 0:
        raise PipelineError(f"--engine ray with --device {settings.device} and --num-gpus "
                            f"{num_gpus:g}, but the Ray cluster has no GPU (resources: "
                            f"{dict(resources)}); start the cluster on GPU nodes or pass "
                            "--device cpu --num-gpus 0")
    if settings.device == "cuda" and num_gpus == 0:
        raise PipelineError("--device cuda with --num-gpus 0: the actors would get no GPU; "
                            "pass --num-gpus 1 (or a fraction to share one)")
    if num_gpus > gpus:
        raise PipelineError(f"--num-gpus {num_gpus:g} per actor, but the Ray cluster has "
                            f"{gpus:g} GPUs; pass at most {gpus:g}")
    return settings, num_gpus


def _slots(options: RayOptions, num_gpus: float, resources: dict[str, float]) -> int:
    """How many actors the cluster holds at once (each takes one CPU and `num_gpus`); a
    `--concurrency` above it is an error, not a pool that waits for ever."""
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    slots = max(1, int(min(cpus, gpus / num_gpus if num_gpus else cpus)))
    if options.concurrency is not None and options.concurrency > slots:
        need = f"{options.concurrency} CPUs" + (
            f" and {options.concurrency * num_gpus:g} GPUs" if num_gpus else "")
        raise PipelineError(f"--concurrency {options.concurrency}: the actors need {need}, "
                            f"but the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; "
                            f"pass --concurrency {slots} or fewer")
    return slots


def annotate_ray(paths: Sequence[Path | str], stages: Sequence[str],
                 settings: AnnotateSettings, progress: Progress | None = None,
                 options: RayOptions | None = None) -> list[StageReport]:
    """Annotate `paths` on the Ray cluster (started locally when none is connected)."""
    from pipeline.annotate._models import check_model_sizes

    options = options or RayOptions()
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    if not ray.is_initialized():
        # workers' output comes to this terminal: the download progress of the weights
        # each actor fetches on first use
        ray.init(include_dashboard=False, log_to_driver=True)
    resources = ray.cluster_resources()
    settings, num_gpus = _resolve(settings, options, resources)
    slots = _slots(options, num_gpus, resources)
    check_model_sizes(stages, settings)
    ranges, sessions = plan_ranges(paths, stages, settings)
    written: dict[tuple[str, str], int] = {}
    models: dict[tuple[str, str], dict[str, Any]] = {}
    if ranges:
        size = options.concurrency or min(len(ranges), slots)
        logger.info("Ray: %d frame ranges over %d actors (%g GPUs each)", len(ranges), size,
                    num_gpus)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # progress is ours, per session and stage
        items = [{"path": r.path, "shard": r.shard, "start": r.start, "stop": r.stop,
                  "stages": list(r.stages)} for r in ranges]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            RangeAnnotator, fn_constructor_kwargs={"stages": list(stages),
                                                   "settings": settings},
            batch_size=1, batch_format="numpy",  # one range (a shard) per call
            compute=ray.data.ActorPoolStrategy(size=size), num_gpus=num_gpus,
            num_cpus=1)
        done: dict[tuple[str, str], int] = {}
        try:
            for row in dataset.iter_rows():
                key = (str(row["path"]), str(row["stage"]))
                written[key] = written.get(key, 0) + 1
                done[key] = done.get(key, 0) + int(row["frames"])
                models[key] = json.loads(row["model"])
                if progress is not None:
                    info = sessions[key[0]]
                    progress(info["id"], key[1], min(done[key], info["total"]), info["total"])
        except Exception as exc:  # a worker's error arrives wrapped in Ray's exceptions
            raise _worker_error(exc) from None
    reports = []
    for path, info in sessions.items():
        for name in stages:
            outputs = info["outputs"][name]
            summary = summarize(outputs.sidecars())
            count = written.get((path, name), 0)
            if count:
                outputs.write_meta(models[(path, name)], summary)
            reports.append(StageReport(info["id"], name, count, info["count"] - count,
                                       summary))
    return reports
