"""Builders for the annotation tests: synthetic sessions (real H.264 video, frame table,
labels.parquet, label events) and tiny random-weight models saved with save_pretrained."""

from __future__ import annotations

import json
from collections.abc import Callable
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


def make_session(parent: Path, name: str, frames: int = 12, *, labels: bool = True,
                 label: Callable[[int], dict] | None = None,
                 events: list[dict] | None = None) -> Path:
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
        table = pa.Table.from_pylist([(label or frame_label)(i) for i in range(frames)],
                                     schema=LABEL_SCHEMA)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        writer.write_output("labels.parquet", sink.getvalue().to_pybytes())
        if events is None:
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


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


# The chat template's image and text handling as in Qwen/Qwen3-VL-8B-Instruct's
# chat_template.json: each image item becomes <|vision_start|><|image_pad|><|vision_end|>
# in place, text items are copied, every turn is <|im_start|>role ... <|im_end|>.
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def _sam3_video(path: Path) -> None:
    """facebook/sam3's shape: config.json of model_type `sam3_video` (architectures
    Sam3VideoModel) with `detector_config` (sam3) and `tracker_config` (sam3_tracker_video),
    one safetensors with detector_model.*, tracker_model.*, tracker_neck.* weights,
    processor_config.json (Sam3Processor, image_processor size {height, width}, mean/std
    0.5) and a CLIP tokenizer. Widths are tiny but keep the real ratios the code relies on:
    tracker hidden size a multiple of the 64-channel memory, detector and tracker FPN equal."""
    import transformers as tf

    h = 128
    small = {"hidden_size": h, "num_attention_heads": 2, "intermediate_size": 128}
    backbone = {"model_type": "sam3_vit_model", **small, "num_hidden_layers": 2,
                "image_size": 112, "patch_size": 14, "window_size": 4,
                "global_attn_indexes": [1], "pretrain_image_size": 112}
    detector = {
        "vision_config": {"backbone_config": backbone, "fpn_hidden_size": h},
        "text_config": {**small, "vocab_size": len(CHARS) + 3, "projection_dim": h,
                        "num_hidden_layers": 1, "max_position_embeddings": 32,
                        "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
        "geometry_encoder_config": {**small, "num_layers": 1},
        "detr_encoder_config": {**small, "num_layers": 1},
        "detr_decoder_config": {**small, "num_layers": 1, "num_queries": 8},
        "mask_decoder_config": {"hidden_size": h, "num_attention_heads": 2}}
    tracker = {
        "vision_config": {"backbone_config": backbone, "fpn_hidden_size": h,
                          "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]]},
        "prompt_encoder_config": {"hidden_size": h, "image_size": 112, "patch_size": 14},
        "mask_decoder_config": {"hidden_size": h, "mlp_dim": 128, "num_attention_heads": 2,
                                "iou_head_hidden_dim": h},
        "memory_attention_hidden_size": h, "memory_attention_num_layers": 1,
        "memory_attention_feed_forward_hidden_size": 128, "memory_encoder_hidden_size": h,
        "memory_encoder_output_channels": 64, "mask_downsampler_embed_dim": h,
        "memory_fuser_embed_dim": h, "memory_fuser_intermediate_dim": 128,
        "memory_fuser_num_layers": 1, "image_size": 112, "memory_attention_rope_feat_sizes": [8, 8]}
    model = tf.Sam3VideoModel(tf.Sam3VideoConfig(detector_config=detector,
                                                 tracker_config=tracker))
    # random weights, but the tracker's object-score head leans to "present" so that
    # tracked objects produce masks for the tests to inspect
    model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.data.fill_(5.0)
    model.save_pretrained(path)
    tokenizer, _ = _word_tokenizer(CHARS, ["<pad>", "<|startoftext|>", "<|endoftext|>"],
                                   pad_token="<pad>", bos_token="<|startoftext|>",
                                   eos_token="<|endoftext|>")
    tokenizer.save_pretrained(path)
    _write_json(path / "processor_config.json", {
        "processor_class": "Sam3Processor", "target_size": 112, "point_pad_value": -10,
        "image_processor": {
            "image_processor_type": "Sam3ImageProcessorFast", "processor_class": "Sam3Processor",
            "size": {"height": 112, "width": 112}, "mask_size": {"height": 32, "width": 32},
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_resize": True,
            "do_rescale": True, "do_normalize": True, "do_convert_rgb": True, "resample": 2,
            "rescale_factor": 1 / 255}})


def _qwen3_vl(path: Path) -> None:
    """Qwen/Qwen3-VL-8B-Instruct's shape: Qwen3VLForConditionalGeneration config
    (vision patch 16, spatial merge 2, temporal patch 2, deepstack indexes, interleaved
    M-RoPE with mrope_section), preprocessor_config.json with exactly the hub's keys
    (size {longest_edge, shortest_edge}, patch_size 16, temporal_patch_size 2, merge_size 2,
    mean/std 0.5, processor_class Qwen3VLProcessor, image_processor_type
    Qwen2VLImageProcessorFast), chat_template.json, tokenizer with the Qwen special tokens,
    generation_config.json."""
    import transformers as tf

    tokenizer, vocab = _word_tokenizer(CHARS, QWEN_SPECIALS, eos_token="<|im_end|>",
                                       pad_token="<|endoftext|>",
                                       additional_special_tokens=QWEN_SPECIALS[1:])
    tokenizer.save_pretrained(path)
    _write_json(path / "chat_template.json", {"chat_template": QWEN_CHAT_TEMPLATE})
    _write_json(path / "preprocessor_config.json", {
        "size": {"longest_edge": 128 * 128, "shortest_edge": 32 * 32}, "patch_size": 16,
        "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
        "image_processor_type": "Qwen2VLImageProcessorFast"})
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
    qwen.save_pretrained(path)


def build_tiny_models(root: Path) -> dict[str, str]:
    """Save tiny random-weight folders shaped like the default hub repositories under
    `root` (once) and return their paths by stage."""
    paths = {s: str(root / s) for s in ("embed", "segment", "caption", "video")}
    if (root / "done").exists():
        return paths
    import torch
    import transformers as tf

    torch.manual_seed(0)
    # facebook/dinov3-vit7b16-pretrain-lvd1689m: dinov3_vit, patch 16, 4 register tokens,
    # gated MLP, layerscale, rope_theta 100, pos_embed_rescale 2; preprocessor_config.json
    # with DINOv3ViTImageProcessorFast, ImageNet mean/std, 224x224.
    tf.DINOv3ViTModel(tf.DINOv3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        patch_size=16, num_register_tokens=4, image_size=64, use_gated_mlp=True,
        layerscale_value=1.0, rope_theta=100.0, pos_embed_rescale=2.0
        )).save_pretrained(paths["embed"])
    _write_json(Path(paths["embed"]) / "preprocessor_config.json", {
        "image_processor_type": "DINOv3ViTImageProcessorFast", "do_resize": True,
        "size": {"height": 224, "width": 224}, "do_normalize": True, "do_rescale": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "rescale_factor": 1 / 255, "resample": 2})
    _sam3_video(Path(paths["segment"]))
    _qwen3_vl(Path(paths["caption"]))
    # facebook/vjepa2-vitl-fpc64-256: vjepa2, patch 16, tubelet 2, crop 256 (here 32);
    # video_preprocessor_config.json of VJEPA2VideoProcessor (crop_size, ImageNet mean/std).
    tf.VJEPA2Model(tf.VJEPA2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2.0, crop_size=32,
        frames_per_clip=4, patch_size=16, tubelet_size=2, pred_hidden_size=32,
        pred_num_hidden_layers=1, pred_num_attention_heads=2)).save_pretrained(paths["video"])
    _write_json(Path(paths["video"]) / "video_preprocessor_config.json", {
        "video_processor_type": "VJEPA2VideoProcessor", "crop_size": {"height": 32, "width": 32},
        "size": {"shortest_edge": 36}, "do_center_crop": True, "do_resize": True,
        "do_normalize": True, "do_rescale": True, "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225], "rescale_factor": 1 / 255, "resample": 2})
    (root / "done").write_text("ok")
    return paths
