"""`--engine ray`: sessions spread over Ray actors, each holding every stage's model.

One actor per GPU (or per CPU slot with `--device cpu`) builds the stages once and keeps
them loaded while it annotates session after session (decoding each once, as locally).
A cluster without a GPU is an error at once, not a silent wait for resources that never
come.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline._errors import MissingExtraError, PipelineError
from pipeline.annotate._engine import Pipeline, Progress, StageReport
from pipeline.annotate._models import check_model_sizes
from pipeline.annotate._registry import AnnotateSettings


def annotate_ray(paths: Sequence[Path | str], stages: Sequence[str],
                 settings: AnnotateSettings, progress: Progress | None = None
                 ) -> list[StageReport]:
    """Annotate `paths` on the Ray cluster (started locally when none is connected)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if settings.device == "auto":
        from dataclasses import replace

        settings = replace(settings, device="cuda" if gpus else "cpu")
    if settings.device == "cuda" and gpus == 0:
        raise PipelineError("--device cuda with --engine ray, but the Ray cluster has no GPU "
                            f"(resources: {dict(resources)}); start the cluster on GPU "
                            "nodes or pass --device cpu")

    check_model_sizes(stages, settings)

    @ray.remote(num_gpus=1 if settings.device == "cuda" else 0)
    class _Actor:
        def __init__(self) -> None:
            self.pipeline = Pipeline(stages, settings)

        def run(self, path: str) -> list[StageReport]:
            return self.pipeline.run(path)

    slots = gpus if settings.device == "cuda" else int(resources.get("CPU", 1))
    actors = [_Actor.remote() for _ in range(max(1, min(len(paths), slots)))]
    pool = ActorPool(actors)
    reports: list[StageReport] = []
    try:
        for session_reports in pool.map_unordered(
                lambda actor, p: actor.run.remote(str(p)), list(paths)):
            reports.extend(session_reports)
            if progress is not None:
                for report in session_reports:
                    progress(report.session, report.stage, 1, 1)
    finally:
        for actor in actors:
            ray.kill(actor)
    return reports
