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
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

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


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when the receiver's process is gone (even after
    a kill -9, which gives the pool no chance to stop its worker)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="stpe-parent-watch", daemon=True).start()


class BatchValidator:
    """The process-wide validation worker, started on first use and restarted if it dies."""

    _lock = threading.Lock()
    _pool: concurrent.futures.ProcessPoolExecutor | None = None

    @classmethod
    def executor(cls) -> concurrent.futures.ProcessPoolExecutor:
        with cls._lock:
            if cls._pool is None:
                cls._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent, initargs=(os.getpid(),))
                cls._pool.submit(int)  # start the worker now, not on the first batch
            return cls._pool

    @classmethod
    def discard(cls, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """Forget a broken pool so the next batch starts a fresh worker."""
        with cls._lock:
            if cls._pool is pool:
                cls._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            pool, cls._pool = cls._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


atexit.register(BatchValidator.shutdown)


async def validate_in_worker(body: bytes, encoding: str, limit: int) -> PreparedBatch:
    """`prepare_batch` in the worker process; a dead worker is a 503 and is replaced."""
    pool = BatchValidator.executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(
            pool, prepare_batch, body, encoding, limit)
    except BrokenProcessPool:
        logger.error("the batch validation process died; starting a new one")
        BatchValidator.discard(pool)
        raise RefusedError(503, "validator_restarting", "the receiver's validation process "
                           "stopped and is being restarted; retry the batch") from None
