"""Search by example frame: the frames whose DINOv3 embedding (the `cls` vector `stpe
annotate --stages embed` writes to `annotations/embed/shard-*.safetensors`) is nearest, by
cosine similarity, to the example's, across every session that has embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capture._layout import ANNOTATIONS

VECTOR = "cls"


class NoEmbeddingsError(LookupError):
    """No session has embeddings, or the example frame has none."""


@dataclass(frozen=True)
class Similar:
    """A frame and its cosine similarity to the example."""

    session: str
    frame: int
    score: float


def embedding_shards(session: Path) -> list[Path]:
    """The embed stage's tensor shards of a session (empty without embeddings)."""
    return sorted((session / ANNOTATIONS / "embed").glob("shard-*.safetensors"))


def load_embeddings(session: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frame_index [N] int64, unit vectors [N, D] float32) of a session's embed stage."""
    from safetensors.numpy import load_file

    frames, vectors = [], []
    for shard in embedding_shards(session):
        tensors = load_file(str(shard))
        frames.append(tensors["frame_index"].astype(np.int64))
        vectors.append(tensors[VECTOR].astype(np.float32))
    if not frames:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    matrix = np.concatenate(vectors)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.concatenate(frames), matrix / np.where(norms > 0, norms, 1.0)


def similar_frames(sessions: Mapping[str, Path], example: tuple[str, int], limit: int
                   ) -> list[Similar]:
    """The `limit` frames most similar to `example` (session id, frame), best first (the
    example itself included, with score 1)."""
    loaded = {sid: load_embeddings(path) for sid, path in sorted(sessions.items())
              if embedding_shards(path)}
    if not loaded:
        raise NoEmbeddingsError("no embeddings in these sessions; run `stpe annotate "
                                "--stages embed` on them first")
    sid, frame = example
    if sid not in loaded or frame not in loaded[sid][0]:
        raise NoEmbeddingsError(f"frame {frame} of {sid} has no embedding; pick a frame of a "
                                f"session with embeddings ({', '.join(loaded)})")
    frames, vectors = loaded[sid]
    query = vectors[int(np.flatnonzero(frames == frame)[0])]
    found: list[Similar] = []
    for name, (frames, vectors) in loaded.items():
        if vectors.shape[1] != query.shape[0]:
            continue  # another model's embeddings: not comparable
        scores = vectors @ query
        found += [Similar(name, int(f), float(s)) for f, s in zip(frames, scores, strict=True)]
    found.sort(key=lambda s: (-s.score, s.session, s.frame))
    return found[:limit]
