"""Errors raised by the capture package.

    CaptureError
     +-- SessionError        a session on disk is missing, malformed or in the wrong state
     |    +-- StorageError   a session file could not be written (disk full, I/O error)
     +-- RecorderError       the screen could not be grabbed or the video not encoded
     +-- ReceiverError       the receiver could not start, or a request to it was refused
     +-- PluginError         the simulated plugin was misused or cannot reach the receiver
"""

from __future__ import annotations


class CaptureError(Exception):
    """Base of every error the capture package raises on purpose."""

    exit_code = 1


class SessionError(CaptureError):
    """A session on disk is missing, malformed or in the wrong state for the operation."""


class StorageError(SessionError):
    """A session file could not be written (disk full, I/O error): nothing of the failed
    write was kept, and the session accepts no more writes. Exit code 74 (EX_IOERR)."""

    exit_code = 74


class RecorderError(CaptureError):
    """The screen could not be grabbed or the video could not be encoded."""


class ReceiverError(CaptureError):
    """The receiver could not start (port taken, bad address) or a request was refused."""


class PluginError(CaptureError):
    """The simulated plugin was given a bad sample or cannot reach the receiver."""
