"""What every route of `stpe serve` shares: the sessions folder, the server's own work
folder, and the one way to turn a session id from a URL into a folder.

```
<sessions>/                 the folder `stpe serve --sessions` points at
  <session id>/             a session (session.json inside), read through capture.Session
  .stpe-serve/              the server's own files: jobs, uploads, caches (never in a session)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from capture._guard import RefusedError
from capture._layout import MANIFEST

WORK_DIR = ".stpe-serve"
_MAX_ID = 255  # a file name on every platform Studio runs on


@dataclass(frozen=True)
class ServeContext:
    """The folders one running server works with."""

    sessions_dir: Path
    work_dir: Path

    @classmethod
    def for_sessions(cls, sessions_dir: Path) -> ServeContext:
        """The context for `sessions_dir` (made absolute), working in its `.stpe-serve/`."""
        root = Path(sessions_dir).resolve()
        return cls(sessions_dir=root, work_dir=root / WORK_DIR)


def not_found(what: str) -> RefusedError:
    return RefusedError(404, "not_found", what)


def resolve_session(ctx: ServeContext, session_id: str) -> Path:
    """The folder of session `session_id`: a direct child of the sessions folder holding a
    manifest. Anything else (`..`, separators, absolute paths, a link leading out of the
    folder, hidden names) is a 404 `RefusedError`, saying nothing of what exists outside."""
    refused = not_found(f"no session {session_id!r} in the sessions folder; pick one from "
                        "/api/sessions")
    if (not session_id or len(session_id) > _MAX_ID or session_id.startswith(".")
            or any(c in session_id for c in "/\\:\0") or not session_id.isprintable()):
        raise refused
    root = ctx.sessions_dir.resolve()
    try:
        folder = (root / session_id).resolve(strict=True)
    except (OSError, RuntimeError):
        raise refused from None
    if folder.parent != root or not folder.is_dir():
        raise refused
    if not (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        raise refused
    return folder


def session_file(folder: Path, name: str) -> Path:
    """`folder / name` when it is a regular file inside `folder` (not a link out of it);
    a 404 `RefusedError` otherwise. `name` is one of the layout's names, never user text."""
    path = folder / name
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise not_found(f"the session has no {name}") from None
    if real.parent != folder.resolve() or not real.is_file():
        raise not_found(f"the session has no {name}")
    return real
