"""`stpe export --frames`: only the chosen frame ranges of the named sessions."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import Session
from pipeline.cli import cli
from tests.pipeline.export_kit import labelled


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("sessions")
    return [labelled(parent, name, [i / 30 for i in range(20)]) for name in ("s1", "s2")]


def _frames(out):
    table = pq.read_table(sorted((out / "data").glob("*.parquet")))
    return sorted(zip(table["session"].to_pylist(), table["frame_index"].to_pylist(),
                      strict=True))


def test_only_the_named_ranges_are_exported(sessions, tmp_path):
    out = tmp_path / "pq"
    result = CliRunner().invoke(cli, ["export", *map(str, sessions), "--format", "parquet",
                                      "--out", str(out), "--frames", "s1:2-4,17-30",
                                      "--frames", "s2:0-0"])
    assert result.exit_code == 0, result.output
    ids = {p.name: p for p in sessions}
    s1, s2 = (Session.open(ids[n]).manifest.session_id for n in ("s1", "s2"))
    # frame 19, the last, has no state (export_kit) and is never exported
    assert _frames(out) == sorted([(s1, 2), (s1, 3), (s1, 4), (s1, 17), (s1, 18), (s2, 0)])


@pytest.mark.parametrize(("value", "fragment"), [
    ("s1", "is not NAME:FIRST-LAST"), ("s1:4-2", "is not NAME:FIRST-LAST"),
    ("s1:a-b", "is not NAME:FIRST-LAST"), (":1-2", "is not NAME:FIRST-LAST"),
    ("s1:-1-3", "is not NAME:FIRST-LAST"), ("nope:1-2", "nope is not one of the SESSIONS"),
])
def test_bad_ranges_are_refused_and_write_nothing(sessions, tmp_path, value, fragment):
    out = tmp_path / "pq"
    result = CliRunner().invoke(cli, ["export", str(sessions[0]), "--format", "parquet",
                                      "--out", str(out), "--frames", value])
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.split())
    assert not out.exists()


def test_ranges_without_state_frames_are_refused(sessions, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(sessions[0]), "--format", "parquet",
                                      "--out", str(tmp_path / "pq"), "--frames", "s1:19-40"])
    assert result.exit_code == 1 and not (tmp_path / "pq").exists()
