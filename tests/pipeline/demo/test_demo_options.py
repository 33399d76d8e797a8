"""`stpe demo` refuses bad options and foreign output folders before starting anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline._errors import PipelineError
from pipeline.cli import cli
from pipeline.demo._run import DemoOptions, _validate


def _run(args):
    return CliRunner().invoke(cli, ["demo", *args])


def test_a_folder_with_foreign_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(PipelineError, match=r"did not write \(thesis.tex\)"):
        _validate(DemoOptions(out=tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_a_previous_demo_folder_is_refreshed(tmp_path):
    for name in ("sessions", "lerobot", "webdataset"):
        (tmp_path / name).mkdir()
    (tmp_path / "truth.jsonl").write_text("")
    (tmp_path / "check.json").write_text("{}")
    _validate(DemoOptions(out=tmp_path))  # no error: the demo may run here again


@pytest.mark.parametrize(("args", "message"), [
    (["--seconds", "0"], "--seconds"), (["--fps", "500"], "--fps")])
def test_bad_options_are_refused(tmp_path, args, message):
    result = _run(["--out", str(tmp_path / "d"), *args])
    assert result.exit_code != 0 and message in str(result.exception or result.output)
    assert not (tmp_path / "d").exists()
