"""The embed stage: DINOv3 global and dense features per frame.

Frames keep their aspect ratio: each is resized (on the device) so both sides are
multiples of the patch size and the longer side is at most `max_side`. Per frame the CLS
token and the mean of the patch tokens are kept; every `dense_every`-th frame also keeps
its patch grid [h, w, D]. Everything is stored as fp16.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from capture import VideoFrame
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
    load_pretrained,
    patch_multiple_size,
    preprocessor_dict,
    resize_normalize,
    run_batched,
    torch_device,
)


@register_stage("embed")
class EmbedStage:
    """DINOv3 (any `from_pretrained` ViT with CLS + register + patch tokens)."""

    name = "embed"
    needs_labels = False
    overlap = 0
    settings_keys = ("max_side", "dense_every")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.model: Any = None
        self.grid_shape: tuple[int, int] = (0, 0)

    def load(self) -> dict[str, Any]:
        from transformers import AutoModel

        s = self.settings
        model_id = s.model_id(self.name)
        self.model, record = load_pretrained(AutoModel, model_id, dtype=s.dtype, device=s.device,
                                             compile_model=s.compile_models)
        config = self.model.config
        self.patch = int(config.patch_size)
        self.registers = int(getattr(config, "num_register_tokens", 0) or 0)
        pre = preprocessor_dict(model_id)
        self.mean = tuple(pre.get("image_mean", IMAGENET_MEAN))
        self.std = tuple(pre.get("image_std", IMAGENET_STD))
        self.device = torch_device(s.device)
        return {**record, "patch_size": self.patch, "register_tokens": self.registers}

    def _forward(self, frames: list[VideoFrame]) -> list[tuple[Any, Any, Any]]:
        """(cls, mean patch, patch grid or None) per frame; only the grids of dense frames
        leave the device."""
        batch = images_to_tensor([f.image for f in frames], self.device)
        size = patch_multiple_size(batch.shape[2], batch.shape[3], self.patch,
                                   self.settings.max_side)
        pixels = resize_normalize(batch, size, self.mean, self.std).to(self.model.dtype)
        hidden = self.model(pixel_values=pixels).last_hidden_state
        patches = hidden[:, 1 + self.registers:]
        grid = patches.reshape(len(frames), size[0] // self.patch, size[1] // self.patch, -1)
        cls = hidden[:, 0].half().cpu().numpy()
        mean = patches.float().mean(dim=1).half().cpu().numpy()
        dense = [k for k, f in enumerate(frames) if f.index % self.settings.dense_every == 0]
        grids = dict(zip(dense, grid[dense].half().cpu().numpy(), strict=True)) if dense else {}
        self.grid_shape = tuple(grid.shape[1:3])
        return [(cls[k], mean[k], grids.get(k)) for k in range(len(frames))]

    def process(self, shard: ShardInput) -> ShardOutput:
        frames = shard.frames  # a stream: batches start as their frames are decoded
        results = run_batched(self._forward, frames, self.settings.batch_size)
        index = np.array([f.index for f in frames], dtype=np.int64)
        keep = [i for i, r in enumerate(results) if r[2] is not None]
        tensors = {"frame_index": index,
                   "cls": np.stack([r[0] for r in results]),
                   "mean_patch": np.stack([r[1] for r in results])}
        grid_shape = self.grid_shape if results else (0, 0)
        if keep:
            tensors["dense"] = np.stack([results[i][2] for i in keep])
            tensors["dense_frame_index"] = index[keep]
        metadata = {"grid_h": str(grid_shape[0]), "grid_w": str(grid_shape[1]),
                    "patch_size": str(self.patch), "dense_every": str(self.settings.dense_every)}
        return ShardOutput(tensors=tensors, metadata=metadata,
                           counts={"frames": len(frames), "dense_frames": len(keep)})

    def close(self) -> None:
        self.model = None
        free_device_memory()
