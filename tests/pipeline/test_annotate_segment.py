"""The segment stage on a SAM 3 folder shaped like facebook/sam3 (`sam3_video`): explicit
detector and tracker loading, box prompts of the true entities, ids by construction,
bounded mask encoding."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.annotate import AnnotateSettings, MaskEncoder, annotate, rle_decode
from pipeline.annotate._masks import mask_rows
from tests.pipeline.annotate_fixtures import (
    HEIGHT,
    WIDTH,
    frame_label,
    make_session,
)

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def settings(models: dict[str, str], **changes) -> AnnotateSettings:
    base = {"models": models, "shard_frames": 8, "prefetch": 4, "score_threshold": 0.0,
            "vocabulary": ("tree",), "keyframe_every": 4}
    return AnnotateSettings(**{**base, **changes})


def test_sam3_video_folder_mirrors_the_hub_and_auto_builds_the_video_model(tiny_models):
    from transformers import AutoModel

    folder = Path(tiny_models["segment"])
    config = json.loads((folder / "config.json").read_text())
    # facebook/sam3's config.json: a sam3_video model with a detector and a tracker config
    assert config["model_type"] == "sam3_video"
    assert config["architectures"] == ["Sam3VideoModel"]
    assert config["detector_config"]["model_type"] == "sam3"
    assert config["tracker_config"]["model_type"] == "sam3_tracker_video"
    processor = json.loads((folder / "processor_config.json").read_text())
    assert processor["processor_class"] == "Sam3Processor"
    assert set(processor["image_processor"]["size"]) == {"height", "width"}
    # the trap the stage must avoid: AutoModel on this folder is the video model, which has
    # no `vision_config` of its own
    auto = AutoModel.from_pretrained(folder)
    assert type(auto).__name__ == "Sam3VideoModel"
    assert not hasattr(auto.config, "vision_config")


def test_true_entities_are_tracked_from_box_prompts_with_their_ids(tmp_path, tiny_models):
    def label(index: int) -> dict:
        row = frame_label(index)
        if 3 <= index <= 5:  # the crate leaves the screen for three frames
            row["objects"][1] = {**row["objects"][1], "on_screen": False}
        return row

    session = make_session(tmp_path, "s1", frames=12, label=label)
    [report] = annotate([session], ["segment"], settings(tiny_models))
    folder = session / "annotations" / "segment"
    sidecar = json.loads((folder / "shard-00000.json").read_text())
    assert sidecar["model"]["model_class"] == "Sam3Model"
    assert sidecar["model"]["tracker_class"] == "Sam3TrackerVideoModel"
    rows = [r for n in (0, 1) for r in pq.read_table(folder / f"shard-0000{n}.parquet").to_pylist()]
    boxed = [r for r in rows if r["source"] == "box"]
    texted = [r for r in rows if r["source"] == "text"]
    # ids by construction: box-prompted objects carry the entity's id and name, text
    # detections never carry an entity id, whatever their masks overlap
    assert {(r["entity_id"], r["entity_name"]) for r in boxed} == {("char", "Player"),
                                                                   ("e1", "Crate")}
    assert all(r["track_id"] == r["entity_id"] for r in boxed)
    assert all(r["entity_id"] is None and r["prompt"] == "tree"
               and r["track_id"].startswith("track-") for r in texted)
    frames_of = {e: sorted(r["frame_index"] for r in boxed if r["entity_id"] == e)
                 for e in ("char", "e1")}
    assert frames_of["char"] == list(range(12))
    assert frames_of["e1"] == [0, 1, 2, 6, 7, 8, 9, 10, 11]  # not while off screen
    assert all(0.5 < r["score"] <= 1.0 for r in rows)
    for row in rows[:5]:
        mask = rle_decode({"size": row["mask_size"], "counts": row["mask_counts"]})
        assert mask.shape == (HEIGHT, WIDTH) and int(mask.sum()) == row["area"]
    assert report.summary["entities"] == 4  # two entities in each of two shards
    assert report.summary["masks"] == len(rows)


def test_box_prompt_is_scaled_to_the_model_input(tiny_models) -> None:
    from pipeline.annotate._segment import Sam3Segmenter

    sam = Sam3Segmenter(AnnotateSettings(), tiny_models["segment"])
    assert sam.size == (112, 112)
    assert sam.tracker.vision_encoder.backbone is sam.detector.vision_encoder.backbone
    session = sam.new_session(WIDTH, HEIGHT)
    session.add_new_frame(torch.zeros(3, 112, 112))
    sam.prompt_box(session, 0, 7, (4.0, 24.0, 20.0, 40.0), WIDTH, HEIGHT)
    stored = session.point_inputs_per_obj[session.obj_id_to_idx(7)][0]
    # corners in model-input pixels (x * 112 / 96, y * 112 / 64), labels 2 and 3 as
    # Sam3TrackerVideoProcessor encodes a box
    np.testing.assert_allclose(stored["point_coords"].numpy(),
                               [[[[4 * 112 / 96, 24 * 112 / 64], [20 * 112 / 96, 40 * 112 / 64]]]])
    assert stored["point_labels"].tolist() == [[[2, 3]]]


def test_mask_encoder_bounds_the_masks_waiting() -> None:
    gate = threading.Event()

    def slow(masks, meta):
        gate.wait(5)
        return mask_rows(masks, meta)

    encoder = MaskEncoder(max_pending=2, encode=slow)
    mask = np.zeros((1, 4, 6), bool)
    mask[0, 1:3, 2:5] = True
    encoder.submit(mask, [{"frame_index": 0}])
    encoder.submit(mask, [{"frame_index": 1}])
    third = threading.Thread(target=encoder.submit, args=(mask, [{"frame_index": 2}]))
    third.start()
    time.sleep(0.3)
    assert third.is_alive()  # a third frame waits until one is encoded
    gate.set()
    third.join(5)
    rows = encoder.rows()
    encoder.close()
    assert [r["frame_index"] for r in rows] == [0, 1, 2]
    assert rows[0]["mask_box_xyxy"] == [2.0, 1.0, 5.0, 3.0] and rows[0]["area"] == 6


def test_tracker_state_is_trimmed_to_its_memory_window(tiny_models) -> None:
    from pipeline.annotate._segment import Sam3Segmenter

    sam = Sam3Segmenter(AnnotateSettings(), tiny_models["segment"])
    window = max(sam.tracker.config.num_maskmem,
                 sam.tracker.config.max_object_pointers_in_encoder) + 1
    session = sam.new_session(WIDTH, HEIGHT)
    frames = window + 6
    for k in range(frames):
        idx = session.add_new_frame(torch.rand(3, 112, 112), frame_idx=k)
        assert idx == k
        if k == 0:
            sam.prompt_box(session, idx, 1, (4.0, 24.0, 20.0, 40.0), WIDTH, HEIGHT)
        out = sam.tracker(session, frame_idx=idx)
        sam.trim(session, idx)
    assert out.pred_masks.shape[0] == 1  # still tracking after the trims, with finite
    assert torch.isfinite(out.object_score_logits).all()  # scores (frames still counted)
    assert all(p.numel() == 0 for p in session.processed_frames.values())  # no pixels kept
    kept = session.output_dict_per_obj[0]["non_cond_frame_outputs"]
    assert min(kept) >= frames - 1 - window and len(kept) <= window + 1
    assert list(session.output_dict_per_obj[0]["cond_frame_outputs"]) == [0]
