"""`stpe annotate` with hub ids: weights downloaded from a hub on 127.0.0.1 (HF_ENDPOINT,
see fake_hub.py), with huggingface_hub's progress on the terminal, cached for the next
run; and a clear error when the hub refuses an id.

Each run is a subprocess: huggingface_hub reads HF_ENDPOINT and HF_HOME at import."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline.annotate_fixtures import make_session
from tests.pipeline.fake_hub import LFS_FROM, FakeHub
from tests.pipeline.terminal import in_terminal

pytest.importorskip("transformers")

REPO = "org/tiny-dinov3"
OPTIONS = ("--stages", "embed", "--device", "cpu", "--dtype", "fp32", "--max-side", "48")


def _hub_env(hub: FakeHub, home: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_TOKEN": "",
            "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_PROGRESS_BARS": ""}


def test_a_hub_id_downloads_once_with_progress_on_stderr(tmp_path, tiny_models) -> None:
    folder = Path(tiny_models["embed"])
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert len(files["model.safetensors"]) >= LFS_FROM  # served as a large file, by the CDN
    home = tmp_path / "hf"
    first, second = make_session(tmp_path, "s1", frames=4), make_session(tmp_path, "s2", frames=4)
    with FakeHub({REPO: folder}) as hub:
        env = _hub_env(hub, home)
        screen = in_terminal("annotate", first, *OPTIONS, "--embed-model", REPO, env=env,
                             pipe_stdout=True)
        assert screen.code == 0, screen.text
        assert "s1 embed: 1 shards written" in screen.stdout
        downloaded = hub.downloads()
        # every file the loader reads came over HTTP, the weights from the CDN address
        assert sorted(downloaded) == sorted(
            [f"/{REPO}/resolve/{rev}/{name}" for name, rev in
             (("config.json", hub.commit(REPO)), ("preprocessor_config.json", "main"))]
            + [f"/cdn/{REPO}/{_sha256(files['model.safetensors'])}"])
        # they land in the cache, byte for byte, under the commit the hub announced
        snapshot = home / "hub" / "models--org--tiny-dinov3" / "snapshots" / hub.commit(REPO)
        for name, data in files.items():
            assert (snapshot / name).read_bytes() == data, name
        # huggingface_hub's bar for the weights, on stderr (the terminal), not on stdout
        size = f"{len(files['model.safetensors']) / 1000:.0f}k"
        bars = [line for line in screen.lines
                if re.match(rf"model\.safetensors: +100%\|.*\| {size}/{size} ", line)]
        assert bars, screen.text
        assert "model.safetensors" not in screen.stdout
        meta = json.loads((first / "annotations" / "embed" / "meta.json").read_text())
        assert meta["model"]["model_id"] == REPO
        assert meta["model"]["revision"] == hub.commit(REPO)

        again = in_terminal("annotate", second, *OPTIONS, "--embed-model", REPO, env=env,
                            pipe_stdout=True)
        assert again.code == 0, again.text
        assert "s2 embed: 1 shards written" in again.stdout
        assert hub.downloads() == downloaded  # nothing fetched the second time
        assert "model.safetensors" not in again.text
    # the same weights as the folder itself gives, in process
    from pipeline.annotate import AnnotateSettings, annotate

    local = make_session(tmp_path, "s3", frames=4)
    annotate([local], ["embed"], AnnotateSettings(device="cpu", dtype="fp32", max_side=48,
                                                  models={"embed": str(folder)}))
    hub_cls, local_cls = (_tensor(s, "cls") for s in (first, local))
    # fp16 on disk; the subprocess may use another thread count than this process
    np.testing.assert_allclose(hub_cls, local_cls, rtol=1e-3, atol=1e-3)
    assert np.abs(hub_cls).max() > 0.1


# One interpreter for the three refusals (torch is imported once): `stpe annotate` run
# through click as `main` runs it, with or without a token.
_REFUSALS = """
import json, os, sys
from click.testing import CliRunner
from pipeline.cli import cli
out = []
for model_id, token in json.loads(sys.argv[2]):
    os.environ["HF_TOKEN"] = token
    result = CliRunner().invoke(cli, ["annotate", sys.argv[1], "--stages", "embed",
                                      "--device", "cpu", "--embed-model", model_id])
    out.append([model_id, result.exit_code, str(result.exception)])
print(json.dumps(out))
"""


def test_an_id_the_hub_refuses_is_a_clear_error(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    with FakeHub({"org/gated": Path(tiny_models["embed"])}, gated=("org/gated",)) as hub:
        cases = [["org/no-such-model", ""], ["org/no-such-model", "hf_x"], ["org/gated", ""]]
        done = subprocess.run(
            [sys.executable, "-c", _REFUSALS, str(session), json.dumps(cases)],
            capture_output=True, text=True, timeout=120, env={
                **_process_env(), **_hub_env(hub, tmp_path / "hf")})
        assert done.returncode == 0, done.stderr
        (missing_401, missing_404, gated) = json.loads(done.stdout.splitlines()[-1])
        assert hub.downloads() == []
    for (model_id, code, message), status in ((missing_401, 401), (missing_404, 404)):
        assert code == 1, message
        assert message == (
            f"model {model_id!r} is not a local folder, and the hub ({hub.endpoint}) "
            f"answered {status}: no such model, or a private one. Check the id (org/name) or "
            "the folder's path; for a private model log in with `hf auth login` (or set "
            "HF_TOKEN) and run again")
    assert gated[1] == 1
    assert gated[2] == (
        f"model 'org/gated' is gated on the hub: accept its licence at {hub.endpoint}/org/gated "
        "with your account, then log in with `hf auth login` (or set HF_TOKEN) and run again")
    assert not (session / "annotations").exists()


def _process_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensor(session: Path, name: str) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(session / "annotations" / "embed" / "shard-00000.safetensors")[name]
