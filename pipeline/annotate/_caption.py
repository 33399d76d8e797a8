"""The caption stage: Qwen3-VL captions conditioned on the true state, then checked.

A frame is captioned every `caption_every` frames and at the first and last frame of every
event. Its prompt carries the optional human context, the exact state of frames N-1 and N,
the events around N and the camera-relative motion. Decoding is greedy with a fixed token
budget, so a caption is a function of (model, image, prompt). Every caption goes through
`check_caption` and the verdict is stored beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.annotate._consistency import check_caption
from pipeline.annotate._inputs import FrameLabel, LabelEvent
from pipeline.annotate._registry import (
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    register_stage,
)
from pipeline.annotate._runtime import free_device_memory, load_pretrained, run_batched

IMAGE_TOKEN = "<|image_pad|>"
INSTRUCTION = ("Describe in one or two sentences what the player character does in this "
               "frame. Use the true state above; do not contradict it.")


def describe_state(label: FrameLabel) -> str:
    """One line of a frame's exact state."""
    on_screen = ", ".join(o.name for o in label.objects if o.on_screen) or "nothing tracked"
    keys = ", ".join(label.keys) or "none"
    return (f"frame {label.frame_index} (t={label.t:.3f} s): humanoid {label.humanoid_state}, "
            f"{'grounded' if label.grounded else 'in the air'}, speed {label.speed:.1f} "
            f"studs/s, moving {label.move_dir_cam} relative to the camera, keys held: {keys}; "
            f"on screen: {on_screen}")


def build_prompt(context: str, previous: FrameLabel | None, current: FrameLabel,
                 events: Sequence[LabelEvent]) -> str:
    """The text of a caption prompt (the image comes before it in the chat message)."""
    lines = [f"Context: {context}"] if context else []
    lines.append("True game state from the engine (exact):")
    if previous is not None:
        lines.append(f"- previous {describe_state(previous)}")
    lines.append(f"- current {describe_state(current)}")
    near = [e for e in events if e.start_frame <= current.frame_index <= e.end_frame]
    if near:
        lines.append("Events: " + "; ".join(f"{e.kind} (frames {e.start_frame}-{e.end_frame})"
                                            for e in near))
    lines.append(f"Camera-relative motion: {current.move_dir_cam} at {current.speed:.1f} "
                 "studs/s.")
    lines.append(INSTRUCTION)
    return "\n".join(lines)


def caption_frames(indices: Sequence[int], every: int, events: Sequence[LabelEvent]) -> list[int]:
    """Which of `indices` get a caption: every `every`-th frame and each event's ends."""
    marks = {e.start_frame for e in events} | {e.end_frame for e in events}
    return [i for i in indices if i % every == 0 or i in marks]


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (area filter, aspect kept) so the image has at most `max_pixels` pixels."""
    import cv2

    height, width = image.shape[:2]
    scale = (max_pixels / (height * width)) ** 0.5
    if scale >= 1.0:
        return image
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@register_stage("caption")
class CaptionStage:
    """Qwen3-VL (any image-text-to-text model with a Qwen2-VL style image processor)."""

    name = "caption"
    needs_labels = True
    overlap = 0
    settings_keys = ("context", "caption_every", "max_pixels", "max_new_tokens")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.model: Any = None

    def load(self) -> dict[str, Any]:
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        s = self.settings
        model_id = s.model_id(self.name)
        self.model, record = load_pretrained(AutoModelForImageTextToText, model_id,
                                             dtype=s.dtype, device=s.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left")
        self.images = AutoImageProcessor.from_pretrained(model_id)
        self.merge = int(getattr(self.images, "merge_size", 2))
        return {**record, "max_new_tokens": s.max_new_tokens, "do_sample": False}

    def _generate(self, items: Sequence[tuple[np.ndarray, str]]) -> list[str]:
        vision = self.images(images=[image for image, _ in items], return_tensors="pt")
        texts = []
        for (_, prompt), grid in zip(items, vision["image_grid_thw"], strict=True):
            message = [{"role": "user", "content": [{"type": "image"},
                                                    {"type": "text", "text": prompt}]}]
            text = self.tokenizer.apply_chat_template(message, add_generation_prompt=True,
                                                      tokenize=False)
            texts.append(text.replace(IMAGE_TOKEN, IMAGE_TOKEN * (int(grid.prod())
                                                                  // self.merge ** 2)))
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True)
        inputs = {**inputs, **vision}
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, do_sample=False,
                                  max_new_tokens=self.settings.max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def process(self, shard: ShardInput) -> ShardOutput:
        s = self.settings
        by_index = {f.index: f for f in shard.frames}
        chosen = [i for i in caption_frames(list(by_index), s.caption_every, shard.events)
                  if i in shard.labels]
        prompts = [build_prompt(s.context, shard.labels.get(i - 1), shard.labels[i],
                                shard.events) for i in chosen]
        images = [fit_pixels(by_index[i].image, s.max_pixels) for i in chosen]
        captions = run_batched(self._generate, list(zip(images, prompts, strict=True)),
                               s.batch_size)
        rows = []
        for i, prompt, caption in zip(chosen, prompts, captions, strict=True):
            label = shard.labels[i]
            verdict = check_caption(caption, label)
            rows.append({"frame_index": i, "t": label.t, "prompt": prompt, "caption": caption,
                         "state_caption": label.caption, "consistent": verdict.consistent,
                         "consistency": verdict.reason,
                         "events": [e.kind for e in shard.events
                                    if e.start_frame <= i <= e.end_frame]})
        flagged = sum(1 for r in rows if not r["consistent"])
        return ShardOutput(rows=rows, counts={"frames": len(by_index), "captions": len(rows),
                                              "flagged": flagged})

    def close(self) -> None:
        self.model = None
        free_device_memory()
