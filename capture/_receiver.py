"""The receiver: an aiohttp server on loopback that speaks wire protocol v1 and appends
what the plugin sends to one recording session.

The event loop only reads bodies and answers. Large sample batches are decoded, validated
and serialized in a worker process (`capture._validate`: CPU work there cannot stall the
loop), small ones on the writer thread;
disk writes run on one worker thread, so log lines stay in arrival order, and every answer
is sent after its data is in the OS, so an acknowledged sample survives a crash of ours.
`ReceiverThread` runs a `Receiver` on its own loop in a daemon thread for synchronous code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from capture._errors import ReceiverError
from capture._guard import RefusedError, check_caller, check_json_type
from capture._ingest import Arrival, Ingest, ReceiverStats
from capture._limits import ConnectionGate, Limits
from capture._loop_thread import LoopThread
from capture._store import SessionWriter, tool_version
from capture._validate import BatchValidator, prepare_batch, validate_in_worker
from capture._wire import Health, SyncReply

logger = logging.getLogger(__name__)

DEFAULT_PORT = 34873
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
SMALL_BODY_BYTES = 16 * 1024  # hello, sync and bye bodies
# batches up to this decoded size are validated on the writer thread (holding the interpreter
# lock, and so the event loop, for about a millisecond); larger ones in the validation process
INLINE_BATCH_BYTES = 64 * 1024
QUIET_CHECK_S = 1.0  # how often to look for a Play that went quiet

# asyncio accepts up to `backlog` connections in one go: a small burst keeps a flood of new
# connections from delaying the answers on open ones (a flood's extra SYNs wait in the kernel)
_ACCEPT_BURST = 8

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _decoded_size_hint(body: bytes, encoding: str) -> int:
    """The body's size once decoded: a gzip stream states it (mod 2**32) in its last four
    bytes, so no inflating is needed to choose where to validate it."""
    if encoding.strip().lower() != "gzip":
        return len(body)
    if len(body) < 18:  # shorter than any gzip stream: let validation refuse it
        return len(body)
    return max(int.from_bytes(body[-4:], "little"), len(body))


def _check_host(host: str) -> None:
    name = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ReceiverError(f"host {host!r} is not a loopback address; the receiver binds "
                            "127.0.0.1 only so that nothing outside this machine can reach it")


class Receiver:
    """Receives plugin batches over HTTP on loopback and appends them to `writer`'s session.

    Use `await start()` / `await stop()` inside a running event loop, or `ReceiverThread`.
    """

    def __init__(self, writer: SessionWriter, *, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, token: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 limits: Limits | None = None) -> None:
        _check_host(host)
        if not 0 <= port <= 65535:
            raise ReceiverError(f"port {port} is out of range; use 0..65535 (0 picks a free one)")
        if max_body_bytes < SMALL_BODY_BYTES:
            raise ReceiverError(f"max_body_bytes={max_body_bytes} is too small; "
                                f"use at least {SMALL_BODY_BYTES}")
        if token is not None and not (token.isascii() and token.isprintable() and token):
            raise ReceiverError("the token must be a non-empty string of printable ASCII "
                                "characters (it travels in an HTTP header), or None")
        self._host = host
        self._requested_port = port
        self._token = token
        self._limit = max_body_bytes
        self._limits = limits or Limits()
        self._ingest = Ingest(writer, max_body_bytes)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._gate: ConnectionGate | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._port: int | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        if self._port is None:
            raise ReceiverError("the receiver is not started; call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def gate(self) -> ConnectionGate:
        """The connection limits in force (counts of connections held, evicted, refused)."""
        if self._gate is None:
            raise ReceiverError("the receiver is not started; call start() first")
        return self._gate

    @property
    def stats(self) -> ReceiverStats:
        return self._ingest.stats(time.perf_counter_ns())

    async def start(self) -> None:
        """Bind and start serving; raises ReceiverError if the port cannot be bound."""
        if self._runner is not None:
            raise ReceiverError("the receiver is already started")
        app = web.Application(middlewares=[self._refusals])
        app.router.add_get("/v1/health", self._health)
        app.router.add_post("/v1/hello", self._hello)
        app.router.add_post("/v1/samples", self._samples)
        app.router.add_post("/v1/sync", self._sync)
        app.router.add_post("/v1/bye", self._bye)
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               auto_decompress=False,
                               shutdown_timeout=self._limits.stop_grace_s)
        await runner.setup()
        if runner.server is None:
            raise ReceiverError("the HTTP server did not start")
        gate = ConnectionGate(runner.server, self._limits)
        try:
            # the gate makes each connection's protocol: aiohttp's, within the limits
            listener = await asyncio.get_running_loop().create_server(
                gate, self._host, self._requested_port,
                backlog=_ACCEPT_BURST)
        except OSError as exc:
            await runner.cleanup()
            raise ReceiverError(f"cannot listen on {self._host}:{self._requested_port} ({exc}); "
                                "is another receiver running? stop it or choose another "
                                "port") from None
        self._runner, self._listener, self._gate = runner, listener, gate
        self._port = listener.sockets[0].getsockname()[1]
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="stpe-receiver-writer")
        self._watch = asyncio.get_running_loop().create_task(self._close_quiet_plays())
        # the validation process, started beside the receiver (not delaying it) before the
        # first large batch
        threading.Thread(target=BatchValidator.start, name="stpe-validate-start",
                         daemon=True).start()
        logger.info("receiver listening on %s for session %s", self.url,
                    self._ingest.session_id)

    async def stop(self) -> None:
        """Stop serving and wait for pending writes. Safe to call twice."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
        self._stopping = True
        listener, self._listener = self._listener, None
        if listener is not None:
            await self._stop_accepting(listener)
            listener.close()
        if self._gate is not None:
            self._gate.close_silent()
            await asyncio.sleep(0)  # the closes complete
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._gate is not None:
            # e.g. a refused body still lingering; sockets accepted before the listener closed
            # can still get their transport on a loaded host, so close until none is left
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._limits.stop_grace_s
            while True:
                self._gate.close_all()
                await asyncio.sleep(0.01)  # the closes complete
                if not self._gate.unfinished:
                    break
                if loop.time() > deadline:
                    logger.warning("%d connections did not close on stop",
                                   self._gate.unfinished)
                    break
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)

    async def _stop_accepting(self, listener: asyncio.Server) -> None:
        """Take no new connection, and let those accepted just now (a burst at most) get
        their transport before the listener closes: a closed asyncio Server refuses to
        attach a transport still being made, and its socket is then left open."""
        loop = asyncio.get_running_loop()
        for sock in listener.sockets:
            with contextlib.suppress(NotImplementedError):  # the proactor loop (Windows)
                loop.remove_reader(sock.fileno())
        deadline = loop.time() + self._limits.stop_grace_s
        while True:
            await asyncio.sleep(0.01)
            if self._gate is None or not self._gate.accepting or loop.time() > deadline:
                break

    @web.middleware
    async def _refusals(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Check the caller first; answer every refusal and HTTP error as a JSON ErrorReply."""
        try:
            if self._gate is not None:
                self._gate.request_started(request)
            check_caller(request, self._token)
            return await handler(request)
        except RefusedError as refusal:
            logger.info("refused %s %s: %s", request.method, request.path, refusal)
            return _json(refusal.reply(), refusal.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            refusal = RefusedError(exc.status, code,
                              f"{request.method} {request.path}: {exc.reason}; "
                              "see docs/protocol.md for the endpoints")
            response = _json(refusal.reply(), exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            logger.exception("receiver failed on %s %s", request.method, request.path)
            refusal = RefusedError(500, "internal_error",
                                   f"the receiver failed ({type(exc).__name__}); retry, and "
                                   "check the receiver's log")
            return _json(refusal.reply(), 500)

    async def _close_quiet_plays(self) -> None:
        """Records the end of a Play that went quiet (a Play may stop without a bye)."""
        while True:
            await asyncio.sleep(QUIET_CHECK_S)
            try:
                await self._work(self._ingest.close_quiet, time.perf_counter_ns())
            except RefusedError:
                return

    async def _work(self, fn: Callable[..., Any], *args: Any) -> Any:
        stopping = RefusedError(503, "stopping", "the receiver is stopping; retry later")
        if self._executor is None:
            raise stopping
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except RefusedError:
            raise
        except RuntimeError:  # the writer was shut down while this request waited
            if self._stopping:
                raise stopping from None
            raise
        except Exception as exc:
            logger.exception("receiver failed to store a request")
            raise RefusedError(500, "internal_error",
                          f"the receiver failed to store the request ({exc}); retry, and "
                          "check the receiver's log") from None

    async def _body(self, request: web.Request, limit: int) -> tuple[bytes, str, Arrival]:
        check_json_type(request)
        body = await self._read_body(request, limit)
        arrival = Arrival(time.perf_counter_ns(), time.time_ns())
        return body, request.headers.get("Content-Encoding", "identity"), arrival

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        if self._gate is None:
            raise RefusedError(503, "stopping", "the receiver is stopping; retry later")
        return await self._gate.read_body(request, limit)

    async def _health(self, request: web.Request) -> web.Response:
        recording = not self._ingest.closed
        health = Health(receiver_version=tool_version(), recording=recording,
                        session=self._ingest.session_id if recording else None)
        return _json(health.model_dump_json().encode())

    async def _hello(self, request: web.Request) -> web.Response:
        reply = await self._work(self._ingest.hello, *await self._body(request, SMALL_BODY_BYTES))
        return _json(reply.model_dump_json().encode())

    async def _bye(self, request: web.Request) -> web.Response:
        reply = await self._work(self._ingest.bye, *await self._body(request, SMALL_BODY_BYTES))
        return _json(reply.model_dump_json().encode())

    async def _samples(self, request: web.Request) -> web.Response:
        body, encoding, arrival = await self._body(request, self._limit)
        stored = None
        if _decoded_size_hint(body, encoding) <= INLINE_BATCH_BYTES:
            # ~1 ms of validation: cheaper than a hand-off; None if it decodes larger
            stored = await self._work(self._store_small_batch, body, encoding, arrival)
        if stored is None:
            prepared = await validate_in_worker(body, encoding, self._limit)
            stored = await self._work(self._ingest.batch, prepared, arrival)
        # a BatchReply, formatted directly: it is on every batch's critical path
        reply = b'{"stored_through":%d,"accepted":%d,"duplicates":%d}' % stored
        return _json(reply)

    def _store_small_batch(self, body: bytes, encoding: str,
                           arrival: Arrival) -> tuple[int, int, int] | None:
        """Store a batch whose decoded size is small, decoding at most that much here (the
        size a gzip trailer states may lie); None when it is larger after all."""
        try:
            prepared = prepare_batch(body, encoding, INLINE_BATCH_BYTES)
        except RefusedError as refusal:
            if refusal.code == "body_too_large":
                return None
            raise
        return self._ingest.batch(prepared, arrival)

    async def _sync(self, request: web.Request) -> web.Response:
        t1_ns = time.perf_counter_ns()
        check_json_type(request)
        body = await self._read_body(request, SMALL_BODY_BYTES)
        # A probe body is a few dozen bytes: decoding it here costs microseconds and keeps
        # the probe out of the writer's queue, so its answer is not delayed by a big batch.
        probe = self._ingest.sync(body, request.headers.get("Content-Encoding", "identity"))
        reply = SyncReply(t0=probe.t0, t1_ns=t1_ns, t2_ns=time.perf_counter_ns(), id=probe.id)
        return _json(reply.model_dump_json().encode())



class ReceiverThread(LoopThread):
    """A `Receiver` on its own event loop in a daemon thread, for synchronous callers.

    ``with ReceiverThread(writer, port=0) as rx: ...`` starts it (returning once bound) and
    stops it on exit; `stop()` waits for pending writes and is idempotent.
    """

    def __init__(self, writer: SessionWriter, **options: Any) -> None:
        super().__init__("stpe-receiver")
        self._receiver = Receiver(writer, **options)

    @property
    def receiver(self) -> Receiver:
        return self._receiver

    @property
    def port(self) -> int:
        return self._receiver.port

    @property
    def url(self) -> str:
        return self._receiver.url

    @property
    def stats(self) -> ReceiverStats:
        return self._receiver.stats

    def start(self) -> ReceiverThread:
        """Start serving; returns once the port is bound (raises ReceiverError if not)."""
        if self.started:
            raise ReceiverError("the receiver thread is already started")
        error = self._launch()
        if error is not None:
            raise error
        return self

    async def _serve(self, stopping: asyncio.Event) -> None:
        await self._receiver.start()
        self._bound()
        try:
            await stopping.wait()
        finally:
            await self._receiver.stop()

    def __enter__(self) -> ReceiverThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
