"""An asyncio server on its own event loop in a daemon thread, for synchronous callers
(the recorder, the CLI, tests): the receiver and `stpe serve` both run this way."""

from __future__ import annotations

import asyncio
import logging
import threading

logger = logging.getLogger(__name__)


class LoopThread:
    """Runs `_serve` in a daemon thread. `_launch()` returns once `_serve` has called
    `_bound()` (or with the exception it raised before); `stop()` sets the event `_serve`
    waits on and joins the thread; it is idempotent."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    async def _serve(self, stopping: asyncio.Event) -> None:
        """Bind, call `_bound()`, serve until `stopping` is set, then clean up."""
        raise NotImplementedError

    def _bound(self) -> None:
        self._ready.set()

    def _launch(self) -> BaseException | None:
        """Start the thread; None once bound, else what stopped `_serve` from binding."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
        return self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to _launch(), or logged if it was serving
            if self._ready.is_set():
                logger.exception("the %s thread failed", self._name)
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._serve(self._stopping)

    def stop(self) -> None:
        """Stop serving and wait for the thread. Safe to call twice."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join()
