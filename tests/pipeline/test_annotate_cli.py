"""`stpe annotate` in-process through click's runner: real sessions, tiny models."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from tests.pipeline.annotate_fixtures import make_session

pytest.importorskip("transformers")


def run(*args: str):
    return CliRunner().invoke(cli, ["annotate", *args])


def test_annotate_writes_and_resumes(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=6)
    args = [str(session), "--stages", "embed,caption", "--device", "cpu", "--dtype", "fp32",
            "--embed-model", tiny_models["embed"], "--caption-model", tiny_models["caption"],
            "--caption-every", "3", "--max-side", "48"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "s1 embed: 1 shards written, 0 skipped" in result.output
    assert "s1 caption: 1 shards written, 0 skipped" in result.output
    assert "captions flagged inconsistent" in result.output
    assert (session / "annotations" / "embed" / "shard-00000.safetensors").is_file()
    again = run(*args)
    assert again.exit_code == 0
    assert "s1 embed: 0 shards written, 1 skipped" in again.output


@pytest.mark.parametrize(("args", "message"), [
    (["--stages", "embed,paint"], "unknown stage(s) paint"),
    (["--stages", ","], "unknown stage(s) (none)"),
    (["--batch-size", "0"], "--batch-size"),
    (["--device", "tpu"], "--device"),
    (["--dense-every", "-3"], "--dense-every"),
])
def test_bad_options_write_nothing(tmp_path, args, message) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    result = run(str(session), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (session / "annotations").exists()


def test_not_a_session(tmp_path) -> None:
    result = run(str(tmp_path))
    assert result.exit_code == 2  # a path mistake is a usage error, refused before any work
    assert "is not a session" in result.output
    missing = run(str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_help_names_the_default_models_and_licences() -> None:
    result = CliRunner().invoke(cli, ["annotate", "--help"])
    assert result.exit_code == 0
    for text in ("facebook/dinov3-vit7b16-pretrain-lvd1689m", "facebook/sam3",
                 "Qwen/Qwen3-VL-8B-Instruct", "facebook/vjepa2-vitl-fpc64-256",
                 "DINOv3 License", "SAM License", "Apache-2.0", "MIT", "--device",
                 "[auto|cuda|cpu]"):
        assert text in result.output, text
    # the published sizes (pages cited in pipeline/annotate/_models.py): DINOv3 ViT-7B
    # 6,716M, SAM 3 848M, Qwen3-VL-8B 8.77B, V-JEPA 2 ViT-L 326M; two bytes each in bf16
    lines = [line.strip() for line in result.output.splitlines()]
    for model_id, size in (("facebook/dinov3-vit7b16-pretrain-lvd1689m", "6.7B parameters, 13 GB"),
                           ("facebook/sam3", "0.85B parameters, 1.7 GB"),
                           ("Qwen/Qwen3-VL-8B-Instruct", "8.8B parameters, 18 GB"),
                           ("facebook/vjepa2-vitl-fpc64-256", "0.33B parameters, 0.65 GB")):
        at = next(k for k, line in enumerate(lines) if line.endswith(model_id))
        assert lines[at + 1].startswith(size), (model_id, lines[at + 1])


def test_default_7b_model_on_cpu_is_refused_before_loading(tmp_path) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    result = run(str(session), "--stages", "embed", "--device", "cpu")
    assert result.exit_code != 0
    assert "--allow-large-on-cpu" in str(result.exception)
    assert not (session / "annotations").exists()
