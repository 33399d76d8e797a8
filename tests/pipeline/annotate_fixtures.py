"""Builders for the annotation tests: synthetic sessions (real H.264 video, frame table,
labels.parquet, label events) and tiny random-weight models saved with save_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from capture import FrameRecord, SessionWriter
from capture._video import VideoWriter

WIDTH, HEIGHT = 96, 64
CHARACTER_SIZE = 16
OBJECT_TYPE = pa.struct([("id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
                         ("box_xyxy", pa.list_(pa.float64(), 4)), ("on_screen", pa.bool_())])
LABEL_SCHEMA = pa.schema([
    ("frame_index", pa.int64()), ("t", pa.float64()), ("objects", pa.list_(OBJECT_TYPE)),
    ("humanoid_state", pa.string()), ("grounded", pa.bool_()), ("speed", pa.float64()),
    ("move_dir_cam", pa.string()), ("keys", pa.list_(pa.string())), ("caption", pa.string())])


def character_box(index: int) -> tuple[float, float, float, float]:
    """The character (a red square) moves right 3 px per frame."""
    x0 = 4.0 + 3.0 * index
    return (x0, 24.0, x0 + CHARACTER_SIZE, 24.0 + CHARACTER_SIZE)


def frame_image(index: int) -> np.ndarray:
    image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    image[48:, :] = (60, 120, 60)  # ground
    x0, y0, x1, y1 = (int(v) for v in character_box(index))
    image[y0:y1, x0:x1] = (220, 30, 30)
    image[8:20, 70:86] = (200, 180, 40)  # a crate that never moves
    return image


def frame_label(index: int) -> dict:
    airborne = 5 <= index <= 7
    return {
        "frame_index": index, "t": index / 30.0,
        "objects": [
            {"id": "char", "name": "Player", "kind": "character",
             "box_xyxy": list(character_box(index)), "on_screen": True},
            {"id": "e1", "name": "Crate", "kind": "entity", "box_xyxy": [70.0, 8.0, 86.0, 20.0],
             "on_screen": True}],
        "humanoid_state": "Freefall" if airborne else "Running", "grounded": not airborne,
        "speed": 12.0, "move_dir_cam": "right", "keys": ["D"],
        "caption": f"The character runs right (frame {index}).",
    }


def make_session(parent: Path, name: str, frames: int = 12, *, labels: bool = True) -> Path:
    """A complete session: frames.jsonl, video.mkv (H.264, pts in microseconds) and, unless
    `labels` is False, labels.parquet and label_events.jsonl."""
    import pyarrow.parquet as pq

    writer = SessionWriter.create(parent, name)
    pts = [i * 33_000 for i in range(frames)]  # whole ms: Matroska stores ms timestamps
    writer.append_frames(
        FrameRecord(index=i, pts_us=p, grab_start_ns=10**9 + p * 1000,
                    grab_end_ns=10**9 + p * 1000 + 500, wall_ns=1_700_000_000 * 10**9 + p * 1000
                    ).model_dump() for i, p in enumerate(pts))
    with VideoWriter(writer.path / "video.mkv", WIDTH, HEIGHT, fps_hint=30, crf=10) as video:
        for i, p in enumerate(pts):
            video.write(frame_image(i), p)
    if labels:
        table = pa.Table.from_pylist([frame_label(i) for i in range(frames)], schema=LABEL_SCHEMA)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        writer.write_output("labels.parquet", sink.getvalue().to_pybytes())
        events = [{"kind": "jump", "start_frame": 5, "end_frame": 7},
                  {"kind": "land", "start_frame": 8, "end_frame": 8}]
        writer.write_output("label_events.jsonl",
                            b"".join(json.dumps(e).encode() + b"\n" for e in events))
    writer.finalize()
    return writer.path


def _word_tokenizer(words: list[str], specials: list[str], **kwargs: str):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*specials, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=specials[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs), vocab


CHARS = [chr(c) for c in range(32, 127)] + ["\n"]


def build_tiny_models(root: Path) -> dict[str, str]:
    """Save tiny random-weight DINOv3, SAM 3, Qwen3-VL and V-JEPA 2 folders under `root`
    (once per folder) and return their paths by stage."""
    paths = {s: str(root / s) for s in ("embed", "segment", "caption", "video")}
    if (root / "done").exists():
        return paths
    import torch
    import transformers as tf
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    torch.manual_seed(0)
    tf.DINOv3ViTModel(tf.DINOv3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        patch_size=16, num_register_tokens=4, image_size=64)).save_pretrained(paths["embed"])

    h = 32
    small = {"hidden_size": h, "num_attention_heads": 2, "intermediate_size": 64}
    sam = tf.Sam3Model(tf.Sam3Config(
        vision_config={"backbone_config": {
            "model_type": "sam3_vit_model", **small, "num_hidden_layers": 2, "image_size": 112,
            "patch_size": 14, "window_size": 4, "global_attn_indexes": [1],
            "pretrain_image_size": 112}, "fpn_hidden_size": h},
        text_config={**small, "vocab_size": 200, "projection_dim": h, "num_hidden_layers": 1,
                     "max_position_embeddings": 16, "pad_token_id": 0, "bos_token_id": 1,
                     "eos_token_id": 2},
        geometry_encoder_config={**small, "num_layers": 1},
        detr_encoder_config={**small, "num_layers": 1},
        detr_decoder_config={**small, "num_layers": 1, "num_queries": 8},
        mask_decoder_config={"hidden_size": h, "num_attention_heads": 2}))
    sam.save_pretrained(paths["segment"])
    sam_tokenizer, _ = _word_tokenizer(CHARS, ["<pad>", "<|startoftext|>", "<|endoftext|>"],
                                       pad_token="<pad>", bos_token="<|startoftext|>",
                                       eos_token="<|endoftext|>")
    sam_tokenizer.save_pretrained(paths["segment"])

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    qwen_tokenizer, vocab = _word_tokenizer(CHARS, specials, eos_token="<|im_end|>",
                                            pad_token="<|endoftext|>",
                                            additional_special_tokens=specials[1:])
    qwen_tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
        "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    qwen_tokenizer.save_pretrained(paths["caption"])
    Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2,
                             size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64},
                             image_mean=[0.5] * 3, image_std=[0.5] * 3
                             ).save_pretrained(paths["caption"])
    qwen = tf.Qwen3VLForConditionalGeneration(tf.Qwen3VLConfig(
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "out_hidden_size": 64, "num_position_embeddings": 64,
                       "deepstack_visual_indexes": [1]},
        text_config={"vocab_size": len(vocab), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "head_dim": 16, "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [4, 2, 2],
                                         "mrope_interleaved": True}},
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"]))
    qwen.generation_config.eos_token_id = vocab["<|im_end|>"]
    qwen.generation_config.pad_token_id = vocab["<|endoftext|>"]
    qwen.save_pretrained(paths["caption"])

    tf.VJEPA2Model(tf.VJEPA2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2.0, crop_size=32,
        frames_per_clip=4, patch_size=16, tubelet_size=2, pred_hidden_size=32,
        pred_num_hidden_layers=1, pred_num_attention_heads=2)).save_pretrained(paths["video"])
    (root / "done").write_text("ok")
    return paths
