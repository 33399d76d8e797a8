"""Model annotation: DINOv3 embeddings, SAM 3 masks, Qwen3-VL captions, V-JEPA 2 clips.

Each stage registers itself (`register_stage`) and `create_stage` builds one; `annotate`
runs stages over sessions (in-process or on Ray) and writes `<session>/annotations/`.
Heavy libraries (torch, transformers, ray) are imported only inside the stages.
"""

from pipeline.annotate._consistency import Answer, Consistency, check_answer, parse_answer
from pipeline.annotate._engine import StageReport, StageRunner, annotate
from pipeline.annotate._inputs import (
    FrameLabel,
    LabeledObject,
    LabelEvent,
    read_label_events,
    read_labels,
)
from pipeline.annotate._masks import MaskEncoder, box_iou
from pipeline.annotate._prompt import (
    CaptionSlot,
    build_prompt,
    caption_slots,
    describe_event,
    describe_state,
    merge_events,
)
from pipeline.annotate._ray import RayOptions
from pipeline.annotate._registry import (
    DEFAULT_MODELS,
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    Stage,
    available_stages,
    create_stage,
    register_stage,
)
from pipeline.annotate._rle import mask_box, rle_area, rle_decode, rle_encode

__all__ = [
    "DEFAULT_MODELS",
    "AnnotateSettings",
    "Answer",
    "CaptionSlot",
    "Consistency",
    "FrameLabel",
    "LabelEvent",
    "LabeledObject",
    "MaskEncoder",
    "RayOptions",
    "ShardInput",
    "ShardOutput",
    "Stage",
    "StageReport",
    "StageRunner",
    "annotate",
    "available_stages",
    "box_iou",
    "build_prompt",
    "caption_slots",
    "check_answer",
    "create_stage",
    "describe_event",
    "describe_state",
    "mask_box",
    "merge_events",
    "parse_answer",
    "read_label_events",
    "read_labels",
    "register_stage",
    "rle_area",
    "rle_decode",
    "rle_encode",
]
