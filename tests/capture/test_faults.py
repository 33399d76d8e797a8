"""Faults: a full disk, kill -9 at random moments, a receiver restarted mid-stream, many
idle connections and stalled bodies. In every case no acknowledged sample is lost, and
/v1/health keeps answering."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from capture import ReceiverThread, Session, SessionWriter, repair_session
from capture._layout import EVENTS, RESERVE, STATE
from tests.capture._rx import batch, hello, post

pytestmark = pytest.mark.faults


@contextlib.contextmanager
def _tmpfs(parent: Path, size: str):
    """A real, small tmpfs mounted at parent/fs (needs root on Linux; skipped otherwise)."""
    mount = parent / "fs"
    mount.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("a small real filesystem is mounted with Linux tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}); "
                    "CI runs as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _acknowledged(port: int, session: str, first: int, count: int = 60) -> tuple[set[int], int]:
    """Send one batch; the seqs it acknowledged (by accepted count) and the status."""
    seqs = list(range(first, first + count))
    reply = post(port, "/v1/samples", batch(session, seqs))
    if reply.status == 200:
        assert reply.body["accepted"] == count and reply.body["duplicates"] == 0
        return set(seqs), 200
    return set(), reply.status


def _stored_seqs(path: Path) -> list[int]:
    return Session.open(path).read_state()["seq"].to_pylist()


def test_a_full_disk_acknowledges_only_whole_lines_and_closes_the_session(tmp_path):
    with _tmpfs(tmp_path, "1m") as fs:
        writer = SessionWriter.create(fs, "s")
        acked: set[int] = set()
        with ReceiverThread(writer, port=0) as rx:
            assert post(rx.port, "/v1/hello", hello()).status == 200
            first, status = 0, 200
            while status == 200:
                got, status = _acknowledged(rx.port, "s", first)
                acked |= got
                first += 60
            refused = post(rx.port, "/v1/samples", batch("s", list(range(first - 60, first))))
            later = post(rx.port, "/v1/samples", batch("s", [first + 1]))
            health = post(rx.port, "/v1/hello", hello())
        writer.finalize()
        state = (fs / "s" / STATE).read_bytes()
        manifest = Session.open(fs / "s").manifest
        events = [orjson.loads(line) for line in (fs / "s" / EVENTS).read_bytes().splitlines()]
        stored = _stored_seqs(fs / "s")
        reserve_left = (fs / "s" / RESERVE).exists()
    assert status == 507 and len(acked) >= 300  # the disk held some batches, then filled
    # the retry of the failed batch is refused too, not answered "duplicates"
    assert refused.status == 507 and refused.body["error"]["code"] == "storage_failed"
    assert later.status == 507 and health.status == 507
    assert "disk is full" in refused.body["error"]["message"]
    assert state.endswith(b"\n")  # no torn fragment left behind
    assert stored == sorted(acked)  # every acknowledged sample, nothing else
    assert manifest.status == "failed" and "disk is full" in manifest.notes["failure"]
    assert [e["kind"] for e in events][-2:] == ["error", "stop"]
    assert events[-1]["status"] == "failed" and not reserve_left


def test_repair_works_in_place_on_a_failed_session(tmp_path):
    with _tmpfs(tmp_path, "1m") as fs:
        writer = SessionWriter.create(fs, "s")
        with ReceiverThread(writer, port=0) as rx:
            post(rx.port, "/v1/hello", hello())
            first = 0
            while _acknowledged(rx.port, "s", first)[1] == 200:
                first += 60
        writer.finalize()
        report = repair_session(fs / "s")
        again = repair_session(fs / "s")
        stored = _stored_seqs(fs / "s")
        status = Session.open(fs / "s").manifest.status
    assert not report.already_recovered and report.torn_bytes == {}
    assert again.already_recovered and status == "recovered"
    assert stored == list(range(first))


def test_a_complete_session_is_checked_in_place(tmp_path):
    writer = SessionWriter.create(tmp_path, "s")
    writer.append_state([b'{"seq":0,"arrival_mono_ns":1,"arrival_wall_ns":2,"sample":{}}'])
    writer.finalize()
    with open(tmp_path / "s" / STATE, "ab") as log:
        log.write(b'{"seq":1,"arrival_mo')  # bytes a later tool cut short
    report = repair_session(tmp_path / "s")
    assert report.torn_bytes == {STATE: len(b'{"seq":1,"arrival_mo')}
    assert Session.open(tmp_path / "s").manifest.status == "recovered"
    clean = SessionWriter.create(tmp_path, "c")
    clean.finalize()
    untouched = repair_session(tmp_path / "c")
    assert untouched.torn_bytes == {} and untouched.video == "unchanged"
    assert Session.open(tmp_path / "c").manifest.status == "complete"


def _record(out: Path, seconds: float, extra: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "record", "--out", str(out), "--port", "0",
         "--fps", "30", "--duration", str(seconds), *(extra or [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})


def _address(proc: subprocess.Popen) -> tuple[Path, str]:
    session = url = None
    while url is None:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("session: "):
            session = Path(line.split(": ", 1)[1].strip())
        if line.startswith("plugin address: "):
            url = line.split(": ", 1)[1].strip()
    return session, url


@pytest.mark.x11
@pytest.mark.parametrize("encoder", ["thread", "process"])
def test_stpe_record_stops_cleanly_on_a_full_disk(display, tmp_path, encoder):
    from capture import SimulatedPlugin

    with _tmpfs(tmp_path, "3m") as fs:
        proc = _record(fs, 60, ["--encoder", encoder])
        session, url = _address(proc)
        plugin = SimulatedPlugin(url, buffer_limit=100_000).start()
        seq = 0
        while proc.poll() is None and seq < 60 * 60:
            plugin.play(0.25, rate=600, first_seq=seq)  # fills the disk in seconds
            seq += 150
        plugin.stop()
        _out, err = proc.communicate(timeout=60)
        stored = _stored_seqs(session)
        manifest = Session.open(session).manifest
        report = repair_session(session)
    assert proc.returncode == 74, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "disk is full" in err
    assert manifest.status == "failed" and "disk is full" in manifest.notes["failure"]
    acked = plugin.stored_through
    assert acked >= 0 and stored[: acked + 1] == list(range(acked + 1))
    assert report.frames_decodable > 0 and report.samples == len(stored)


def test_stpe_simulate_rejoins_a_restarted_receiver_and_the_outage_is_recorded(tmp_path):
    first = SessionWriter.create(tmp_path, "before")
    rx = ReceiverThread(first, port=0).start()
    port = rx.port
    sim = subprocess.Popen([sys.executable, "-m", "pipeline", "simulate", "--url", rx.url,
                            "--seconds", "4", "--rate", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while rx.stats.samples_stored < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    rx.stop()  # the receiver goes away mid-stream ...
    first.finalize()
    time.sleep(1.5)
    second = SessionWriter.create(tmp_path, "after")  # ... and a new recording starts
    with ReceiverThread(second, port=port):
        out, err = sim.communicate(timeout=60)
    second.finalize()
    assert sim.returncode == 0, err
    before, after = _stored_seqs(tmp_path / "before"), _stored_seqs(tmp_path / "after")
    assert len(before) >= 60 and before == list(range(len(before)))
    assert after == list(range(len(before), 240))  # nothing lost, nothing twice
    (outage,) = [e for e in Session.open(tmp_path / "after").events()
                 if e["kind"] == "outage"]
    assert outage["previous_session"] == "before"
    assert outage["previous_stored_through"] == len(before) - 1
    assert 1.4 < outage["span_s"] < 10
    assert "1 outages" in out
