"""`stpe annotate`: model annotations (embeddings, masks, captions, clip embeddings)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn

from pipeline._errors import PipelineError
from pipeline.commands._conventions import Output, session_words, sessions_argument

STAGES = ("embed", "segment", "caption", "video")


def _stages(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown) or '(none)'}; "
                                 f"choose from {','.join(STAGES)}", param_hint="--stages")
    return names


def _epilog() -> str:
    from pipeline.annotate._models import models_help

    return "\b\nDefault models (weights download on first use):\n" + models_help()


@click.command(epilog=_epilog())
@sessions_argument()
@click.option("--stages", default="embed,segment,caption", show_default=True,
              help="Comma-separated stages, run in this order.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
              show_default=True, help="auto: cuda when torch sees a GPU, else cpu.")
@click.option("--allow-large-on-cpu", is_flag=True,
              help="Run models of 3B+ parameters on the CPU (refused otherwise: very slow).")
@click.option("--one-model-at-a-time", is_flag=True,
              help="Load one stage's model at a time (less memory; decodes once per stage).")
@click.option("--compile", "compile_models", is_flag=True,
              help="torch.compile the embedding models (embed, video); each new input "
                   "shape is compiled first (minutes for a 7B model).")
@click.option("--dtype", type=click.Choice(["bf16", "fp16", "fp32"]), default="bf16",
              show_default=True)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: frame ranges streamed over a Ray cluster's actors.")
@click.option("--num-gpus", type=click.FloatRange(min=0),
              help="GPUs per Ray actor (default 1 on cuda, 0 on cpu; a fraction shares one).")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Ray actors, each holding the models (default: as many as fit).")
@click.option("--embed-model", help="Hub id or folder for DINOv3.")
@click.option("--segment-model", help="Hub id or folder for SAM 3.")
@click.option("--caption-model", help="Hub id or folder for Qwen3-VL.")
@click.option("--video-model", help="Hub id or folder for V-JEPA 2.")
@click.option("--context", default="", help="Human context added to every caption prompt.")
@click.option("--dense-every", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--caption-every", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="Seconds between captions away from events.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-side", type=click.IntRange(min=16), default=512, show_default=True)
@click.option("--max-pixels", type=click.IntRange(min=1024), default=448 * 448,
              show_default=True)
def command(sessions: list[Path], stages: str, device: str, allow_large_on_cpu: bool,
            one_model_at_a_time: bool, compile_models: bool, dtype: str, engine: str,
            num_gpus: float | None, concurrency: int | None,
            embed_model: str | None, segment_model: str | None, caption_model: str | None,
            video_model: str | None, context: str, dense_every: int,
            caption_every: float, batch_size: int, max_side: int, max_pixels: int) -> None:
    """Annotate SESSIONS with vision models into <session>/annotations/ (resumable)."""
    from pipeline.annotate import AnnotateSettings, RayOptions, annotate

    models = {k: v for k, v in (("embed", embed_model), ("segment", segment_model),
                                ("caption", caption_model), ("video", video_model)) if v}
    names = _stages(stages)
    settings = AnnotateSettings(device=device, dtype=dtype, batch_size=batch_size,
                                allow_large_on_cpu=allow_large_on_cpu,
                                keep_models=not one_model_at_a_time,
                                compile_models=compile_models,
                                models=models,
                                context=context, dense_every=dense_every,
                                caption_every=caption_every, max_side=max_side,
                                max_pixels=max_pixels)
    output = Output.current()
    with output.progress_bar("[progress.description]{task.description}", BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(),
                             transient=False) as bar:
        tasks: dict[tuple[str, str], int] = {}

        def progress(session: str, stage: str, done: int, total: int) -> None:
            key = (session, stage)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{stage} {session}", total=total)
            bar.update(tasks[key], completed=done)

        layout = (RayOptions(num_gpus=num_gpus, concurrency=concurrency)
                  if num_gpus is not None or concurrency is not None else None)
        reports = annotate(list(sessions), names, settings, engine=engine, progress=progress,
                           ray=layout)
    for report in reports:
        line = (f"{report.session} {report.stage}: {report.shards_written} shards written, "
                f"{report.shards_skipped} skipped")
        if "flagged_fraction" in report.summary:
            line += f", captions flagged inconsistent: {report.summary['flagged_fraction']:.1%}"
        output.console.print(line)
    if not reports:
        raise PipelineError("nothing was annotated; pass at least one session")
    output.result({"command": "annotate", "results": [
        {"session": r.session, "stage": r.stage, "shards_written": r.shards_written,
         "shards_skipped": r.shards_skipped, "summary": r.summary} for r in reports]})
    output.hint(f"stpe export {session_words(sessions)} --format coco --out DATASET "
                "(the masks join the boxes)")
