"""Jobs over HTTP: the real `stpe` command in a child process, its progress, result and
errors, cancelling, and records that outlive the server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from serve import ServeContext, ServeThread
from serve._jobstore import JobRecord, save
from serve._runner import JobManager
from tests.serve._http import get_json, request


def _post(served, path: str, body: object) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    return get_json(served.base, path, served.token, method="POST", body=data,
                    headers={"Content-Type": "application/json",
                             "Content-Length": str(len(data))})


def _wait(served, job_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get_json(served.base, "/api/jobs", served.token)
        assert status == 200
        (job,) = [j for j in body["jobs"] if j["id"] == job_id]
        if job["state"] in ("done", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_export_of_a_selection_runs_the_cli(served, demo_sessions: Path) -> None:
    status, job = _post(served, "/api/jobs", {"job": {
        "kind": "export", "sessions": ["demo"], "format": "parquet",
        "frames": [{"session": "demo", "ranges": [[2, 5], [20, 21]]}]}})
    assert status == 201, job
    assert job["argv"][:2] == ["export", str(demo_sessions / "demo")]
    assert "--frames=demo:2-5,20-21" in job["argv"]
    done = _wait(served, job["id"])
    assert done["state"] == "done" and done["exit_code"] == 0, done
    table = pq.read_table(sorted(Path(done["output"]).glob("data/*.parquet")))
    assert table["frame_index"].to_pylist() == [2, 3, 4, 5, 20, 21]
    assert done["result"]["counts"]["rows"] == 6
    assert done["progress"]["completed"] == done["progress"]["total"] == 6
    stored = json.loads((demo_sessions / ".stpe-serve" / "jobs" / f"{job['id']}.json")
                        .read_text())
    assert stored["state"] == "done" and stored["id"] == job["id"]
    # the session list says what was derived: this export, and only on its session
    status, listing = get_json(served.base, "/api/sessions", served.token)
    exports = {s["id"]: s["exports"] for s in listing["sessions"]}
    assert exports["demo"] == [f"parquet {job['id']}"] and exports["sim"] == []


def test_a_failing_job_shows_the_cli_error(served, demo_sessions: Path) -> None:
    (demo_sessions / "demo" / "labels.parquet").unlink()
    status, job = _post(served, "/api/jobs", {"job": {"kind": "export", "sessions": ["demo"],
                                                      "format": "coco"}})
    assert status == 201
    failed = _wait(served, job["id"])
    cli = subprocess.run([sys.executable, "-m", "pipeline", "export",
                          str(demo_sessions / "demo"), "--format", "coco",
                          "--out", str(demo_sessions.parent / "cli-out")],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    line = next(x for x in cli.stderr.splitlines() if x.startswith("error:"))
    assert failed["state"] == "failed" and failed["exit_code"] == cli.returncode == 1
    assert failed["error"] == line.removeprefix("error:").strip()
    assert "stpe labels" in failed["error"]
    assert not Path(failed["output"]).exists()  # nothing half-written is left


def test_labels_job_rewrites_the_labels(served, demo_sessions: Path) -> None:
    labels = demo_sessions / "demo" / "labels.parquet"
    before = pq.read_table(labels)
    labels.unlink()
    status, job = _post(served, "/api/jobs", {"job": {"kind": "labels", "sessions": ["demo"]}})
    done = _wait(served, job["id"])
    assert status == 201 and done["state"] == "done", done
    after = pq.read_table(labels)
    for column in ("frame_index", "caption", "grounded", "speed"):
        assert after[column].equals(before[column]), column
    assert done["result"]["command"] == "labels"


@pytest.mark.parametrize(("body", "status"), [
    ({"job": {"kind": "labels", "sessions": ["../demo"]}}, 404),
    ({"job": {"kind": "labels", "sessions": ["nope"]}}, 404),
    ({"job": {"kind": "labels", "sessions": []}}, 400),
    ({"job": {"kind": "rm", "sessions": ["demo"]}}, 400),
    ({"job": {"kind": "align", "sessions": ["demo"], "tolerance_ms": "1; rm -rf /"}}, 400),
    ({"job": {"kind": "export", "sessions": ["demo"], "format": "parquet",
              "out": "/tmp/x"}}, 400),
    ({"job": {"kind": "export", "sessions": ["demo"], "format": "parquet",
              "frames": [{"session": "other", "ranges": [[1, 2]]}]}}, 400),
    ({"job": {"kind": "export", "sessions": ["demo"], "format": "parquet",
              "frames": [{"session": "demo", "ranges": [[5, 2]]}]}}, 400),
    ({"job": {"kind": "annotate", "sessions": ["demo"], "stages": ["rm"]}}, 400),
])
def test_bad_job_requests_are_refused(served, demo_sessions: Path, body: dict,
                                      status: int) -> None:
    got, answer = _post(served, "/api/jobs", body)
    assert got == status, answer
    assert "error" in answer
    assert not (demo_sessions / ".stpe-serve" / "jobs").exists() or \
        not list((demo_sessions / ".stpe-serve" / "jobs").iterdir())


def test_events_stream_the_jobs(served) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(served.base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", "/api/jobs/events", headers={"X-STPE-Token": served.token})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert response.readline() == b"event: jobs\n"
    assert json.loads(response.readline().removeprefix(b"data: ")) == []
    response.readline()
    _, job = _post(served, "/api/jobs", {"job": {"kind": "labels", "sessions": ["demo"]}})
    states = []
    while "done" not in states:
        name = response.readline()
        if name.startswith(b":") or name == b"\n":
            continue
        assert name == b"event: job\n"
        event = json.loads(response.readline().removeprefix(b"data: "))
        response.readline()
        assert event["id"] == job["id"]
        states.append(event["state"])
    conn.close()
    assert states[0] == "queued" and "running" in states and states[-1] == "done"


def test_a_restarted_server_marks_running_jobs_interrupted(demo_sessions: Path) -> None:
    ctx = ServeContext.for_sessions(demo_sessions)
    save(ctx.work_dir, JobRecord(id="20260101-000000-dead", kind="labels", title="labels demo",
                                 argv=["labels", "x"], state="running"))
    save(ctx.work_dir, JobRecord(id="20260101-000001-good", kind="labels", title="labels demo",
                                 argv=["labels", "x"], state="done", exit_code=0))
    (ctx.work_dir / "jobs" / "broken.json").write_text("{not json")
    with ServeThread(ctx, port=0) as server:
        status, body = get_json(server.base_url, "/api/jobs", server.token)
    assert status == 200
    states = {j["id"]: j["state"] for j in body["jobs"]}
    assert states == {"20260101-000000-dead": "interrupted", "20260101-000001-good": "done"}
    stored = json.loads((ctx.work_dir / "jobs" / "20260101-000000-dead.json").read_text())
    assert stored["state"] == "interrupted"


def test_cancel_terminates_the_process(demo_sessions: Path, tmp_path: Path) -> None:
    """A job whose command runs until stopped (`stpe serve`) is cancelled while running."""
    ctx = ServeContext.for_sessions(demo_sessions)

    async def scenario() -> tuple[JobRecord, JobRecord, int]:
        manager = JobManager(ctx)
        job = await manager.submit("labels", "runs until stopped",
                                   ["serve", "--sessions", str(tmp_path), "--port", "0"])
        queued = await manager.submit("labels", "after it", ["labels", "x"])
        while manager.jobs[job.id].state != "running" or not manager.jobs[job.id].log:
            await asyncio.sleep(0.05)
        pid = manager._processes[job.id].pid
        await manager.cancel(queued.id)
        await manager.cancel(job.id)
        for _ in range(200):
            if manager.jobs[job.id].state == "cancelled":
                break
            await asyncio.sleep(0.05)
        await manager.close()
        return manager.jobs[job.id], manager.jobs[queued.id], pid

    job, queued, pid = asyncio.run(scenario())
    assert job.state == "cancelled" and job.exit_code != 0
    assert queued.state == "cancelled" and queued.started_ns is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_jobs_need_the_token(served) -> None:
    status, _, _ = request(served.base, "/api/jobs")
    assert status == 403
    status, _, _ = request(served.base, "/api/jobs", method="POST", body=b"{}",
                           headers={"Content-Length": "2"})
    assert status == 403
    shutil.rmtree(served.ctx.work_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny random-weight checkpoints shaped like the hub repositories (as the pipeline
    tests build them, in the same place)."""
    pytest.importorskip("transformers")
    from tests.pipeline.annotate_fixtures import build_tiny_models

    return build_tiny_models(tmp_path_factory.getbasetemp() / "annotate-models")


@pytest.mark.timeout(600)
def test_annotate_job_then_search_by_example(served, demo_sessions: Path,
                                             tiny_models: dict[str, str]) -> None:
    from safetensors.numpy import load_file

    status, job = _post(served, "/api/jobs", {"job": {
        "kind": "annotate", "sessions": ["demo"], "stages": ["embed"], "device": "cpu",
        "dtype": "fp32", "embed_model": tiny_models["embed"]}})
    assert status == 201, job
    done = _wait(served, job["id"], timeout=500)
    assert done["state"] == "done", done
    shards = sorted((demo_sessions / "demo" / "annotations" / "embed")
                    .glob("shard-*.safetensors"))
    frames = np.concatenate([load_file(str(s))["frame_index"] for s in shards])
    vectors = np.concatenate([load_file(str(s))["cls"] for s in shards]).astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    example = 5
    scores = unit @ unit[list(frames).index(example)]
    order = sorted(range(len(frames)), key=lambda i: (-scores[i], frames[i]))[:6]
    status, body = _post(served, "/api/search/similar", {"session": "demo", "frame": example,
                                                         "limit": 6})
    assert status == 200
    assert [r["frame"] for r in body["results"]] == [int(frames[i]) for i in order]
    assert [r["score"] for r in body["results"]] == pytest.approx(
        [scores[i] for i in order], abs=1e-5)
    assert body["results"][0]["frame"] == example


def test_the_server_stops_with_an_event_stream_open(demo_sessions: Path) -> None:
    import http.client

    server = ServeThread(ServeContext.for_sessions(demo_sessions), port=0).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/api/jobs/events", headers={"X-STPE-Token": server.token})
    response = conn.getresponse()
    assert response.readline() == b"event: jobs\n"
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 10  # not aiohttp's graceful wait for the stream
    while response.readline():  # the stream ends
        pass
    conn.close()
