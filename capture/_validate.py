"""Sample batches validated in a separate process, so the receiver's event loop never waits.

Validating a batch is CPU work that holds the interpreter lock for the whole call (tens of
milliseconds for a thousand samples); in a thread of the receiver's process it would stall
the event loop for as long. One worker process does it instead and hands back the samples
as JSON lines ready to append, which also puts a second core to work. One worker keeps
batches in the order they arrived.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import gc
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from capture._fastwire import typed_dict_validator
from capture._guard import RefusedError, decode_body, validate_json
from capture._wire import SampleBatch

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class PreparedBatch:
    """A validated batch: its samples as JSON, with what the ingest needs to store it."""

    session: str
    seqs: tuple[int, ...]
    samples_json: tuple[bytes, ...]
    probes: tuple[tuple[float, int, int, float], ...]  # t0, t1_ns, t2_ns, t3
    dropped: tuple[tuple[int, int], ...]  # first, last
    sent_client: float
    sent_wall_ms: int


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is validated: the thousands of small
    objects it allocates (no cycles, freed by reference counting) would otherwise trigger
    repeated collections and double the cost of validation. Free them before the end of the
    block, or the collector scans them all once it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare_batch(body: bytes, encoding: str, limit: int) -> PreparedBatch:
    """Decode, validate and serialize one `/v1/samples` body; RefusedError when it is bad.

    Validation builds plain dicts from the models' own schema (capture._fastwire), so each
    sample is written back exactly as sent, field for field."""
    raw = decode_body(body, encoding, limit)
    with _collection_paused():
        batch = validate_json(typed_dict_validator(SampleBatch), SampleBatch.__name__, raw)
        samples = batch["samples"]
        prepared = PreparedBatch(
            session=batch["session"], seqs=tuple(s["seq"] for s in samples),
            samples_json=tuple(orjson.dumps(s) for s in samples),  # every int < 2**53
            probes=tuple((p["t0"], p["t1_ns"], p["t2_ns"], p["t3"])
                         for p in batch.get("probes", ())),
            dropped=tuple((d["first"], d["last"]) for d in batch.get("dropped", ())),
            sent_client=batch["sent_client"], sent_wall_ms=batch["sent_wall_ms"])
        # freed while the collector is still off, so it never scans the batch's objects
        del batch, samples
    return prepared


_FRAME = struct.Struct(">I")
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); " \
             "from capture._validate import serve; serve()"


def _send(stream: BinaryIO, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> object:
    """The next message; EOFError when the pipe is closed."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError("the pipe closed")
    size = _FRAME.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    return pickle.loads(data)


def serve() -> None:
    """The worker process: prepare each batch read on stdin and write the result to stdout,
    until stdin closes (the receiver's process stopped it, or is gone: even a kill -9
    closes the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the receiver's to handle
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            body, encoding, limit = _receive(stdin)  # type: ignore[misc]
        except EOFError:
            return
        try:
            reply: tuple[bool, object] = (True, prepare_batch(body, encoding, limit))
        except RefusedError as refusal:
            reply = (False, refusal)
        except Exception as exc:  # a bug: reported to the receiver, which logs it
            reply = (False, RefusedError(500, "internal_error", f"validation failed ({exc})"))
        try:
            _send(stdout, reply)
        except BrokenPipeError:
            return


class _Worker:
    """One validation process and the pipes to it. Plain pipes, not a process pool: a
    pool's queues hold POSIX semaphores, which a kill -9 of the recorder leaves behind; and
    a process group of its own, so a Ctrl-C meant for `stpe record` never reaches it."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])
        group: dict[str, object] = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
                                    if sys.platform == "win32" else {"start_new_session": True})
        self.process = subprocess.Popen([sys.executable, "-c", _BOOTSTRAP, root],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        **group)  # type: ignore[call-overload]

    def call(self, body: bytes, encoding: str, limit: int) -> PreparedBatch:
        if self.process.stdin is None or self.process.stdout is None:
            raise EOFError("no pipes to the validation process")
        _send(self.process.stdin, (body, encoding, limit))
        ok, value = _receive(self.process.stdout)  # type: ignore[misc]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # the worker reads EOF and exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _calling_thread() -> concurrent.futures.ThreadPoolExecutor:
    """The one thread that talks to the worker, so the event loop never waits on its pipes."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                 thread_name_prefix="stpe-validate")


class BatchValidator:
    """The process-wide validation worker, started on first use and restarted if it dies;
    one batch at a time, in arrival order."""

    _lock = threading.Lock()
    _worker: _Worker | None = None
    _thread = _calling_thread()

    @classmethod
    def start(cls) -> None:
        """Start the worker now, not on the first large batch."""
        with cls._lock:
            if cls._worker is None:
                cls._worker = _Worker()

    @classmethod
    def call(cls, body: bytes, encoding: str, limit: int) -> PreparedBatch:
        with cls._lock:
            if cls._worker is None:
                cls._worker = _Worker()
            worker = cls._worker
            try:
                return worker.call(body, encoding, limit)
            except (EOFError, OSError):
                cls._worker = None
                worker.close()
                raise BrokenPipeError("the validation process stopped") from None

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            worker, cls._worker = cls._worker, None
        if worker is not None:
            worker.close()


atexit.register(BatchValidator.shutdown)


def _own_worker_after_fork() -> None:
    """In a forked child: forget the parent's worker (its pipes stay the parent's, which two
    processes cannot share) and its thread, which did not survive the fork; the child starts
    its own of both on first use."""
    BatchValidator._lock = threading.Lock()
    BatchValidator._worker = None
    BatchValidator._thread = _calling_thread()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_own_worker_after_fork)


async def validate_in_worker(body: bytes, encoding: str, limit: int) -> PreparedBatch:
    """`prepare_batch` in the worker process; a dead worker is a 503 and is replaced."""
    try:
        return await asyncio.get_running_loop().run_in_executor(
            BatchValidator._thread, BatchValidator.call, body, encoding, limit)
    except BrokenPipeError:
        logger.error("the batch validation process died; starting a new one")
        raise RefusedError(503, "validator_restarting", "the receiver's validation process "
                           "stopped and is being restarted; retry the batch") from None
