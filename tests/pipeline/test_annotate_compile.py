"""`stpe annotate --compile`: the embedding backbone runs through torch.compile (inductor,
which on the CPU compiles C++ kernels) and gives the eager model's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from tests.pipeline.annotate_fixtures import make_session

pytest.importorskip("transformers")


def _embeddings(session: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(session / "annotations" / "embed" / "shard-00000.safetensors")


def test_compiled_embeddings_equal_eager_ones(tmp_path, tiny_models) -> None:
    import torch._dynamo

    eager, compiled = make_session(tmp_path, "eager", 4), make_session(tmp_path, "compiled", 4)
    # one batch of 4 frames: one input shape, so one compilation (the slow part on a CPU)
    args = ["--stages", "embed", "--device", "cpu", "--dtype", "fp32", "--batch-size", "4",
            "--embed-model", tiny_models["embed"], "--max-side", "48", "--dense-every", "2"]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    result = CliRunner().invoke(cli, ["annotate", str(eager), *args])
    assert result.exit_code == 0, result.output
    assert torch._dynamo.utils.counters["frames"]["ok"] == 0  # eager: nothing compiled
    result = CliRunner().invoke(cli, ["annotate", str(compiled), *args, "--compile"])
    assert result.exit_code == 0, result.output
    assert torch._dynamo.utils.counters["frames"]["ok"] >= 1  # the forward was compiled
    torch._dynamo.reset()

    for session, flag in ((eager, False), (compiled, True)):
        meta = json.loads((session / "annotations" / "embed" / "meta.json").read_text())
        assert meta["model"]["compiled"] is flag
        assert meta["model"]["model_class"] == "DINOv3ViTModel"
    want, got = _embeddings(eager), _embeddings(compiled)
    assert sorted(got) == sorted(want) == ["cls", "dense", "dense_frame_index", "frame_index",
                                           "mean_patch"]
    np.testing.assert_array_equal(got["dense_frame_index"], [0, 2])
    # Tolerance: inductor fuses and reorders the fp32 arithmetic (measured differences of
    # about 5e-7 on values up to 4), and the files hold fp16, so a value may round to the
    # neighbouring fp16 number: at most one fp16 step, 2**-10 relative (atol for values
    # near zero). A wrong layer, token or normalisation is off by far more.
    for name in ("cls", "mean_patch", "dense"):
        np.testing.assert_allclose(got[name].astype(np.float32), want[name].astype(np.float32),
                                   rtol=2**-10, atol=1e-5, err_msg=name)
        assert np.abs(want[name]).max() > 0.1, name


def test_the_video_backbone_is_compiled_too_and_nothing_else(tiny_models) -> None:
    import torch._dynamo

    from pipeline.annotate import AnnotateSettings, create_stage

    for stage, compiled in (("video", True), ("caption", False)):
        settings = AnnotateSettings(device="cpu", dtype="fp32", compile_models=True,
                                    models={stage: tiny_models[stage]})
        built = create_stage(stage, settings)
        record = built.load()
        assert record["compiled"] is compiled, stage
        assert isinstance(built.model, torch._dynamo.eval_frame.OptimizedModule) is compiled
        built.close()
