"""Object storage for `--out`: an fsspec URL (s3://, gs://, ...) instead of a folder.

A file written front to back (LeRobot's episode videos) goes straight to the store as it is
written (`Publisher.open`), with no local copy. The other exporters write into a local
staging folder and hand each file over as soon as it is complete (`ExportOptions.on_file`);
the file is uploaded and deleted, so the staging folder holds one shard, Parquet file or
image at a time, never the dataset's images. Whatever is left (metadata, COCO's annotation
JSON, LeRobot's data file, the card) is uploaded last. On failure every uploaded object is
removed again."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pipeline._errors import PipelineError

logger = logging.getLogger(__name__)


def is_url(out: object) -> bool:
    """True for an fsspec URL other than a local file (`file://`)."""
    return isinstance(out, str) and "://" in out and not out.startswith("file://")


class Publisher:
    """Uploads finished files from a staging folder to `url` (relative paths kept)."""

    def __init__(self, url: str, staging: Path) -> None:
        import fsspec

        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise PipelineError(f"cannot write to {url}: {exc} (s3:// needs `pip install "
                                "s3fs`, gs:// needs `pip install gcsfs`)") from None
        self.url, self.staging = url, staging
        self.root = self.root.rstrip("/")
        self.sent: dict[str, int] = {}  # relative path -> bytes

    def check_empty(self) -> None:
        """Refuse a target that already holds objects (nothing is overwritten)."""
        try:
            existing = self.fs.exists(self.root) and self.fs.find(self.root)
        except OSError as exc:
            raise PipelineError(f"cannot reach {self.url}: {exc}") from None
        if existing:
            raise PipelineError(f"{self.url} already holds objects; choose a new --out or "
                                "remove them")

    def send(self, path: Path) -> None:
        """Upload one finished file, then delete the local copy."""
        rel = path.relative_to(self.staging).as_posix()
        size = path.stat().st_size
        self.fs.put_file(str(path), f"{self.root}/{rel}")
        self.sent[rel] = size
        path.unlink()

    def open(self, path: Path) -> _Upload:
        """A file of the output (`path` in the staging folder's terms) written front to back
        straight to the store: uploaded in parts as it is written, nothing staged."""
        rel = path.relative_to(self.staging).as_posix()
        self.sent[rel] = 0  # removed by `abort` even when the write fails part way
        return _Upload(self.fs.open(f"{self.root}/{rel}", "wb"), self.sent, rel)

    def finish(self) -> None:
        """Upload every file still in the staging folder."""
        for path in sorted(p for p in self.staging.rglob("*") if p.is_file()):
            self.send(path)
        self.fs.invalidate_cache()

    def abort(self) -> None:
        """Remove what was uploaded (best effort: an unreachable store is logged)."""
        for rel in self.sent:
            try:
                self.fs.rm_file(f"{self.root}/{rel}")
            except OSError as exc:
                logger.warning("could not remove %s/%s: %s", self.url, rel, exc)
        self.sent.clear()


class _Upload(io.RawIOBase):
    """A write-only, unseekable stream into an object of the store (a multipart upload): it
    tells writers such as the MP4 muxer that they cannot go back, and records the object's
    size in `sent` once closed."""

    def __init__(self, remote: Any, sent: dict[str, int], rel: str) -> None:
        self._remote, self._sent, self._rel, self._bytes = remote, sent, rel, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        count = self._remote.write(data)
        self._bytes += count
        return count

    def close(self) -> None:
        if not self.closed:
            self._remote.close()
            self._sent[self._rel] = self._bytes
        super().close()
