"""The default models: what they are, how big, under which licence; and the guard that
keeps a multi-billion-parameter model off a CPU unless asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline._errors import PipelineError
from pipeline.annotate._registry import DEFAULT_MODELS, AnnotateSettings

LARGE_PARAMS = 3e9  # parameters from which a model counts as too large for a CPU


@dataclass(frozen=True)
class ModelInfo:
    """A default model as published: parameters, bf16 weights on disk, licence."""

    stage: str
    model_id: str
    params: float
    licence: str
    gated: bool


# Checked against the published pages:
# - DINOv3 ViT-7B/16: 6,716M parameters (the MODEL_CARD.md table of facebookresearch/dinov3,
#   https://deepwiki.com/facebookresearch/dinov3/1.1-model-architecture-and-variants);
#   "License: DINOv3 License", access after sharing contact information (gated), on the
#   hub card https://huggingface.co/facebook/dinov3-vits16-pretrain-lvd1689m and its 7B
#   sibling https://huggingface.co/facebook/dinov3-vit7b16-pretrain-sat493m.
# - SAM 3: 848M parameters, detector and tracker sharing one vision encoder
#   (https://www.mintlify.com/facebookresearch/sam3/concepts/architecture); SAM License
#   (license_name: sam-license of the mirror https://huggingface.co/AEmotionStudio/sam3,
#   base_model facebook/sam3), hub access requests reviewed by hand (gated).
# - Qwen3-VL-8B-Instruct: 8.77B parameters (dense; 8.8B on
#   https://haimaker.ai/models/qwen/qwen3-vl-8b-instruct), `license: apache-2.0` in the
#   card's front matter (https://huggingface.co/Qwen/Qwen3-VL-8B-Instruct, README.md).
# - V-JEPA 2 ViT-L fpc64-256: 0.3B on https://huggingface.co/collections/facebook/v-jepa-2,
#   326.0M (encoder and predictor) counted from its model.safetensors in
#   https://huggingface.co/lucid-dl/vjepa2-vitl; licence mit.
MODELS = {
    "embed": ModelInfo("embed", DEFAULT_MODELS["embed"], 6.716e9, "DINOv3 License", True),
    "segment": ModelInfo("segment", DEFAULT_MODELS["segment"], 0.848e9, "SAM License", True),
    "caption": ModelInfo("caption", DEFAULT_MODELS["caption"], 8.77e9, "Apache-2.0", False),
    "video": ModelInfo("video", DEFAULT_MODELS["video"], 0.326e9, "MIT", False),
}


def models_help() -> str:
    """The default models, two lines each (within 80 columns), for `--help` and the docs."""
    return "\n".join(f"{m.stage}: {m.model_id}\n  {m.params / 1e9:.2g}B parameters, "
                     f"{m.params * 2 / 1e9:.2g} GB in bf16, {m.licence}"
                     f"{', gated (accept it on the hub)' if m.gated else ''}"
                     for m in MODELS.values())


def estimated_params(model_id: str) -> float | None:
    """Parameters of a default id, or of a local folder from its safetensors size (bytes /
    2: exact for bf16 and fp16 weights, twice the count for fp32); None for other hub ids."""
    if not model_id:
        return None
    for info in MODELS.values():
        if info.model_id == model_id:
            return info.params
    folder = Path(model_id)
    if folder.is_dir():
        return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2
    return None


def check_model_sizes(stages: Sequence[str], settings: AnnotateSettings) -> None:
    """Refuse, before anything loads, a model of >= 3B parameters on the CPU unless
    `allow_large_on_cpu`: it would take hours where a GPU takes minutes."""
    if settings.device != "cpu" or settings.allow_large_on_cpu:
        return
    large = [(stage, settings.model_id(stage), params) for stage in stages
             if (params := estimated_params(settings.model_id(stage))) is not None
             and params >= LARGE_PARAMS]
    if large:
        names = ", ".join(f"{stage} ({model_id}, ~{params / 1e9:.1f}B parameters)"
                          for stage, model_id, params in large)
        raise PipelineError(f"refusing to run {names} on the CPU: it would be very slow. "
                            "Use --device cuda, a smaller model (--embed-model, "
                            "--caption-model, ...), or --allow-large-on-cpu")
