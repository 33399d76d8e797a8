"""`stpe serve`: a local web app to browse sessions and play them with their labels."""

from serve._app import make_app
from serve._context import ServeContext, resolve_session
from serve._server import ServeError, ServeThread

__all__ = ["ServeContext", "ServeError", "ServeThread", "make_app", "resolve_session"]
