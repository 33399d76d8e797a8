"""WebDataset, Parquet and LeRobot exports loaded with Hugging Face `datasets` the way the
Hub does (the folder and its card), and the card's header checked as data."""

from __future__ import annotations

import json
import re
import tarfile

import datasets
import pyarrow as pa
import pytest
import yaml

from pipeline.export import ACTION_NAMES, STATE_NAMES, ExportOptions, export_sessions
from pipeline.export._hf import yaml_features
from tests.pipeline.card_kit import documented_prose, parse_card
from tests.pipeline.export_kit import jittered, labelled

SPLITS = (("train", 0.67), ("val", 0.33))
# ids of the Hub's task list (huggingface.co/tasks, the `task_categories` values it accepts)
HUB_TASKS = {"robotics", "image-to-text", "object-detection", "image-classification",
             "image-segmentation", "video-classification", "reinforcement-learning"}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("hf-sessions")
    # no key held in the first frames: inferring types from them would type `keys` null
    return [labelled(parent, f"s{i}", jittered(12, 0.001 * i), idle=8) for i in range(3)]


def _card(root):
    text = (root / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1]), text


def _load(root, tmp_path, **kwargs):
    # by name: the card's one config must be "default", the name the Hub opens
    return datasets.load_dataset(str(root), "default", cache_dir=str(tmp_path / "cache"),
                                 **kwargs)


def test_features_are_written_as_datasets_writes_them():
    schema = pa.schema([
        ("jpg", pa.binary()), ("blob", pa.binary()), ("v", pa.list_(pa.float32())),
        ("fixed", pa.list_(pa.float64(), 3)),
        ("objects", pa.list_(pa.struct([("id", pa.string()), ("box", pa.list_(pa.int32()))]))),
        ("nested", pa.list_(pa.list_(pa.int64()))), ("flag", pa.bool_()),
        ("labels", pa.struct([("keys", pa.list_(pa.string())), ("n", pa.int64())]))])
    oracle = datasets.Features.from_arrow_schema(schema)
    oracle["jpg"] = datasets.Image()
    assert yaml_features(schema, images=("jpg",)) == oracle._to_yaml_list()
    with pytest.raises(TypeError, match=r"no Hugging Face feature for arrow type date32"):
        yaml_features(pa.schema([("day", pa.date32())]))


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_folder_loads_with_declared_features_and_splits(sessions, tmp_path, fmt):
    export_sessions(sessions, fmt, tmp_path / fmt, ExportOptions(splits=SPLITS))
    header, _ = _card(tmp_path / fmt)
    assert header["task_categories"] and set(header["task_categories"]) <= HUB_TASKS
    sizes = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert sizes == {"train": 22, "val": 11}  # 2 and 1 sessions of 11 frames with state
    for entry in header["configs"][0]["data_files"]:
        assert list((tmp_path / fmt).glob(entry["path"])), entry
    loaded = _load(tmp_path / fmt, tmp_path)
    assert {k: len(v) for k, v in loaded.items()} == sizes
    declared = datasets.Features._from_yaml_list(header["dataset_info"]["features"])
    assert loaded["train"].features == declared
    row = loaded["train"][0]
    if fmt == "webdataset":
        assert row["json"]["labels"]["keys"] == [] and row["jpg"].mode == "RGB"
        assert list(row["json"]["state"]) == list(STATE_NAMES)
        assert list(row["json"]["action"]) == list(ACTION_NAMES)
        assert len(row["vector.npy"]) == len(STATE_NAMES) + len(ACTION_NAMES)
        assert row["__url__"].endswith(".tar")  # the columns `datasets` adds: key and url
        with tarfile.open(next((tmp_path / fmt).glob("*.tar"))) as tar:
            suffixes = {m.name.split(".", 1)[1] for m in tar.getmembers()}
        assert set(declared) == suffixes | {"__key__", "__url__"}
    else:
        assert row["image"].mode == "RGB" and len(row["observation.state"]) == len(STATE_NAMES)
    column = "__key__" if fmt == "webdataset" else "session"
    sessions_of = {name: {v.split("_")[0] for v in ds[column]} for name, ds in loaded.items()}
    assert sessions_of["train"] | sessions_of["val"] == {"s0", "s1", "s2"}
    assert not sessions_of["train"] & sessions_of["val"]


def test_webdataset_json_keys_follow_the_vectors(sessions, tmp_path):
    export_sessions(sessions[:1], "webdataset", tmp_path / "w")
    with tarfile.open(next((tmp_path / "w").glob("*.tar"))) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        record = json.loads(tar.extractfile(member).read())  # keeps the file's key order
    assert list(record) == ["session", "frame_index", "t", "state", "action", "labels",
                            "caption"]
    assert list(record["state"]) == list(STATE_NAMES)
    assert list(record["action"]) == list(ACTION_NAMES)
    header, _ = _card(tmp_path / "w")
    declared = next(f for f in header["dataset_info"]["features"] if f["name"] == "json")
    fields = {f["name"]: f for f in declared["struct"]}
    assert list(fields) == list(record)  # the declared record is the written one
    for key in ("state", "action", "labels"):
        assert [f["name"] for f in fields[key]["struct"]] == list(record[key])


def test_lerobot_data_loads_from_its_card(sessions, tmp_path):
    export_sessions(sessions, "lerobot", tmp_path / "lr")
    header, _ = _card(tmp_path / "lr")
    assert header["tags"] == ["stpe", "roblox", "world-model", "video", "LeRobot"]
    assert header["task_categories"] == ["robotics"]
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    # the card tells a reader the rows are resampled and names where the true times are
    _, blocks = parse_card((tmp_path / "lr/README.md").read_text())
    assert " ".join(blocks[2][1].split()) == documented_prose("lerobot")
    named = set(re.findall(r"`([^`]+)`", blocks[2][1]))
    assert {"capture_t", "source_frame_index", "fps"} <= named
    assert named <= {f["name"] for f in header["dataset_info"]["features"]} | set(info)
    loaded = _load(tmp_path / "lr", tmp_path, split="train")
    assert len(loaded) == info["total_frames"]
    assert loaded.features == datasets.Features._from_yaml_list(
        header["dataset_info"]["features"])


def test_card_declares_license_tasks_tags_and_a_citation(sessions, tmp_path):
    export_sessions(sessions[:1], "coco", tmp_path / "c", ExportOptions(license="cc-by-4.0"))
    header, text = _card(tmp_path / "c")
    assert header["license"] == "cc-by-4.0"
    assert header["task_categories"] == ["object-detection"]
    assert header["tags"] == ["stpe", "roblox", "world-model", "video"]  # docs/exports.md
    citation = text.split("```bibtex\n")[1].split("```")[0]
    assert citation.startswith("@misc{") and "title = {" in citation
