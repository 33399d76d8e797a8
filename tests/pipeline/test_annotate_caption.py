"""The caption stage on a Qwen3-VL folder shaped like Qwen/Qwen3-VL-8B-Instruct: inputs as
its processor builds them (two images, 3-D positions), prompts, caption slots, and rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.annotate import (
    AnnotateSettings,
    LabelEvent,
    annotate,
    build_prompt,
    caption_slots,
    describe_event,
    describe_state,
    merge_events,
)
from pipeline.annotate._inputs import _frame_label
from tests.pipeline.annotate_fixtures import frame_label, make_session

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def test_fixture_mirrors_the_hub_files(tiny_models) -> None:
    folder = Path(tiny_models["caption"])
    # the key set of Qwen/Qwen3-VL-8B-Instruct's preprocessor_config.json
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    assert set(pre) == {"size", "patch_size", "temporal_patch_size", "merge_size",
                        "image_mean", "image_std", "processor_class", "image_processor_type"}
    assert (pre["patch_size"], pre["merge_size"], pre["temporal_patch_size"]) == (16, 2, 2)
    assert set(pre["size"]) == {"longest_edge", "shortest_edge"}
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    assert config["architectures"] == ["Qwen3VLForConditionalGeneration"]
    assert config["text_config"]["rope_parameters"]["mrope_interleaved"] is True
    assert "chat_template" in json.loads((folder / "chat_template.json").read_text())


def oracle_positions(types: list[int], grids: list[tuple[int, int, int]], merge: int
                     ) -> np.ndarray:
    """Qwen3-VL's 3-D positions, from its description: text tokens count up on all three
    axes; an image of t x h x w merged cells starts at the next position p and gives cell
    (r, c) the position (p, p + r, p + c); text after it resumes at p + max(h, w)."""
    out, pos, k, grid_iter = [], 0, 0, iter(grids)
    while k < len(types):
        if types[k] == 0:
            out.append((pos, pos, pos))
            pos, k = pos + 1, k + 1
            continue
        t, h, w = next(grid_iter)
        h, w = h // merge, w // merge
        for _ in range(t):
            for r in range(h):
                for c in range(w):
                    out.append((pos, pos + r, pos + c))
        k += t * h * w
        pos += max(h, w)
    return np.array(out).T


def test_language_model_gets_the_3d_positions_of_two_images(tiny_models) -> None:
    from transformers import AutoModelForImageTextToText

    from pipeline.annotate._qwen import QwenInputs

    model = AutoModelForImageTextToText.from_pretrained(tiny_models["caption"]).eval()
    inputs = QwenInputs(tiny_models["caption"])
    previous, current = _frame_label(frame_label(4)), _frame_label(frame_label(5))
    message = build_prompt("", previous, current, [])
    images = [np.full((64, 96, 3), 30, np.uint8), np.full((64, 96, 3), 200, np.uint8)]
    batch = inputs([message], [images])
    assert batch["image_grid_thw"].tolist() == [[1, 4, 6], [1, 4, 6]]
    image_id = model.config.image_token_id
    assert int((batch["input_ids"] == image_id).sum()) == 2 * 6  # 4 x 6 patches / 2^2 each
    seen = {}

    def grab(_module, _args, kwargs):
        seen["position_ids"] = kwargs["position_ids"]

    hook = model.model.language_model.register_forward_pre_hook(grab, with_kwargs=True)
    with torch.no_grad():
        model(**batch)
    hook.remove()
    positions = seen["position_ids"]
    got = positions[-3:, 0].numpy() if positions.shape[0] == 4 else positions[:, 0].numpy()
    types = batch["mm_token_type_ids"][0].tolist()
    want = oracle_positions(types, [(1, 4, 6), (1, 4, 6)], merge=2)
    np.testing.assert_array_equal(got, want)
    assert got[0, -1] == len(types) - 1 - 2 * (6 - 3)  # each image spans 3 positions, not 6


def test_state_free_prompt_and_event_details() -> None:
    missing = _frame_label({**frame_label(3), "humanoid_state": None})
    assert not missing.has_state
    assert describe_state(missing) == describe_state(None)
    text = json.dumps(build_prompt("", None, missing, []))
    assert "humanoid" not in text and "speed" not in text and "No game state" in text
    events = [LabelEvent("press", 2, 9, (("key", "W"),)),
              LabelEvent("turn", 4, 8, (("degrees", 92.4), ("direction", "left"),
                                        ("subject", "camera"))),
              LabelEvent("turn", 4, 6, (("direction", "right"), ("subject", "character"))),
              LabelEvent("start_moving", 3, 3)]
    assert [describe_event(e) for e in events] == [
        "key W pressed (frames 2-9)", "camera turns left by 92 degrees (frames 4-8)",
        "character turns right (frames 4-6)", "start moving (frames 3-3)"]
    message = build_prompt("ctx", _frame_label(frame_label(4)), _frame_label(frame_label(5)),
                           events)
    kinds = [c["type"] for c in message[0]["content"]]
    assert kinds.count("image") == 2
    text = json.dumps(message)
    assert "camera turns left by 92 degrees" in text and "Context: ctx" in text
    assert text.index("State of frame N-1") < text.index("State of frame N:")


def test_slots_per_merged_event_and_every_n_seconds() -> None:
    times = {i: i / 30 for i in range(300)}  # 10 s at 30 fps
    events = [LabelEvent("press", 40, 41, (("key", "Space"),)), LabelEvent("jump", 41, 43),
              LabelEvent("airborne", 41, 55), LabelEvent("land", 56, 56),
              LabelEvent("stop_moving", 200, 200)]
    assert [len(g) for g in merge_events(events, 5)] == [4, 1]
    slots = caption_slots(times, events, every_s=2.0, gap=5)
    # windows start at frames 0, 60, 120, 180, 240; 60 (t=2.0) is 0.13 s from the event
    # caption at 56 and 180 (t=6.0) is 0.67 s from the one at 200: both under 1 s, dropped
    assert [(s.frame_index, len(s.events)) for s in slots] == [
        (0, 0), (56, 4), (120, 0), (200, 1), (240, 0)]


def test_slots_do_not_depend_on_shard_bounds() -> None:
    times = {i: i / 30 for i in range(300)}
    # the group ends at 66 (second shard) and suppresses the window start at 45 (first shard)
    events = [LabelEvent("jump", 60, 62), LabelEvent("land", 66, 66)]
    whole = [s.frame_index for s in caption_slots(times, events, 1.5, 5)]
    assert 45 not in whole and 66 in whole
    split = []
    for start in range(0, 300, 64):
        part = {i: times[i] for i in range(start, min(start + 64, 300))}
        before = times[start - 1] if start else None
        split += [s.frame_index for s in caption_slots(part, events, 1.5, 5, before, times)]
    assert split == whole


def test_caption_rows_record_the_kept_caption(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=10)
    settings = AnnotateSettings(models=tiny_models, batch_size=4, shard_frames=8,
                                caption_every=0.2, max_new_tokens=6, prefetch=4,
                                context="A red square runs.")
    [report] = annotate([session], ["caption"], settings)
    folder = session / "annotations" / "caption"
    rows = [r for n in (0, 1) for r in pq.read_table(folder / f"shard-0000{n}.parquet").to_pylist()]
    assert [r["frame_index"] for r in rows] == [0, 8]
    assert [r["previous_frame"] for r in rows] == [0, 7]
    jump = rows[1]
    assert jump["events"] == ["jump (frames 5-7)", "land (frames 8-8)"]
    for row in rows:  # random weights never answer the JSON: the state caption is kept
        assert row["kept"] == "state" and row["caption"] == row["state_caption"]
        assert "not the asked JSON object" in row["why"]
        assert row["prompt"].startswith("Context: A red square runs.")
        assert row["prompt"].count("<image>") == 2
    assert report.summary["kept_state"] == 2 and report.summary["flagged_fraction"] == 1.0
