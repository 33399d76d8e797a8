"""`align_session` end to end on a session written to disk, against what a user would write
with pandas: read state.jsonl and frames.jsonl, `merge_asof` the frames' wall times onto the
samples' wall_ms (nearest, 50 ms tolerance), write the result as Parquet.

Ours reads the logs, fits the clock, matches, interpolates every state column (slerp for
every cframe, entities included) and writes aligned.parquet. The capture is simulated with
known truth (alignment.simulate_capture; no video, so the clock path is what is measured),
so both are also scored on wrong mappings.

    python benchmarks/align_session.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alignment import align_session, read_aligned, simulate_capture
from tests.alignment._sessions import write_session


def pandas_align(path: Path, out: Path) -> np.ndarray:
    """The peer: the seq each frame is matched to (-1 when none)."""
    lines = pd.read_json(path / "state.jsonl", lines=True)
    state = pd.json_normalize(lines["sample"].tolist())
    state["time"] = state["wall_ms"].astype("int64") * 1_000_000
    frames = pd.read_json(path / "frames.jsonl", lines=True)
    frames["time"] = frames["wall_ns"].astype("int64")
    merged = pd.merge_asof(frames.sort_values("time"), state.sort_values("time"), on="time",
                           direction="nearest", tolerance=50_000_000)
    merged.to_parquet(out)
    return merged.sort_values("index")["seq"].fillna(-1).to_numpy(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    sim = simulate_capture(args.minutes * 60, latency_ms=25.0, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_session(sim, Path(tmp))
        start = time.perf_counter()
        align_session(path, latency_ms=25.0, use_timecode=False)
        ours_s = time.perf_counter() - start
        ours = np.array(read_aligned(path).column("seq").fill_null(-1).to_pylist())
        start = time.perf_counter()
        peer = pandas_align(path, Path(tmp) / "peer.parquet")
        peer_s = time.perf_counter() - start
    frames = sim.true_seq.size
    print(f"{args.minutes:g} min at ~60 fps: {frames} frames, {sim.client_t.size} samples")
    print(f"{'':28} {'seconds':>8} {'frames/s':>10} {'wrong':>8} {'off by >1':>10}")
    for name, seconds, seq in (("stpe align (clock path)", ours_s, ours),
                               ("pandas merge_asof on wall", peer_s, peer)):
        print(f"{name:28} {seconds:8.2f} {frames / seconds:10.0f} "
              f"{int((seq != sim.true_seq).sum()):8d} "
              f"{int((np.abs(seq - sim.true_seq) > 1).sum()):10d}")
    print(f"time ratio ours/pandas: {ours_s / peer_s:.2f}")


if __name__ == "__main__":
    main()
