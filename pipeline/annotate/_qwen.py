"""Qwen3-VL inputs built the way its processor builds them, and greedy generation.

Text comes from the repository's chat template; each `<|image_pad|>` is expanded to the
image's merged patch count (t * h * w / merge^2, as Qwen3VLProcessor does) and
`mm_token_type_ids` marks image tokens with 1, so the model computes its 3-D (time, row,
column) rotary positions. The processor class itself is not used because its video half
needs torchvision; the image processor, tokenizer and template are the repository's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline._errors import PipelineError
from pipeline.annotate._runtime import preprocessor_dict, repo_file

IMAGE_TOKEN = "<|image_pad|>"


def _chat_template(model_id: str, tokenizer: Any) -> str:
    """The processor's chat template (chat_template.jinja / .json), else the tokenizer's."""
    jinja = repo_file(model_id, "chat_template.jinja")
    if jinja is not None:
        return jinja.read_text()
    template = preprocessor_dict(model_id, "chat_template.json").get("chat_template")
    template = template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise PipelineError(f"{model_id} ships no chat template; use a Qwen3-VL instruct model")
    return template


class QwenInputs:
    """Builds batched Qwen3-VL inputs from chat messages and their images."""

    def __init__(self, model_id: str) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left")
        self.images = AutoImageProcessor.from_pretrained(model_id)
        self.template = _chat_template(model_id, self.tokenizer)
        self.merge = int(getattr(self.images, "merge_size", 2))
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)

    def __call__(self, messages: Sequence[list[dict]], images: Sequence[Sequence[np.ndarray]],
                 prefixes: Sequence[str] = ()) -> dict[str, Any]:
        """Tensors for `generate`: input_ids, attention_mask, mm_token_type_ids,
        pixel_values, image_grid_thw. `prefixes` start each answer (constrained decoding)."""
        flat = [image for group in images for image in group]
        vision = self.images(images=flat, return_tensors="pt")
        counts = iter((vision["image_grid_thw"].prod(-1) // self.merge ** 2).tolist())
        texts = []
        for i, message in enumerate(messages):
            text = self.tokenizer.apply_chat_template(message, chat_template=self.template,
                                                      add_generation_prompt=True,
                                                      tokenize=False)
            parts = text.split(IMAGE_TOKEN)
            if len(parts) - 1 != len(images[i]):
                raise PipelineError(f"prompt {i} has {len(parts) - 1} image slots for "
                                    f"{len(images[i])} images")
            text = parts[0] + "".join(IMAGE_TOKEN * next(counts) + p for p in parts[1:])
            texts.append(text + (prefixes[i] if prefixes else ""))
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True)
        encoded["mm_token_type_ids"] = (encoded["input_ids"] == self.image_token_id).int()
        return {**encoded, **vision}


def generate(model: Any, inputs: dict[str, Any], max_new_tokens: int,
             tokenizer: Any) -> list[str]:
    """Greedy decoding; the new text of each row."""
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id)
    new = out[:, inputs["input_ids"].shape[1]:]
    return [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
