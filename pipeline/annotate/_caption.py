"""The caption stage: Qwen3-VL captions of frames N-1 and N, checked field by field.

Frames are chosen per merged event and every `caption_every` seconds (`_prompt`). The model
answers a JSON object whose fields are compared with the state (`_consistency`). On a
contradiction or an unusable answer it gets one constrained retry: the answer is started
for it with the state's field values, so it only writes the caption text. If that is
unusable too, the deterministic state caption of `stpe labels` is kept. Each row records
which caption was kept (`model`, `retry` or `state`) and why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from capture import VideoFrame
from pipeline.annotate._consistency import (
    Answer,
    check_answer,
    expected_answer,
    parse_answer,
)
from pipeline.annotate._inputs import FrameLabel, LabelEvent
from pipeline.annotate._prompt import build_prompt, caption_slots, describe_event, prompt_text
from pipeline.annotate._registry import (
    AnnotateSettings,
    ShardInput,
    ShardOutput,
    register_stage,
)
from pipeline.annotate._runtime import free_device_memory, load_pretrained, run_batched

EVENT_GAP = 5  # frames: events closer than this are captioned together


def fit_pixels(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (area filter, aspect kept) so the image has at most `max_pixels` pixels."""
    import cv2

    height, width = image.shape[:2]
    scale = (max_pixels / (height * width)) ** 0.5
    if scale >= 1.0:
        return image
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def retry_prefix(label: FrameLabel, events: Sequence[LabelEvent]) -> str:
    """The start of a constrained answer: the state's field values, then the caption key."""
    fields = json.dumps(expected_answer(label, events))[:-1]
    return fields + ', "caption": "'


def finish_retry(prefix: str, continuation: str) -> Answer | None:
    """The answer of a constrained retry (its caption ends at the first unescaped quote)."""
    end = 0
    while True:
        end = continuation.find('"', end)
        if end < 0:
            return None
        if end == 0 or continuation[end - 1] != "\\":
            break
        end += 1
    return parse_answer(prefix + continuation[:end] + '"}')


def choose(first: Answer | None, label: FrameLabel | None, events: Sequence[LabelEvent],
           retried: Answer | None) -> tuple[str, str, str]:
    """(kept caption, which: model/retry/state, why) from the first answer and the retry."""
    if first is not None:
        verdict = check_answer(first, label, events)
        if verdict.consistent:
            return first.caption, "model", ""
        why = verdict.reason
    else:
        why = "the answer was not the asked JSON object"
    if retried is not None and check_answer(retried, label, events).consistent:
        return retried.caption, "retry", why
    fallback = label.caption if label is not None and label.caption else ""
    return fallback, "state", why + "; the constrained retry was unusable too"


@register_stage("caption")
class CaptionStage:
    """Qwen3-VL (any model with Qwen3-VL's inputs: image processor, chat template)."""

    name = "caption"
    needs_labels = True
    overlap = 1  # frame N-1 of the first frame of a shard
    settings_keys = ("context", "caption_every", "max_pixels", "max_new_tokens")

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self.model: Any = None

    def load(self) -> dict[str, Any]:
        from transformers import AutoModelForImageTextToText

        from pipeline.annotate._qwen import QwenInputs

        s = self.settings
        model_id = s.model_id(self.name)
        self.model, record = load_pretrained(AutoModelForImageTextToText, model_id,
                                             dtype=s.dtype, device=s.device)
        self.inputs = QwenInputs(model_id)
        return {**record, "max_new_tokens": s.max_new_tokens, "do_sample": False}

    def _generate(self, items: Sequence[tuple[list[dict], list[np.ndarray], str]]) -> list[str]:
        from pipeline.annotate._qwen import generate

        batch = self.inputs([m for m, _, _ in items], [i for _, i, _ in items],
                            [p for _, _, p in items])
        return generate(self.model, batch, self.settings.max_new_tokens, self.inputs.tokenizer)

    def process(self, shard: ShardInput) -> ShardOutput:
        s = self.settings
        frames = [*shard.overlap, *shard.frames]
        previous = {f.index: frames[k - 1] for k, f in enumerate(frames) if k > 0}
        previous[frames[0].index] = frames[0]
        def when(frame: VideoFrame) -> float:
            label = shard.labels.get(frame.index)
            return label.t if label is not None else frame.pts_us / 1e6

        times = {f.index: when(f) for f in shard.frames}
        before = when(shard.overlap[-1]) if shard.overlap else None
        clock = {i: label.t for i, label in shard.labels.items()}
        slots = caption_slots(times, shard.events, s.caption_every, EVENT_GAP, before, clock)
        by_index = {f.index: f for f in frames}
        items, labels, slot_events = [], [], []
        for slot in slots:
            i = slot.frame_index
            events = slot.events or tuple(e for e in shard.events
                                          if e.start_frame <= i <= e.end_frame)
            before = previous[i]
            message = build_prompt(s.context, shard.labels.get(before.index),
                                   shard.labels.get(i), events)
            images = [fit_pixels(before.image, s.max_pixels),
                      fit_pixels(by_index[i].image, s.max_pixels)]
            items.append((message, images, ""))
            labels.append(shard.labels.get(i))
            slot_events.append(events)
        raw = run_batched(self._generate, items, s.batch_size)
        first = [parse_answer(text) for text in raw]
        retry = [k for k, (answer, label) in enumerate(zip(first, labels, strict=True))
                 if label is not None and label.has_state and (
                     answer is None or not check_answer(answer, label, slot_events[k]).consistent)]
        prefixes = {k: retry_prefix(labels[k], slot_events[k]) for k in retry}
        again = run_batched(self._generate, [(items[k][0], items[k][1], prefixes[k])
                                              for k in retry], s.batch_size)
        retried = {k: finish_retry(prefixes[k], text) for k, text in zip(retry, again,
                                                                          strict=True)}
        rows = []
        for k, slot in enumerate(slots):
            label = labels[k]
            caption, kept, why = choose(first[k], label, slot_events[k], retried.get(k))
            rows.append({"frame_index": slot.frame_index, "previous_frame": previous[
                             slot.frame_index].index, "t": times[slot.frame_index],
                         "prompt": prompt_text(items[k][0]), "answer": raw[k],
                         "caption": caption, "kept": kept, "why": why,
                         "state_caption": label.caption if label is not None else "",
                         "events": [describe_event(e) for e in slot_events[k]]})
        counts = {"frames": len(shard.frames), "captions": len(rows),
                  "flagged": sum(r["kept"] != "model" for r in rows),
                  "kept_retry": sum(r["kept"] == "retry" for r in rows),
                  "kept_state": sum(r["kept"] == "state" for r in rows)}
        return ShardOutput(rows=rows, counts=counts)

    def close(self) -> None:
        self.model = None
        free_device_memory()
