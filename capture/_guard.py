"""The receiver's boundary: who may talk to it, how big a body may be, what counts as valid.

Every refusal is a `RefusedError` carrying its HTTP status and a JSON `ErrorReply`; the receiver
turns it into a response and writes nothing to the session.
"""

from __future__ import annotations

import hmac
import zlib
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from capture._errors import ReceiverError
from capture._wire import ErrorBody, ErrorReply

M = TypeVar("M", bound=BaseModel)

TOKEN_HEADER = "X-STPE-Token"
ALLOWED_HOSTS = frozenset({"localhost", "127.0.0.1"})


class RefusedError(ReceiverError):
    """A request the receiver refuses: its HTTP status and the error it answers with."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.path = path

    def __reduce__(self) -> tuple[type[RefusedError], tuple[int, str, str, str | None]]:
        # raised in the validation process and re-raised here: pickle every field
        return (type(self), (self.status, self.code, str(self), self.path))

    def reply(self) -> bytes:
        body = ErrorReply(error=ErrorBody(code=self.code, message=str(self), path=self.path))
        return body.model_dump_json().encode()


def _host_name(host: str) -> str:
    """The name part of a Host header: `127.0.0.1:34873` -> `127.0.0.1`."""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return name
    return host


def check_caller(request: web.Request, token: str | None) -> None:
    """Refuse browsers, foreign Host names (DNS rebinding) and a missing or wrong token."""
    if "Origin" in request.headers or request.headers.get("Sec-Fetch-Site", "none") != "none":
        raise RefusedError(403, "browser_refused",
                      "requests from a web page (an Origin header) are refused; the receiver "
                      "only accepts the Roblox Studio plugin and local tools")
    host = request.headers.get("Host", "")
    if _host_name(host).lower() not in ALLOWED_HOSTS:
        raise RefusedError(403, "host_refused",
                      f"Host {host!r} is refused; expected localhost or 127.0.0.1 (any port)")
    if token is not None:
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
            state = "missing" if not given else "wrong"
            raise RefusedError(401, "token_refused",
                          f"the {TOKEN_HEADER} header is {state}; set the plugin's token to the "
                          "one the receiver was started with")


def check_json_type(request: web.Request) -> None:
    """Refuse bodies that are not declared as JSON."""
    if request.content_type != "application/json":
        raise RefusedError(415, "unsupported_media_type",
                      f"content type {request.content_type!r} is not supported; "
                      "send Content-Type: application/json")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise RefusedError(415, "unsupported_encoding",
                      f"content encoding {encoding!r} is not supported; send gzip or identity")


def too_large(what: str, limit: int) -> RefusedError:
    return RefusedError(413, "body_too_large",
                   f"the {what} body exceeds {limit} bytes; send smaller batches")


def decode_body(data: bytes, encoding: str, limit: int) -> bytes:
    """Undo a gzip Content-Encoding, refusing past `limit` decoded bytes without inflating
    further (a gzip bomb costs at most `limit` bytes of memory)."""
    if encoding.strip().lower() != "gzip":
        return data
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise RefusedError(400, "bad_gzip", f"the gzip body is corrupt ({exc}); "
                      "compress the whole body with gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large("decompressed", limit)
    if not inflater.eof:
        raise RefusedError(400, "bad_gzip", "the gzip body is truncated; send the whole stream")
    if inflater.unused_data:
        raise RefusedError(400, "bad_gzip", "data follows the gzip stream; send one gzip member")
    return out


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse(model: type[M], raw: bytes) -> M:
    """Validate `raw` JSON against `model` (strict types: numbers must be JSON numbers).

    Malformed JSON is a 400; a schema violation, NaN or infinity is a 422 naming the field.
    """
    return validate_json(model.__pydantic_validator__, model.__name__, raw)


def validate_json(validator: SchemaValidator, name: str, raw: bytes) -> Any:
    """`parse` with any validator of the model called `name` (capture._fastwire's too)."""
    try:
        return validator.validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise RefusedError(400, "invalid_json",
                          f"the body is not valid JSON: {first['msg']}") from None
        path = _dotted(first["loc"])
        count = exc.error_count()
        more = f" (and {count - 1} more)" if count > 1 else ""
        raise RefusedError(422, "invalid_" + name.lower(),
                      f"{path or 'body'}: {first['msg']}{more}; expected a valid "
                      f"{name} (see docs/protocol.md)", path or None) from None
