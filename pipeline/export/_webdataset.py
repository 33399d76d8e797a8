"""WebDataset: tar shards of `{key}.jpg` + `{key}.json` + `{key}.vector.npy` (the state
then the action vector, float32), each shard capped at `--shard-size` MB. Tar members
carry fixed owners and times, so the same input gives the same bytes."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipeline.export._records import iter_records, jpeg, key
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images

SHARD = "{split}-{index:06d}.tar"


class ShardWriter:
    """Writes members into numbered tar shards, starting a new shard before one would pass
    `max_bytes` (a sample is never split across shards)."""

    def __init__(self, root: Path, max_bytes: int, split: str = "train",
                 finished: Callable[[Path], None] | None = None) -> None:
        self.root, self.max_bytes, self.split = root, max_bytes, split
        self.finished = finished  # called with each shard once it is closed
        self.shards: list[Path] = []
        self._tar: tarfile.TarFile | None = None
        self._size = 0

    def _open(self) -> tarfile.TarFile:
        path = self.root / SHARD.format(split=self.split, index=len(self.shards))
        self.shards.append(path)
        self._size = 1024  # the end-of-archive blocks
        return tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)

    def write(self, members: Sequence[tuple[str, bytes]]) -> None:
        size = sum(512 + -(-len(d) // 512) * 512 for _, d in members)
        if self._tar is None or (self._size + size > self.max_bytes and self._size > 1024):
            self.close()
            self._tar = self._open()
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
        self._size += size

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
            if self.finished is not None:
                self.finished(self.shards[-1])


def npy(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


@register("webdataset")
def export_webdataset(sessions: Sequence[SessionData], root: Path,
                      options: ExportOptions) -> dict[str, Any]:
    """Write WebDataset tar shards `<split>-NNNNNN.tar` into `root` (sessions come grouped
    by split, so one shard is open at a time)."""
    writers: dict[str, ShardWriter] = {}
    samples = 0
    try:
        for s in sessions:
            if s.split not in writers:
                for done in writers.values():
                    done.close()
                writers[s.split] = ShardWriter(root, int(options.shard_mb * 1024 * 1024),
                                               s.split, options.finished)
            writer = writers[s.split]
            for (row, image), record in zip(iter_images(s, options), iter_records(s),
                                            strict=True):
                k = key(s, record["frame_index"])
                vector = np.concatenate([s.state[row], s.action[row]])
                writer.write([
                    (f"{k}.jpg", jpeg(image)),
                    # keys in vector order; orjson writes NaN and infinities as null
                    (f"{k}.json", orjson.dumps(record)),
                    (f"{k}.vector.npy", npy(vector))])
                samples += 1
    finally:
        for writer in writers.values():
            writer.close()
    return {"samples": samples, "shards": sum(len(w.shards) for w in writers.values())}
