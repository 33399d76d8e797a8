"""The stage registry: each annotation stage registers itself, one factory builds it.

>>> stage = create_stage("embed", AnnotateSettings(device="cpu", dtype="fp32"))
>>> stage.name
'embed'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from capture import VideoFrame
from pipeline._errors import PipelineError
from pipeline.annotate._inputs import FrameLabel, LabelEvent

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["bf16", "fp16", "fp32"]

DEFAULT_MODELS = {
    "embed": "facebook/dinov3-vit7b16-pretrain-lvd1689m",
    "segment": "facebook/sam3",
    "caption": "Qwen/Qwen3-VL-8B-Instruct",
    "video": "facebook/vjepa2-vitl-fpc64-256",
}
DEFAULT_VOCABULARY = ("person", "character", "tree", "building", "vehicle", "door", "box")


@dataclass(frozen=True)
class AnnotateSettings:
    """Every option of `stpe annotate`; a stage reads the ones it needs."""

    device: Device = "cpu"
    dtype: DType = "fp32"
    batch_size: int = 8
    models: Mapping[str, str] = field(default_factory=dict)  # stage -> hub id or folder
    shard_frames: int = 256
    prefetch: int = 1  # whole shards decoded ahead of the models
    keep_models: bool = True  # every stage's model loaded at once, one decode per session
    allow_large_on_cpu: bool = False  # run multi-billion-parameter models on a CPU
    compile_models: bool = False  # torch.compile the embedding backbones (embed, video)
    # embed
    max_side: int = 512
    dense_every: int = 10
    # segment
    vocabulary: tuple[str, ...] = DEFAULT_VOCABULARY
    score_threshold: float = 0.3
    match_iou: float = 0.3
    keyframe_every: int = 30  # frames between box re-prompts and text detection
    # caption
    context: str = ""
    caption_every: float = 2.0  # seconds between captions away from events
    max_pixels: int = 448 * 448
    max_new_tokens: int = 48
    # video
    clip_frames: int = 16
    clip_stride: int = 8

    def __post_init__(self) -> None:
        for name in ("batch_size", "shard_frames", "prefetch", "max_side", "dense_every",
                     "keyframe_every", "max_pixels", "max_new_tokens", "clip_frames",
                     "clip_stride"):
            if getattr(self, name) < 1:
                raise PipelineError(f"annotate setting {name}={getattr(self, name)} is not "
                                    "positive; pass a value >= 1")
        if not self.caption_every > 0:
            raise PipelineError(f"annotate setting caption_every={self.caption_every} is not "
                                "positive; pass a number of seconds > 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise PipelineError(f"device {self.device!r} is unknown; use auto, cpu or cuda")
        if self.dtype not in ("bf16", "fp16", "fp32"):
            raise PipelineError(f"dtype {self.dtype!r} is unknown; use bf16, fp16 or fp32")

    def model_id(self, stage: str) -> str:
        """The hub id or folder the stage loads (its default unless overridden)."""
        return self.models.get(stage) or DEFAULT_MODELS.get(stage, "")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = dict(self.models)
        data["vocabulary"] = list(self.vocabulary)
        return data


@dataclass(frozen=True)
class ShardInput:
    """One shard's frames (plus `overlap` earlier frames for stages that look back), with the
    labels and events of the session when the stage needs them."""

    shard: int
    frames: Sequence[VideoFrame]
    overlap: Sequence[VideoFrame]
    labels: Mapping[int, FrameLabel]
    events: Sequence[LabelEvent]


@dataclass(frozen=True)
class ShardOutput:
    """What a stage made of one shard: tensors (safetensors, fp16) and/or table rows
    (parquet), plus string metadata and summary counts."""

    tensors: Mapping[str, Any] = field(default_factory=dict)
    rows: Sequence[Mapping[str, Any]] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)


class Stage(Protocol):
    """An annotation stage: `load()` once, `process()` each shard, `close()` frees memory."""

    name: str
    needs_labels: bool
    overlap: int  # earlier frames the stage needs before each shard
    settings_keys: tuple[str, ...]  # the settings its output depends on

    def load(self) -> dict[str, Any]:
        """Load the model; returns what to record about it (id, revision, dtype)."""

    def process(self, shard: ShardInput) -> ShardOutput:
        """Annotate one shard."""

    def close(self) -> None:
        """Drop the model and free its memory."""


_STAGES: dict[str, Callable[[AnnotateSettings], Stage]] = {}


def register_stage(name: str) -> Callable[[type], type]:
    """Class decorator: make a stage available to `create_stage(name, ...)`."""

    def decorate(cls: type) -> type:
        if name in _STAGES:
            raise PipelineError(f"annotation stage {name!r} is registered twice")
        _STAGES[name] = cls
        return cls

    return decorate


def available_stages() -> list[str]:
    """Registered stage names, in run order."""
    from pipeline.annotate import _caption, _embed, _segment, _video  # noqa: F401  (register)

    order = list(DEFAULT_MODELS)
    return sorted(_STAGES, key=lambda s: (order.index(s) if s in order else len(order), s))


def create_stage(name: str, settings: AnnotateSettings) -> Stage:
    """Build the stage registered under `name` (embed, segment, caption, video)."""
    if name not in available_stages():
        raise PipelineError(f"unknown annotation stage {name!r}; choose from "
                            f"{', '.join(available_stages())}")
    return _STAGES[name](settings)
