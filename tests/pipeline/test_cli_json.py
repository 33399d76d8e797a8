"""`--json`: one JSON document on stdout whose figures match the files the command wrote,
read back with the libraries a user would use; and -v/-q/--json before or after the
command."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import ReceiverThread, SessionWriter
from pipeline.cli import cli
from tests.pipeline.annotate_fixtures import build_tiny_models
from tests.pipeline.annotate_fixtures import make_session as annotate_session
from tests.pipeline.demo_session import labelled_demo_session


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("json") / "sessions"
    labelled_demo_session(root, count=9)
    return root


def _json(*args):
    result = CliRunner().invoke(cli, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)  # stdout holds the document and nothing else


def test_align_and_labels_report_what_they_wrote(sessions):
    doc = _json("--json", "align", sessions)
    (report,) = doc["sessions"]
    aligned = pq.read_table(sessions / "demo" / "aligned.parquet")
    assert doc["command"] == "align"
    assert report["frames"] == aligned.num_rows == 9
    assert report["matched"] == sum(aligned.column("matched").to_pylist())
    doc = _json("labels", sessions, "--json")
    (labels,) = doc["sessions"]
    table = pq.read_table(sessions / "demo" / "labels.parquet")
    events = (sessions / "demo" / "label_events.jsonl").read_text().splitlines()
    assert labels["summary"]["frames"] == table.num_rows == 9
    assert labels["events"] == len(events)


def test_export_render_view_and_plugin_build(sessions, tmp_path):
    doc = _json("export", sessions / "demo", "--format", "parquet", "--out",
                tmp_path / "pq", "--json")
    assert doc["format"] == "parquet" and doc["sessions"] == [str(sessions / "demo")]
    rows = sum(pq.read_table(p).num_rows for p in (tmp_path / "pq").rglob("*.parquet"))
    assert rows == 9 and doc["counts"]
    doc = _json("render", sessions, "--out", tmp_path / "o.mp4", "--json")
    assert doc["sessions"][0]["frames"] == 9
    assert doc["sessions"][0]["path"] == str(tmp_path / "o.mp4")
    pytest.importorskip("rerun")
    from rerun.chunk import RrdReader

    doc = _json("view", sessions, "--out", tmp_path / "v.rrd", "--json")
    (viewed,) = doc["sessions"]
    images = sum(chunk.to_record_batch().num_rows
                 for chunk in RrdReader(str(tmp_path / "v.rrd")).store().stream()
                 if str(chunk.entity_path) == "/world/camera/image"
                 and "EncodedImage:blob" in chunk.to_record_batch().schema.names)
    assert viewed["images"] == images == 9 and viewed["viewer_pid"] is None
    doc = _json("plugin", "build", "--out", tmp_path / "p.rbxmx", "--json")
    assert doc["bytes"] == (tmp_path / "p.rbxmx").stat().st_size


def test_simulate_reports_the_receivers_count(tmp_path):
    with SessionWriter.create(tmp_path, "s1") as writer, \
            ReceiverThread(writer, port=0) as rx:
        doc = _json("simulate", "--url", rx.url, "--seconds", "0.4", "--rate", "50",
                    "--json")
        stored = rx.stats.samples_stored
    assert doc["sent"] == 20 == stored and doc["stored_through"] == 19


def test_annotate_reports_each_stage(tmp_path):
    pytest.importorskip("transformers")
    models = build_tiny_models(tmp_path / "models")
    session = annotate_session(tmp_path, "s1", frames=4)
    doc = _json("annotate", tmp_path, "--stages", "embed", "--device", "cpu", "--dtype",
                "fp32", "--embed-model", models["embed"], "--max-side", "48", "--json")
    (stage,) = doc["results"]
    shards = list((session / "annotations" / "embed").glob("shard-*.safetensors"))
    assert stage["stage"] == "embed" and stage["shards_written"] == len(shards) == 1


def test_quiet_prints_nothing_and_verbose_works_after_the_command(sessions):
    quiet = CliRunner().invoke(cli, ["labels", str(sessions), "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""
    loud = CliRunner().invoke(cli, ["labels", str(sessions), "-vv"])
    assert loud.exit_code == 0 and "9 frames" in loud.stdout


def test_json_values_are_plain_numbers(sessions):
    doc = _json("align", sessions / "demo", "--json")
    residual = doc["sessions"][0]["residual_ms"]
    assert all(v is None or np.isfinite(v) for v in residual.values())


def test_repair_reports_what_it_kept(tmp_path):
    from tests.capture.test_repair import _crashed_session

    writer = _crashed_session(tmp_path)
    doc = _json("repair", tmp_path, "--json")  # the parent folder: its one session
    (report,) = doc["sessions"]
    torn = (writer.path / "state.jsonl.torn").read_bytes()
    assert report["torn_bytes"]["state.jsonl"] == len(torn.rstrip(b"\n")) == 33
    assert report["samples"] == len((writer.path / "state.jsonl").read_bytes().splitlines())
    assert report["path"] == str(writer.path)


def test_import_and_plugin_install_report_what_they_made(tmp_path):
    from tests.alignment.test_import_seed import make_seed

    make_seed(tmp_path / "seed", [1, 2, 4])
    doc = _json("import", tmp_path / "seed", "--out", tmp_path / "s", "--json")
    aligned = pq.read_table(tmp_path / "s" / "aligned.parquet")
    assert doc["session"] == str(tmp_path / "s") and doc["frames"] == aligned.num_rows == 3
    assert doc["missing_frames"] == [[3, 3]]  # (first, last) runs
    assert doc["alignment"]["matched"] == sum(aligned.column("matched").to_pylist())
    doc = _json("plugin", "install", "--dir", tmp_path / "Plugins", "--json")
    assert doc["path"] == str(tmp_path / "Plugins" / "STPE.rbxmx")
    assert (tmp_path / "Plugins" / "STPE.rbxmx").is_file()
