"""The annotation files of one stage in one session, and resumption.

```
<session>/annotations/<stage>/
  shard-00000.safetensors   tensors of the shard (fp16 features, int64 frame indices)
  shard-00000.parquet       table rows of the shard (masks, captions)
  shard-00000.json          sidecar, written last: model id, dtype, settings, the loaded
                            model's record (class, revision/commit hash, attention),
                            frame range, files, counts (its presence marks the shard done)
  meta.json                 model record, settings and the summary of the last run
```

A shard is skipped on a later run when its sidecar exists and records the same model and
settings; a sidecar with other settings is an error rather than a silent mix.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from capture import SessionWriter
from capture import _layout as layout
from pipeline._errors import PipelineError
from pipeline.annotate._registry import ShardOutput

logger = logging.getLogger(__name__)

SIDECAR_SCHEMA = "stpe.annotation/1"


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"


def _safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                metadata=dict(metadata))


def _parquet_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([dict(r) for r in rows]), sink)
    return sink.getvalue()


class StageOutputs:
    """Reads and writes `annotations/<stage>/` of one session through its SessionWriter."""

    def __init__(self, session_path: Path, stage: str, identity: Mapping[str, Any]) -> None:
        self.stage = stage
        self.folder = Path(session_path) / layout.ANNOTATIONS / stage
        self.record = dict(identity)  # model id, dtype, settings: what a shard depends on
        self._writer = SessionWriter.reopen(Path(session_path))

    def _relative(self, name: str) -> str:
        return f"{layout.ANNOTATIONS}/{self.stage}/{name}"

    def is_done(self, shard: int) -> bool:
        """Whether the shard's sidecar exists with this run's model and settings."""
        path = self.folder / f"{shard_name(shard)}.json"
        if not path.is_file():
            return False
        try:
            sidecar = json.loads(path.read_bytes())
        except json.JSONDecodeError:
            logger.warning("%s is corrupt; redoing the shard", path)
            return False
        previous = {k: sidecar.get(k) for k in self.record}
        if previous != self.record:
            changed = [f"{k}: {previous[k]} -> {self.record[k]}" for k in self.record
                       if previous[k] != self.record[k]]
            raise PipelineError(
                f"{path} was made with other options ({'; '.join(changed)}); delete "
                f"{self.folder} to redo the stage, or run with the same options to resume")
        return True

    def write_shard(self, shard: int, frames: Sequence[int], output: ShardOutput,
                    model: Mapping[str, Any]) -> None:
        """Write the shard's data files, then its sidecar (the done marker)."""
        name = shard_name(shard)
        files = []
        if output.tensors:
            self._writer.write_output(self._relative(f"{name}.safetensors"),
                                      _safetensors_bytes(output.tensors, output.metadata))
            files.append(f"{name}.safetensors")
        if output.rows:
            self._writer.write_output(self._relative(f"{name}.parquet"),
                                      _parquet_bytes(output.rows))
            files.append(f"{name}.parquet")
        sidecar = {"schema": SIDECAR_SCHEMA, **self.record, "model": dict(model), "shard": shard,
                   "first_frame": min(frames, default=None),
                   "last_frame": max(frames, default=None), "frames": len(frames),
                   "files": files, "metadata": dict(output.metadata),
                   "counts": dict(output.counts)}
        self._writer.write_output(self._relative(f"{name}.json"), _json_bytes(sidecar))

    def sidecars(self) -> list[dict[str, Any]]:
        """Every shard sidecar of the stage, in shard order."""
        return [json.loads(p.read_bytes()) for p in sorted(self.folder.glob("shard-*.json"))]

    def write_meta(self, model: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
        meta = {"schema": SIDECAR_SCHEMA, **self.record, "model": dict(model),
                "summary": dict(summary)}
        self._writer.write_output(self._relative("meta.json"), _json_bytes(meta))
        return meta
