"""The segment stage: SAM 3 text-prompted instance masks, anchored to the true entities.

Prompts are the configured vocabulary plus the names of the objects the labels put on
screen in the shard. Each frame's vision features are computed once and reused for every
prompt. Masks are stored as COCO RLE with their box and score; each is assigned to a true
entity by IoU with the entity's projected box, and the rest are linked across frames.

Two backends behind one interface: transformers' `Sam3Model` (default) and the `sam3`
package (`--segment-backend sam3`, installed with the `gpu` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline._errors import MissingExtraError
from pipeline.annotate._associate import TrackLinker, appearance, associate
from pipeline.annotate._registry import (
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    register_stage,
)
from pipeline.annotate._rle import mask_box, rle_encode
from pipeline.annotate._runtime import (
    free_device_memory,
    images_to_tensor,
    import_torch,
    load_pretrained,
    preprocessor_dict,
    resize_normalize,
    run_batched,
    torch_device,
)


@dataclass(frozen=True)
class Detection:
    """One instance: full-resolution boolean mask, [x0, y0, x1, y1] box, score."""

    prompt: str
    mask: np.ndarray
    box: tuple[float, float, float, float]
    score: float


class TransformersSam3:
    """SAM 3 through transformers (Sam3Model + its CLIP tokenizer); pre- and
    post-processing run as torch ops on the model's device."""

    def __init__(self, settings: AnnotateSettings, model_id: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.settings = settings
        self.model, self.record = load_pretrained(AutoModel, model_id, dtype=settings.dtype,
                                                  device=settings.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_id)
        self.device = torch_device(settings.device)
        pre = preprocessor_dict(model_id)
        side = int(self.model.config.vision_config.backbone_config.image_size)
        size = pre.get("size") or {}
        self.size = (int(size.get("height", side)), int(size.get("width", side)))
        self.mean = tuple(pre.get("image_mean", (0.5, 0.5, 0.5)))
        self.std = tuple(pre.get("image_std", (0.5, 0.5, 0.5)))
        self.text_length = int(self.model.config.text_config.max_position_embeddings)

    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[list[Detection]]:
        torch = import_torch()
        s = self.settings
        batch = images_to_tensor(images, self.device)
        height, width = batch.shape[2], batch.shape[3]
        pixels = resize_normalize(batch, self.size, self.mean, self.std).to(self.model.dtype)
        vision = self.model.get_vision_features(pixel_values=pixels)
        text = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                              max_length=self.text_length, return_tensors="pt").to(self.device)
        found: list[list[Detection]] = [[] for _ in images]
        scale = torch.tensor([width, height, width, height], device=self.device)
        for p, prompt in enumerate(prompts):
            out = self.model(vision_embeds=vision,
                             input_ids=text["input_ids"][p:p + 1].expand(len(images), -1),
                             attention_mask=text["attention_mask"][p:p + 1].expand(len(images), -1))
            scores = out.pred_logits.float().sigmoid()
            if out.presence_logits is not None:
                scores = scores * out.presence_logits.float().sigmoid()
            for b in range(len(images)):
                keep = scores[b] > s.score_threshold
                if not bool(keep.any()):
                    continue
                logits = out.pred_masks[b][keep].float()[None]
                masks = torch.nn.functional.interpolate(logits, size=(height, width),
                                                        mode="bilinear", align_corners=False)[0]
                masks = (masks.sigmoid() > s.mask_threshold).cpu().numpy()
                boxes = (out.pred_boxes[b][keep].float() * scale).cpu().tolist()
                for mask, box, score in zip(masks, boxes, scores[b][keep].cpu().tolist(),
                                            strict=True):
                    found[b].append(Detection(prompt, mask, tuple(box), float(score)))
        return found


class PackageSam3:
    """SAM 3 through the `sam3` package (its own image model and processor)."""

    def __init__(self, settings: AnnotateSettings, model_id: str) -> None:
        try:
            from sam3.model.sam3_image_processor import Sam3Processor
            from sam3.model_builder import build_sam3_image_model
        except ImportError:
            raise MissingExtraError("sam3", "gpu") from None
        self.settings = settings
        model = build_sam3_image_model(device=settings.device)
        self.processor = Sam3Processor(model, confidence_threshold=settings.score_threshold)
        self.record = {"model_id": model_id, "model_class": "sam3.Sam3Image",
                       "revision": None, "dtype": settings.dtype, "backend": "sam3"}

    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[list[Detection]]:
        from PIL import Image

        found: list[list[Detection]] = []
        for image in images:
            state = self.processor.set_image(Image.fromarray(image))
            detections = []
            for prompt in prompts:
                out = self.processor.set_text_prompt(state=state, prompt=prompt)
                for mask, box, score in zip(out["masks"], out["boxes"], out["scores"],
                                            strict=True):
                    detections.append(Detection(
                        prompt, np.asarray(mask.squeeze().cpu()) > 0,
                        tuple(float(v) for v in box.tolist()), float(score)))
            found.append(detections)
        return found


@register_stage("segment")
class SegmentStage:
    """SAM 3 masks per frame with true-entity association and track linking."""

    name = "segment"
    needs_labels = True
    overlap = 0
    settings_keys = ("segment_backend", "vocabulary", "score_threshold", "mask_threshold",
                     "match_iou")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.backend: Any = None
        self.linker = TrackLinker()

    def load(self) -> dict[str, Any]:
        backend = PackageSam3 if self.settings.segment_backend == "sam3" else TransformersSam3
        self.backend = backend(self.settings, self.settings.model_id(self.name))
        return dict(self.backend.record)

    def prompts(self, shard: ShardInput) -> list[str]:
        """The vocabulary plus the on-screen true object names of the shard, deduplicated."""
        names = [o.name for f in shard.frames
                 for o in (shard.labels[f.index].objects if f.index in shard.labels else ())
                 if o.on_screen]
        return list(dict.fromkeys([*self.settings.vocabulary, *names]))

    def process(self, shard: ShardInput) -> ShardOutput:
        frames = list(shard.frames)
        prompts = self.prompts(shard)
        detections = run_batched(lambda fs: self.backend.detect([f.image for f in fs], prompts),
                                 frames, self.settings.batch_size)
        rows = []
        for frame, found in zip(frames, detections, strict=True):
            label = shard.labels.get(frame.index)
            boxes = [mask_box(d.mask) for d in found]
            matches = associate(boxes, label.objects if label else (), self.settings.match_iou)
            loose = [i for i, m in enumerate(matches) if m.entity_id is None]
            track_ids = self.linker.link([found[i].prompt for i in loose],
                                         [boxes[i] for i in loose],
                                         [appearance(frame.image, found[i].mask) for i in loose])
            tracks = dict(zip(loose, track_ids, strict=True))
            for i, (det, match) in enumerate(zip(found, matches, strict=True)):
                rle = rle_encode(det.mask)
                rows.append({
                    "frame_index": frame.index, "prompt": det.prompt, "score": det.score,
                    "box_xyxy": list(det.box), "mask_box_xyxy": list(boxes[i]),
                    "mask_size": rle["size"], "mask_counts": rle["counts"],
                    "area": int(det.mask.sum()), "entity_id": match.entity_id,
                    "entity_name": match.entity_name, "entity_iou": match.iou,
                    "track_id": match.entity_id or tracks[i]})
        anchored = sum(1 for r in rows if r["entity_id"] is not None)
        return ShardOutput(rows=rows, metadata={"prompts": "|".join(prompts)},
                           counts={"frames": len(frames), "masks": len(rows),
                                   "anchored": anchored})

    def close(self) -> None:
        self.backend = None
        free_device_memory()
