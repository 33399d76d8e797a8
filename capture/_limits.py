"""The receiver's resource limits: how many connections it holds, how long a client may
take to send its headers and body, and how many body bytes may be in flight at once.

`ConnectionGate` makes the protocol for each accepted connection. At the connection limit
the longest-connected one that has not yet sent a whole request header is closed to make
room (so idle or slow connections cannot lock out the plugin or /v1/health); if every
connection is busy, the new one is answered 503 and closed. A connection that sends no
complete header within the header time is closed. Every answer it makes itself, and every
malformed-HTTP answer of aiohttp's, is a JSON ErrorReply.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import BaseRequest

from capture._errors import ReceiverError
from capture._guard import RefusedError, too_large

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients may hold of the receiver (docs/protocol.md, "Limits")."""

    max_connections: int = 256
    max_bytes_in_flight: int = 64 * 1024 * 1024  # request bodies being read, all together
    header_timeout_s: float = 10.0  # connect (or the previous answer) to a whole header
    body_timeout_s: float = 30.0  # whole header to whole body
    keepalive_s: float = 30.0  # an idle connection between requests
    stop_grace_s: float = 2.0  # on stop: requests in progress may finish, then are cut

    def __post_init__(self) -> None:
        if self.max_connections < 2 or self.max_bytes_in_flight < 1:
            raise ReceiverError(f"max_connections={self.max_connections}, max_bytes_in_flight="
                                f"{self.max_bytes_in_flight}: need at least 2 and 1")
        if min(self.header_timeout_s, self.body_timeout_s, self.keepalive_s,
               self.stop_grace_s) <= 0:
            raise ReceiverError("the header, body, keep-alive and stop times must be positive")


class _JsonErrors(web.RequestHandler):
    """aiohttp's connection handler, answering its own refusals (malformed request line or
    headers, headers too large) as a JSON ErrorReply, logged as one line."""

    def __init__(self, gate: ConnectionGate, **options: Any) -> None:
        super().__init__(gate._server, loop=gate._loop, **options)
        self._gate = gate

    def connection_lost(self, exc: BaseException | None) -> None:
        transport = self.transport
        super().connection_lost(exc)
        if transport is not None:
            self._gate._lost(transport)

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already sent; cannot send the error")
        why = message or (str(exc) if exc else "") or "malformed request"
        logger.info("refused a malformed HTTP request (%d): %s", status, why.splitlines()[0])
        refusal = RefusedError(status, "bad_http" if status < 500 else "internal_error",
                               f"the request is not valid HTTP/1.1 ({why.splitlines()[0]}); "
                               "see docs/protocol.md")
        response = web.Response(status=status, body=refusal.reply(),
                                content_type="application/json")
        response.force_close()
        return response


class _Busy(asyncio.Protocol):
    """Answers 503 (as JSON) and closes: every connection slot holds a request."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._gate._made(transport)
        body = RefusedError(503, "too_many_connections",
                            "the receiver holds its maximum of connections, all busy; "
                            "retry shortly").reply()
        head = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(head + body)
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._gate._lost(self._transport)


class _Pending(asyncio.Protocol):
    """A connection that has sent nothing yet: it costs a transport and this object only.
    Its first bytes hand it to aiohttp's handler."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._gate._made(transport)
        if isinstance(transport, asyncio.Transport):
            self._transport = transport
            self._gate._opened(transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._transport = None
        self._gate._pending -= 1
        handler = self._gate._handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)

    def eof_received(self) -> bool:
        return False  # nothing was sent: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._gate._pending -= 1
            self._gate._silent.pop(self._transport, None)
            self._gate._lost(self._transport)
            self._transport = None


class ConnectionGate:
    """Makes each connection's protocol within `limits` (see the module docstring)."""

    def __init__(self, server: web.Server, limits: Limits) -> None:
        self._server = server
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        # connections that have not sent a whole header yet, oldest first
        self._silent: collections.OrderedDict[asyncio.Transport, None] = (
            collections.OrderedDict())
        self._pending = 0  # connections not yet handed to aiohttp
        # every transport until its connection is lost, whoever's protocol it has by then
        self._open: set[asyncio.BaseTransport] = set()
        self._accepting = 0  # protocols made for accepted sockets still without a transport
        self._in_flight = 0
        self.refused = 0
        self.evicted = 0

    @property
    def connections(self) -> int:
        return self._pending + len(self._server.connections)

    @property
    def bytes_in_flight(self) -> int:
        return self._in_flight

    def __call__(self) -> asyncio.BaseProtocol:
        self._accepting += 1
        full = self.connections + 1 > self._limits.max_connections
        if full and not self._evict_silent():
            self.refused += 1
            return _Busy(self)
        return _Pending(self)

    def _made(self, transport: asyncio.BaseTransport) -> None:
        self._accepting -= 1
        self._open.add(transport)

    def _opened(self, transport: asyncio.Transport) -> None:
        self._pending += 1
        self._silent[transport] = None
        self._loop.call_later(self._limits.header_timeout_s, self._expire, transport)

    def _handler(self) -> _JsonErrors:
        return _JsonErrors(self, access_log=None, keepalive_timeout=self._limits.keepalive_s,
                           auto_decompress=False)

    def _evict_silent(self) -> bool:
        while self._silent:
            transport, _ = self._silent.popitem(last=False)
            if not transport.is_closing():
                self.evicted += 1
                transport.close()
                return True
        return False

    def _expire(self, transport: asyncio.Transport) -> None:
        if self._silent.pop(transport, 0) is None and not transport.is_closing():
            logger.info("closed a connection that sent no request header in %.0f s",
                        self._limits.header_timeout_s)
            transport.close()

    def close_silent(self) -> None:
        """Close every connection that has not sent a whole header (on stop)."""
        while self._silent:
            transport, _ = self._silent.popitem(last=False)
            transport.close()

    def _lost(self, transport: asyncio.BaseTransport) -> None:
        self._open.discard(transport)

    @property
    def accepting(self) -> int:
        """Accepted sockets whose transport is still being made."""
        return self._accepting

    @property
    def unfinished(self) -> int:
        """Connections not yet closed: accepted sockets still getting their transport (a
        listener closed just now can still be creating some) and transports that have not
        yet reported their connection lost."""
        return self._accepting + len(self._open)

    def close_all(self) -> None:
        """Close every connection still open (on stop, after aiohttp's own shutdown, which
        forgets its connections before their transports have finished closing)."""
        for transport in list(self._open):
            transport.abort()  # nobody reads what is left to send: drop it now

    def request_started(self, request: web.Request) -> None:
        """A whole header arrived on the request's connection: it is no longer silent."""
        if request.transport is not None:
            self._silent.pop(request.transport, None)  # type: ignore[call-overload]

    def _reserve(self, size: int) -> None:
        """Count `size` more body bytes in flight, or refuse (503) past the limit."""
        if self._in_flight + size > self._limits.max_bytes_in_flight:
            raise RefusedError(503, "busy",
                               f"{self._in_flight} request bytes are being received, the "
                               f"most the receiver holds is {self._limits.max_bytes_in_flight}"
                               "; retry shortly")
        self._in_flight += size

    async def read_body(self, request: web.Request, limit: int) -> bytes:
        """The raw request body (still compressed if it was): refused past `limit` bytes
        without reading the rest (413), past the body time (408), or when the bytes in
        flight would pass their limit (503); a client gone mid-body is a 400 nobody reads."""
        length = request.content_length
        if length is not None and length > limit:
            raise too_large("request", limit)
        data = bytearray()
        reserved = 0
        try:
            async with asyncio.timeout(self._limits.body_timeout_s):
                if length is not None:
                    self._reserve(length)
                    reserved = length
                while chunk := await request.content.read(_CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise too_large("request", limit)
                    if len(data) > reserved:
                        self._reserve(len(data) - reserved)
                        reserved = len(data)
        except TimeoutError:
            raise RefusedError(408, "body_timeout",
                               f"the body did not arrive within {self._limits.body_timeout_s:g}"
                               f" s ({len(data)} of {length or '?'} bytes); send it "
                               "whole") from None
        except (ConnectionError, ClientError, HttpProcessingError):
            raise RefusedError(400, "client_disconnected",
                               f"the client disconnected after {len(data)} of "
                               f"{length or '?'} body bytes") from None
        finally:
            self._in_flight -= reserved
        return bytes(data)
