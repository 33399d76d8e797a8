"""The segment stage: SAM 3 masks whose identity comes from the prompt, not from overlap.

`facebook/sam3` ships one `sam3_video` checkpoint; its detector loads as `Sam3Model` and its
tracker as `Sam3TrackerVideoModel` (both read their half of the same weights; the tracker
shares the detector's ViT backbone). Per shard a streaming tracker session runs over the
frames:
- every true entity on screen (the character and tagged entities of the labels) is given
  to the tracker as a box prompt, its projected box, when it comes on screen and again every
  `keyframe_every` frames; its masks carry its entity id by construction;
- on keyframes the detector looks for the vocabulary by text; a detection that no true
  entity's box explains (IoU < `match_iou`) becomes a new tracked object `track-NNNNN`;
- the tracker propagates all objects frame to frame with its own memory.
Masks are thresholded on the device, copied to the host and RLE-encoded on a worker thread
(`_masks.MaskEncoder`), with the tracker's per-frame state trimmed to what its memory reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from capture import VideoFrame
from pipeline.annotate._inputs import FrameLabel, LabeledObject
from pipeline.annotate._masks import MaskEncoder, box_iou
from pipeline.annotate._registry import (
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    register_stage,
)
from pipeline.annotate._runtime import (
    free_device_memory,
    images_to_tensor,
    import_torch,
    load_pretrained,
    preprocessor_dict,
    resize_normalize,
    torch_device,
)

TEXT_TRACK_BASE = 1_000_000  # tracker object ids of text detections start here


def processor_settings(model_id: str) -> dict[str, Any]:
    """The image processor settings of a SAM 3 repository (processor_config.json's
    `image_processor`, else preprocessor_config.json)."""
    nested = preprocessor_dict(model_id, "processor_config.json").get("image_processor")
    return nested or preprocessor_dict(model_id)


def _valid_box(obj: LabeledObject, width: int, height: int) -> bool:
    x0, y0, x1, y1 = obj.box_xyxy
    return (obj.on_screen and all(np.isfinite(obj.box_xyxy)) and x1 - x0 >= 1 and y1 - y0 >= 1
            and x1 > 0 and y1 > 0 and x0 < width and y0 < height)


def device_boxes(masks: Any) -> list[tuple[float, float, float, float] | None]:
    """Tight [x0, y0, x1, y1] boxes of [N, H, W] boolean masks, computed on their device
    (None for an empty mask); one host sync for all of them."""
    torch = import_torch()
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    height, width = masks.shape[1], masks.shape[2]
    ys = torch.arange(height, device=masks.device)
    xs = torch.arange(width, device=masks.device)
    big = torch.iinfo(torch.int64).max
    stats = torch.stack([torch.where(cols, xs, big).min(1).values,
                         torch.where(rows, ys, big).min(1).values,
                         torch.where(cols, xs, -1).max(1).values + 1,
                         torch.where(rows, ys, -1).max(1).values + 1], dim=1).tolist()
    return [tuple(float(v) for v in b) if b[2] > 0 else None for b in stats]


class Sam3Segmenter:
    """SAM 3 detector + tracker from one repository (transformers)."""

    def __init__(self, settings: AnnotateSettings, model_id: str) -> None:
        from transformers import AutoTokenizer, Sam3Model, Sam3TrackerVideoModel

        self.settings = settings
        self.detector, self.record = load_pretrained(Sam3Model, model_id, dtype=settings.dtype,
                                                     device=settings.device)
        self.tracker, tracker_record = load_pretrained(
            Sam3TrackerVideoModel, model_id, dtype=settings.dtype, device=settings.device)
        self.record["tracker_class"] = tracker_record["model_class"]
        shared = self.detector.vision_encoder.backbone
        if all(a.shape == b.shape and bool((a == b).all()) for a, b in zip(
                shared.parameters(), self.tracker.vision_encoder.backbone.parameters(),
                strict=True)):
            self.tracker.vision_encoder.backbone = shared  # one ViT in memory, not two
        self.tokenizer = AutoTokenizer.from_pretrained(model_id)
        self.device = torch_device(settings.device)
        pre = processor_settings(model_id)
        side = int(self.tracker.config.image_size)
        size = pre.get("size") or {}
        self.size = (int(size.get("height", side)), int(size.get("width", side)))
        self.mean = tuple(pre.get("image_mean", (0.5, 0.5, 0.5)))
        self.std = tuple(pre.get("image_std", (0.5, 0.5, 0.5)))
        self.text_length = int(self.detector.config.text_config.max_position_embeddings)
        self.dropped = import_torch().empty(0)  # stands for a trimmed frame's pixels

    def pixels(self, image: np.ndarray) -> Any:
        batch = images_to_tensor([image], self.device)
        return resize_normalize(batch, self.size, self.mean, self.std).to(self.detector.dtype)

    def detect(self, pixels: Any, prompts: Sequence[str], width: int, height: int
               ) -> list[tuple[str, tuple[float, float, float, float], float]]:
        """Text detections on one frame: (prompt, box in frame pixels, score)."""
        torch = import_torch()
        s = self.settings
        vision = self.detector.get_vision_features(pixel_values=pixels)
        text = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                              max_length=self.text_length, return_tensors="pt").to(self.device)
        scale = torch.tensor([width, height, width, height], device=self.device)
        found = []
        for p, prompt in enumerate(prompts):
            out = self.detector(vision_embeds=vision, input_ids=text["input_ids"][p:p + 1],
                                attention_mask=text["attention_mask"][p:p + 1])
            scores = out.pred_logits[0].float().sigmoid()
            if out.presence_logits is not None:
                scores = scores * out.presence_logits[0].float().sigmoid()
            keep = scores > s.score_threshold
            boxes = (out.pred_boxes[0][keep].float() * scale).tolist()
            found += [(prompt, tuple(b), float(v))
                      for b, v in zip(boxes, scores[keep].tolist(), strict=True)]
        return found

    def new_session(self, width: int, height: int) -> Any:
        from transformers.models.sam3_tracker_video.modeling_sam3_tracker_video import (
            Sam3TrackerVideoInferenceSession,
        )

        return Sam3TrackerVideoInferenceSession(
            video_height=height, video_width=width, inference_device=self.device,
            inference_state_device=self.device, video_storage_device=self.device,
            dtype=self.tracker.dtype)

    def prompt_box(self, session: Any, frame_idx: int, obj_id: int,
                   box: Sequence[float], width: int, height: int) -> None:
        """A box prompt as Sam3TrackerVideoProcessor builds it: corners scaled to the model
        input, point labels 2 (top-left) and 3 (bottom-right)."""
        torch = import_torch()
        sy, sx = self.size[0] / height, self.size[1] / width
        x0, y0, x1, y1 = (float(v) for v in box)
        coords = torch.tensor([[[[x0 * sx, y0 * sy], [x1 * sx, y1 * sy]]]], dtype=torch.float32)
        labels = torch.tensor([[[2, 3]]], dtype=torch.int32)
        index = session.obj_id_to_idx(obj_id)
        session.add_point_inputs(index, frame_idx, {"point_coords": coords,
                                                    "point_labels": labels})
        session.remove_mask_inputs(index, frame_idx)
        session.obj_with_new_inputs = [*session.obj_with_new_inputs, obj_id]

    def trim(self, session: Any, frame_idx: int) -> None:
        """Drop what the tracker's memory no longer reads: the frame's pixels (an empty
        placeholder stays, the tracker counts frames by its entries) and non-conditioning
        outputs older than its memory and pointer windows."""
        keep = max(self.tracker.config.num_maskmem,
                   self.tracker.config.max_object_pointers_in_encoder) + 1
        session.processed_frames[frame_idx] = self.dropped
        for outputs in session.output_dict_per_obj.values():
            for old in [f for f in outputs["non_cond_frame_outputs"] if f < frame_idx - keep]:
                del outputs["non_cond_frame_outputs"][old]


@register_stage("segment")
class SegmentStage:
    """SAM 3 box-prompted tracking of the true entities plus text-found extra objects."""

    name = "segment"
    needs_labels = True
    overlap = 0
    settings_keys = ("vocabulary", "score_threshold", "match_iou", "keyframe_every")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.sam: Sam3Segmenter | None = None

    def load(self) -> dict[str, Any]:
        self.sam = Sam3Segmenter(self.settings, self.settings.model_id(self.name))
        return dict(self.sam.record)

    def process(self, shard: ShardInput) -> ShardOutput:
        assert self.sam is not None, "load() first"
        frames = shard.frames  # a stream: tracking starts as frames are decoded
        encoder = MaskEncoder()
        try:
            counts = self._track(frames, shard.labels, encoder)
            rows = encoder.rows()
        finally:
            encoder.close()
        return ShardOutput(rows=rows, metadata={"prompts": "|".join(self.settings.vocabulary)},
                           counts={"frames": len(frames), "masks": len(rows), **counts})

    def _track(self, frames: Sequence[VideoFrame], labels: dict[int, FrameLabel],
               encoder: MaskEncoder) -> dict[str, int]:
        torch = import_torch()
        sam, s = self.sam, self.settings
        assert sam is not None
        height, width = frames[0].image.shape[:2]
        session = sam.new_session(width, height)
        entity_ids: dict[str, int] = {}  # entity id -> tracker object id
        names: dict[int, tuple[str | None, str | None, str]] = {}  # obj -> entity, name, source
        on_screen_before: set[str] = set()
        text_boxes: dict[int, tuple[float, ...]] = {}  # text track -> box before a keyframe
        text_tracks = 0
        for k, frame in enumerate(frames):
            label = labels.get(frame.index)
            visible = {o.id: o for o in (label.objects if label else ())
                       if _valid_box(o, width, height)}
            pixels = sam.pixels(frame.image)
            idx = session.add_new_frame(pixels[0], frame_idx=k)  # explicit: trim() pops
            keyframe = k % s.keyframe_every == 0
            for entity, obj in visible.items():
                if keyframe or entity not in on_screen_before:
                    obj_id = entity_ids.setdefault(entity, len(entity_ids) + 1)
                    names[obj_id] = (entity, obj.name, "box")
                    sam.prompt_box(session, idx, obj_id, obj.box_xyxy, width, height)
            on_screen_before = set(visible)
            if keyframe and s.vocabulary:
                for prompt, box, _score in sam.detect(pixels, s.vocabulary, width, height):
                    known = [o.box_xyxy for o in visible.values()] + list(text_boxes.values())
                    if any(box_iou(box, other) >= s.match_iou for other in known):
                        continue  # the state, or an earlier text track, has this object
                    obj_id = TEXT_TRACK_BASE + text_tracks
                    names[obj_id] = (None, prompt, f"track-{text_tracks:05d}")
                    text_tracks += 1
                    sam.prompt_box(session, idx, obj_id, box, width, height)
            if session.get_obj_num() == 0:
                sam.trim(session, idx)
                continue
            out = sam.tracker(session, frame_idx=idx)
            scores = out.object_score_logits.float().view(-1).sigmoid().tolist()
            keep, meta = [], []
            for row, (obj_id, score) in enumerate(zip(out.object_ids, scores, strict=True)):
                entity, name, source = names[obj_id]
                if score <= 0.5 or (entity is not None and entity not in visible):
                    continue  # the object is gone, or the state says it is off screen
                keep.append(row)
                meta.append({"frame_index": frame.index, "entity_id": entity,
                             "entity_name": name if entity is not None else None,
                             "prompt": name, "track_id": entity or source, "score": score,
                             "source": "box" if entity is not None else "text"})
            if keep:
                logits = out.pred_masks[keep].float()
                masks = torch.nn.functional.interpolate(logits, size=(height, width),
                                                        mode="bilinear",
                                                        align_corners=False)[:, 0] > 0
                if (k + 1) % s.keyframe_every == 0:
                    text_boxes = {obj: box for obj, box, info in zip(
                        [out.object_ids[r] for r in keep], device_boxes(masks), meta,
                        strict=True) if info["entity_id"] is None and box is not None}
                ready = None
                if masks.is_cuda:
                    host = torch.empty(masks.shape, dtype=torch.bool, pin_memory=True)
                    host.copy_(masks, non_blocking=True)
                    ready = torch.cuda.Event()
                    ready.record()
                    masks = host
                encoder.submit(masks.cpu() if ready is None else masks, meta, ready)
            sam.trim(session, idx)
        return {"entities": len(entity_ids), "text_tracks": text_tracks}

    def close(self) -> None:
        self.sam = None
        free_device_memory()
