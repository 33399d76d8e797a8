"""The batch validation worker in a process forked from one that already used it.

The recorder never forks (Studio's platforms have no fork), but a program that embeds the
receiver may: multiprocessing forked by default on Linux before Python 3.14. A forked child
inherits its parent's pipes to the worker, which two processes cannot share, and a thread
pool whose thread did not survive the fork, so its calls would wait forever."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

import orjson
import pytest

from capture._validate import BatchValidator, validate_in_worker
from tests.capture._rx import batch

pytestmark = pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork here")

LIMIT = 1 << 20


def _validated_seqs(session: str, seqs: list[int]) -> tuple[int, ...]:
    body = orjson.dumps(batch(session, seqs))
    return asyncio.run(validate_in_worker(body, "identity", LIMIT)).seqs


def _in_child(results) -> None:
    results.put(_validated_seqs("child", [7, 8]))


def test_a_forked_child_validates_with_a_worker_of_its_own():
    assert _validated_seqs("parent", [1, 2, 3]) == (1, 2, 3)  # the parent's worker runs
    parent_worker = BatchValidator._worker.process.pid
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = fork.Process(target=_in_child, args=(results,))
    child.start()
    try:
        assert results.get(timeout=20) == (7, 8)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    # the parent's worker was neither used up nor closed by the child
    assert BatchValidator._worker.process.pid == parent_worker
    assert _validated_seqs("parent", [4]) == (4,)
