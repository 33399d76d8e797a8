"""Running stages over sessions: in this process (default) or on Ray.

Work is session-major: every requested stage's model is loaded once and stays loaded
(`keep_models`, the default, for devices where they fit), each session's video is decoded
once on a thread into whole shards (`prefetch` shards ahead), and every shard goes through
every stage that still needs it before the next. With `keep_models=False` the stages run
one after another with one model resident at a time, each decoding the video again.
Each shard is written as soon as it is done; finished shards are skipped on a later run
without loading the model when nothing is left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from capture import Session
from pipeline._errors import PipelineError
from pipeline.annotate._inputs import prefetch_shards, read_label_events, read_labels
from pipeline.annotate._outputs import StageOutputs
from pipeline.annotate._registry import AnnotateSettings, ShardInput, Stage, create_stage

if TYPE_CHECKING:
    from pipeline.annotate._ray import RayOptions

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


def summarize(sidecars: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A stage's counts summed over its shard sidecars."""
    totals: dict[str, Any] = {"shards": len(sidecars)}
    for sidecar in sidecars:
        for key, value in sidecar.get("counts", {}).items():
            totals[key] = totals.get(key, 0) + value
    if totals.get("captions"):
        totals["flagged_fraction"] = totals.get("flagged", 0) / totals["captions"]
    return totals


class StageRunner:
    """One stage, loaded at most once, with its identity for resumption."""

    def __init__(self, name: str, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.stage: Stage = create_stage(name, settings)
        self.model: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {"stage": self.stage.name, "model_id": s.model_id(self.stage.name),
                "dtype": s.dtype,
                "settings": {k: s.as_json()[k] for k in self.stage.settings_keys}}

    def load(self) -> dict[str, Any]:
        if self.model is None:
            self.model = self.stage.load()
        return self.model

    def close(self) -> None:
        self.stage.close()
        self.model = None


class Pipeline:
    """Stages run together over sessions: one decode per session, models loaded once."""

    def __init__(self, names: Sequence[str], settings: AnnotateSettings) -> None:
        self.settings = settings
        self.runners = [StageRunner(name, settings) for name in names]

    def run(self, path: Path | str, progress: Progress | None = None) -> list[StageReport]:
        """Annotate one session with every stage (resuming: done shards are skipped)."""
        s = self.settings
        session = Session.open(path)
        session_id = session.manifest.session_id
        total = session.read_frames().num_rows
        shard_count = -(-total // s.shard_frames)
        outputs = {r.stage.name: StageOutputs(session.path, r.stage.name, r.identity())
                   for r in self.runners}
        todo = {name: {k for k in range(shard_count) if not out.is_done(k)}
                for name, out in outputs.items()}
        active = [r for r in self.runners if todo[r.stage.name]]
        written = dict.fromkeys(outputs, 0)
        if active:
            needs_labels = any(r.stage.needs_labels for r in active)
            labels = read_labels(session) if needs_labels else {}
            events = read_label_events(session) if needs_labels else ()
            for runner in active:
                runner.load()
            overlap = max(r.stage.overlap for r in active)
            last = max(max(todo[r.stage.name]) for r in active)
            shards = prefetch_shards(session, s.shard_frames, overlap, s.prefetch, last)
            done_frames = 0
            try:
                for shard, batch, before in shards:
                    done_frames += len(batch)
                    for runner in active:
                        name = runner.stage.name
                        if shard not in todo[name]:
                            continue
                        tail = before[len(before) - runner.stage.overlap:] \
                            if runner.stage.overlap else []
                        output = runner.stage.process(ShardInput(shard, batch, tail, labels,
                                                                 events))
                        outputs[name].write_shard(shard, [f.index for f in batch], output,
                                                  runner.load())
                        written[name] += 1
                        if progress is not None:
                            progress(session_id, name, min(done_frames, total), total)
                    if shard >= last:
                        break
            finally:
                shards.close()
        reports = []
        for runner in self.runners:
            name = runner.stage.name
            summary = summarize(outputs[name].sidecars())
            if written[name]:
                outputs[name].write_meta(runner.load(), summary)
            else:
                logger.info("%s: %s already done (%d shards)", session_id, name, shard_count)
            reports.append(StageReport(session_id, name, written[name],
                                       shard_count - written[name], summary))
        return reports

    def close(self) -> None:
        for runner in self.runners:
            runner.close()


def resolve_device(settings: AnnotateSettings) -> AnnotateSettings:
    """`auto` becomes cuda when torch sees a CUDA device, else cpu; cuda is checked here,
    before any model loads."""
    from pipeline.annotate._runtime import import_torch, torch_device

    if settings.device == "auto":
        cuda = import_torch().cuda.is_available()
        settings = replace(settings, device="cuda" if cuda else "cpu")
        logger.info("--device auto: using %s", settings.device)
    torch_device(settings.device)
    return settings


def annotate(paths: Sequence[Path | str], stages: Sequence[str], settings: AnnotateSettings,
             *, engine: Engine = "local", progress: Progress | None = None,
             ray: RayOptions | None = None) -> list[StageReport]:
    """Run `stages` over the sessions at `paths`; one report per (session, stage).
    `ray` lays out the Ray pipeline (`engine="ray"` only).

    >>> annotate(["sessions/s1"], ["embed"], AnnotateSettings(device="cuda", dtype="bf16"))
    """
    from pipeline.annotate._models import check_model_sizes

    for path in paths:
        Session.open(path)  # fail early on a path that is not a session
    if engine not in ("local", "ray"):
        raise PipelineError(f"engine {engine!r} is unknown; use 'local' or 'ray'")
    if ray is not None and engine != "ray":
        raise PipelineError("--num-gpus and --concurrency lay out the Ray pipeline; pass "
                            "them with --engine ray")
    if engine == "ray":
        from pipeline.annotate._ray import annotate_ray

        return annotate_ray(paths, stages, settings, progress, ray)
    settings = resolve_device(settings)
    check_model_sizes(stages, settings)
    groups = [list(stages)] if settings.keep_models else [[name] for name in stages]
    reports: list[StageReport] = []
    for names in groups:
        pipeline = Pipeline(names, settings)
        try:
            for path in paths:
                reports.extend(pipeline.run(path, progress))
        finally:
            pipeline.close()
    return reports
