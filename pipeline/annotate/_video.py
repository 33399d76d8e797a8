"""The video stage (optional): V-JEPA 2 embeddings of sliding clips.

A clip is `clip_frames` consecutive decoded frames starting every `clip_stride` frames;
it belongs to the shard holding its last frame, and the stage asks the engine for the
`clip_frames - 1` frames before each shard, so no clip is lost at shard boundaries. Frames
are prepared on the device as the model's VJEPA2VideoProcessor prepares them: shortest
edge resized to crop * 256 / 224, then a centre crop of crop x crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.annotate._registry import (
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    register_stage,
)
from pipeline.annotate._runtime import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    free_device_memory,
    images_to_tensor,
    import_torch,
    load_pretrained,
    preprocessor_dict,
    resize_normalize,
    run_batched,
    torch_device,
)


@register_stage("video")
class VideoStage:
    """V-JEPA 2 clip embeddings (mean of the encoder's tokens), fp16."""

    name = "video"
    needs_labels = False
    settings_keys = ("clip_frames", "clip_stride", "shard_frames")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.overlap = settings.clip_frames - 1
        self.model: Any = None

    def load(self) -> dict[str, Any]:
        from transformers import AutoModel

        s = self.settings
        model_id = s.model_id(self.name)
        self.model, record = load_pretrained(AutoModel, model_id, dtype=s.dtype, device=s.device,
                                             compile_model=s.compile_models)
        pre = preprocessor_dict(model_id, "video_preprocessor_config.json")
        crop = pre.get("crop_size") or self.model.config.crop_size
        self.crop = int(crop["height"] if isinstance(crop, dict) else crop)
        # VJEPA2VideoProcessor: shortest edge to crop * 256 / 224, then a centre crop
        self.short = int((pre.get("size") or {}).get("shortest_edge", self.crop * 256 // 224))
        self.mean = tuple(pre.get("image_mean", IMAGENET_MEAN))
        self.std = tuple(pre.get("image_std", IMAGENET_STD))
        self.device = torch_device(s.device)
        return {**record, "crop_size": self.crop}

    def _frames(self, images: Sequence[np.ndarray]) -> Any:
        torch = import_torch()
        batch = images_to_tensor(images, self.device)
        height, width = batch.shape[2], batch.shape[3]
        scale = self.short / min(height, width)
        size = (max(self.crop, round(height * scale)), max(self.crop, round(width * scale)))
        batch = torch.nn.functional.interpolate(batch, size=size, mode="bilinear",
                                                align_corners=False, antialias=True)
        top, left = (size[0] - self.crop) // 2, (size[1] - self.crop) // 2
        crop = batch[:, :, top:top + self.crop, left:left + self.crop]
        return resize_normalize(crop, (self.crop, self.crop), self.mean, self.std)

    def _embed(self, clips: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
        import torch

        videos = torch.stack([self._frames(clip) for clip in clips]).to(self.model.dtype)
        hidden = self.model(pixel_values_videos=videos, skip_predictor=True).last_hidden_state
        return list(hidden.float().mean(dim=1).half().cpu().numpy())

    def process(self, shard: ShardInput) -> ShardOutput:
        s = self.settings
        frames = [*shard.overlap, *shard.frames]
        first = shard.shard * s.shard_frames - len(shard.overlap)  # position of frames[0]
        end = shard.shard * s.shard_frames + len(shard.frames)
        starts = [p for p in range(first, end - s.clip_frames + 1)
                  if p % s.clip_stride == 0 and p + s.clip_frames > shard.shard * s.shard_frames]
        clips = [[f.image for f in frames[p - first:p - first + s.clip_frames]] for p in starts]
        embeddings = run_batched(self._embed, clips, s.batch_size)
        spans = [(frames[p - first].index, frames[p - first + s.clip_frames - 1].index)
                 for p in starts]
        tensors = {}
        if starts:
            tensors = {"clip": np.stack(embeddings),
                       "start_frame": np.array([a for a, _ in spans], dtype=np.int64),
                       "end_frame": np.array([b for _, b in spans], dtype=np.int64)}
        return ShardOutput(tensors=tensors,
                           metadata={"clip_frames": str(s.clip_frames),
                                     "clip_stride": str(s.clip_stride)},
                           counts={"frames": len(shard.frames), "clips": len(starts)})

    def close(self) -> None:
        self.model = None
        free_device_memory()
