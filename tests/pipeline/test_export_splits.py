"""`--split` assigns whole sessions to splits, the same way in every format: checked by
walking each format's files (session ids per split) against counts worked out by hand."""

from __future__ import annotations

import json
import tarfile

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline._errors import PipelineError
from pipeline.cli import cli
from pipeline.export import ExportOptions, export_sessions
from pipeline.export._splits import assign_splits, episode_ranges, parse_splits, split_order
from tests.pipeline.export_kit import jittered, labelled

SPLITS = (("train", 0.6), ("val", 0.2), ("test", 0.2))


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("split-sessions")
    return [labelled(parent, f"s{i}", jittered(6, 0.001 * i)) for i in range(5)]


def _by_split(fmt, root):
    """{split: set of session ids} read from the export's files."""
    out: dict[str, set[str]] = {}
    if fmt == "webdataset":
        for shard in root.glob("*.tar"):
            with tarfile.open(shard) as tar:
                names = [json.loads(tar.extractfile(m).read())["session"]
                         for m in tar.getmembers() if m.name.endswith(".json")]
            out.setdefault(shard.name.split("-")[0], set()).update(names)
    elif fmt == "parquet":
        for path in root.glob("data/*.parquet"):
            out.setdefault(path.name.split("-")[0], set()).update(
                pq.read_table(path)["session"].to_pylist())
    elif fmt == "coco":
        for path in root.glob("annotations_*.json"):
            images = json.loads(path.read_text())["images"]
            out[path.stem.removeprefix("annotations_")] = {i["session"] for i in images}
    else:
        info = json.loads((root / "meta/info.json").read_text())
        episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
        ids = episodes["stpe/session_id"].to_pylist()
        for name, span in info["splits"].items():
            start, stop = map(int, span.split(":"))
            out[name] = set(ids[start:stop])
    return out


@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "coco", "lerobot"])
def test_sessions_are_split_whole_and_the_same_in_every_format(sessions, tmp_path, fmt):
    options = ExportOptions(splits=SPLITS, seed=7)
    export_sessions(sessions, fmt, tmp_path / "a", options)
    got = _by_split(fmt, tmp_path / "a")
    # 5 sessions x (0.6, 0.2, 0.2) = 3, 1, 1: no remainder to hand out
    assert {k: len(v) for k, v in got.items()} == {"train": 3, "val": 1, "test": 1}
    assert set().union(*got.values()) == {f"s{i}" for i in range(5)}
    # the same seed gives the same draw in another format
    export_sessions(sessions, "parquet", tmp_path / "b", options)
    assert _by_split("parquet", tmp_path / "b") == got


def test_the_seed_changes_the_draw_and_remainders_go_first_to_the_largest(sessions, tmp_path):
    draws = []
    for seed in range(4):
        export_sessions(sessions, "coco", tmp_path / str(seed),
                        ExportOptions(splits=SPLITS, seed=seed))
        draws.append(_by_split("coco", tmp_path / str(seed)))
    assert len({json.dumps({k: sorted(v) for k, v in d.items()}, sort_keys=True)
                for d in draws}) > 1
    # 5 x (0.5, 0.3, 0.2) = 2.5, 1.5, 1.0: one session left, ties go to the first split
    export_sessions(sessions, "coco", tmp_path / "r",
                    ExportOptions(splits=(("a", 0.5), ("b", 0.3), ("c", 0.2))))
    assert {k: len(v) for k, v in _by_split("coco", tmp_path / "r").items()} == \
        {"a": 3, "b": 1, "c": 1}


@pytest.mark.parametrize("text, fragment", [
    ("train=0.8,val=0.1", "add up to 0.9"), ("train=0.5,train=0.5", "twice"),
    ("train", "bad --split entry"), ("Train=1", "bad --split entry"),
    ("train=x", "bad --split entry"), ("train=-1,val=2", "bad --split entry"),
    ("train=1,../x=0", "bad --split entry"), ("", "bad --split entry")])
def test_bad_splits_are_refused(text, fragment):
    with pytest.raises(PipelineError, match=fragment.replace(".", r"\.")):
        parse_splits(text)


def test_split_option_on_the_command_line(sessions, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["export", *map(str, sessions), "--format", "parquet",
                                      "--out", str(out), "--split", "train=0.6,val=0.4",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert {k: len(v) for k, v in _by_split("parquet", out).items()} == {"train": 3, "val": 2}
    bad = CliRunner().invoke(cli, ["export", str(sessions[0]), "--format", "parquet",
                                   "--out", str(tmp_path / "bad"), "--split", "train=2"])
    assert bad.exit_code != 0 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("count", "splits", "sizes"), [
    # 7 x (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4: one session left over, to the largest remainder
    (7, (("a", 0.5), ("b", 0.3), ("c", 0.2)), {"a": 4, "b": 2, "c": 1}),
    # 3 x (0.5, 0.5) = 1.5, 1.5: a tie goes to the split declared first
    (3, (("a", 0.5), ("b", 0.5)), {"a": 2, "b": 1}),
    # 4 x (0.1, 0.9) = 0.4, 3.6: remainders 0.4 and 0.6, the larger wins
    (4, (("a", 0.1), ("b", 0.9)), {"a": 0, "b": 4}),
    (0, (("a", 1.0),), {"a": 0}),
])
def test_split_sizes_by_hand(count, splits, sizes):
    for seed in range(3):
        got = assign_splits(count, splits, seed)
        assert len(got) == count
        assert {name: got.count(name) for name, _ in splits} == sizes


def test_the_draw_follows_the_seed():
    splits = (("a", 0.5), ("b", 0.5))
    draws = {tuple(assign_splits(10, splits, seed)) for seed in range(5)}
    assert len(draws) > 1
    assert assign_splits(10, splits, 3) == assign_splits(10, splits, 3)


def test_split_order_and_episode_ranges_by_hand():
    assert split_order(["val", "train", "val", "test"], ["train", "val", "test"]) == [1, 0, 2, 3]
    assert episode_ranges(["train", "train", "val", "test", "test"]) == {
        "train": "0:2", "val": "2:3", "test": "3:5"}
    assert episode_ranges([]) == {}


@pytest.mark.parametrize(("text", "parsed"), [
    ("train=0.8, val=0.2", (("train", 0.8), ("val", 0.2))),
    ("all=1", (("all", 1.0),)),
    ("a=0.5000004,b_2=0.5", (("a", 0.5000004), ("b_2", 0.5))),  # within 1e-6 of 1
    ("a" * 32 + "=1", (("a" * 32, 1.0),)),
])
def test_good_splits_are_parsed(text, parsed):
    assert parse_splits(text) == parsed


@pytest.mark.parametrize("text", ["a=0,b=1", "a" * 33 + "=1", "a=0.5000011,b=0.5", "2a=1",
                                  "a=1.5,b=-0.5", "a=nan"])
def test_splits_on_the_bounds_are_refused(text):
    with pytest.raises(PipelineError, match="--split"):
        parse_splits(text)


def test_a_fraction_over_1_is_refused_as_a_bad_entry_in_full():
    # a single fraction over 1 is a bad entry itself, not a sum that is off
    with pytest.raises(PipelineError) as refused:
        parse_splits("train=1.5")
    assert str(refused.value) == (
        "bad --split entry 'train=1.5'; expected NAME=FRACTION like "
        "train=0.8,val=0.1,test=0.1 (lower-case names)")
