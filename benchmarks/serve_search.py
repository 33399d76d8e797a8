"""State search across sessions: `stpe serve`'s filter compiler + DuckDB vs a pandas scan.

Ten synthetic one-hour sessions at 60 fps (216,000 rows each), each a labels.parquet with
the columns and types of docs/labels.md (two objects per frame, zstd as `stpe labels`
writes them). The query is "airborne and camera turning faster than 30 deg/s":

- ours: `serve._query.search_state` with the filter
  `[{airborne = true}, {cam_turn_rate > 30}]`, first page of 100 plus the total, as the
  page asks it (schemas read, SQL compiled, DuckDB over all ten files); timed on the
  second query of the process (the server's steady state) and the first shown too;
- pandas, what a user would write: `pd.read_parquet` of the needed columns of each file,
  the yaw rate from T_cam_world and cam_angular_velocity with numpy, a boolean mask.

Both answers are checked to be the same frames. Wall and CPU time (all threads) are
printed: on a shared, loaded machine the CPU time says more than the wall time.

Run: python benchmarks/serve_search.py [--sessions 10] [--rows 216000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serve._filters import StateFilter
from serve._query import search_state


def _fixed(values: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _objects(n: int, rng: np.random.Generator) -> pa.ListArray:
    m = 2 * n
    fields = {
        "id": pa.array(np.tile(["character", "crate-1"], n)),
        "name": pa.array(np.tile(["character", "Crate"], n)),
        "kind": pa.array(np.tile(["character", "entity"], n)),
        "box_xyxy": _fixed(rng.uniform(0, 1000, (m, 4))),
        "truncation": pa.array(rng.uniform(0, 1, m)),
        "on_screen": pa.array(rng.uniform(size=m) > 0.1),
        "behind_camera": pa.array(rng.uniform(size=m) > 0.95),
        "distance": pa.array(rng.uniform(1, 80, m)),
        "depth": pa.array(rng.uniform(1, 80, m)),
        "image_motion": _fixed(rng.normal(0, 50, (m, 2))),
        "camera_caused_motion": _fixed(rng.normal(0, 50, (m, 2))),
        "object_caused_motion": _fixed(rng.normal(0, 50, (m, 2))),
    }
    objects = pa.StructArray.from_arrays(list(fields.values()), list(fields))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, m + 1, 2, dtype=np.int32)), objects)


def _rotation_yaw_pitch(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    return np.stack([cy, sy * sp, sy * cp, 0 * cy, cp, -sp, -sy, cy * sp, cy * cp],
                    axis=1).reshape(-1, 3, 3)


def labels_table(n: int, seed: int) -> pa.Table:
    """One session's labels: a camera whose yaw rate wanders between +-120 deg/s, a
    character that jumps now and then."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 60.0 + rng.normal(0, 0.0005, n)
    rate = np.radians(120) * np.sin(t / 7.0 + seed) * np.sign(np.sin(t / 1.3))
    yaw = np.cumsum(rate) / 60.0
    r_wc = _rotation_yaw_pitch(yaw, np.full(n, -0.3)).transpose(0, 2, 1)  # world -> camera
    flip = np.diag([1.0, -1.0, -1.0])  # Roblox camera axes -> OpenCV
    rot = flip @ r_wc
    t_cam_world = np.zeros((n, 4, 4))
    t_cam_world[:, :3, :3] = rot
    t_cam_world[:, 3, 3] = 1.0
    omega_cam = rot @ np.array([0.0, 1.0, 0.0]) * rate[:, None]  # world up-axis rate in camera
    grounded = (np.sin(t * 2.1 + seed) < 0.6)
    keys = pa.array([["W", "Space"] if not g else ["W"] for g in grounded])
    return pa.table({
        "frame_index": pa.array(np.arange(n, dtype=np.int64)),
        "t": pa.array(t), "seq": pa.array(np.arange(n, dtype=np.int64) * 2),
        "residual_ms": pa.array(rng.uniform(0, 3, n)),
        "method": pa.array(np.full(n, "timecode")),
        "K": _fixed(np.tile([900.0, 0, 960, 0, 900, 540, 0, 0, 1], (n, 1))),
        "T_cam_world": _fixed(t_cam_world.reshape(n, 16)),
        "cam_position": _fixed(rng.normal(0, 30, (n, 3))),
        "cam_quat_xyzw": _fixed(rng.normal(0, 1, (n, 4))),
        "root_px": _fixed(rng.uniform(0, 1000, (n, 2))),
        "root_px_engine": _fixed(rng.uniform(0, 1000, (n, 2))),
        "root_px_error": pa.array(rng.uniform(0, 0.5, n)),
        "root_depth": pa.array(rng.uniform(5, 20, n)),
        "root_distance": pa.array(rng.uniform(5, 20, n)),
        "objects": _objects(n, rng),
        "cam_velocity": _fixed(rng.normal(0, 10, (n, 3))),
        "cam_angular_velocity": _fixed(omega_cam),
        "humanoid_state": pa.array(np.where(grounded, "Running", "Freefall")),
        "grounded": pa.array(grounded),
        "speed": pa.array(rng.uniform(0, 16, n)),
        "move_dir_cam": pa.array(np.full(n, "forward")),
        "keys": keys,
        "caption": pa.array(np.full(n, "Holding W, the character runs forward at 16.0 studs/s.")),
    })


def pandas_scan(files: dict[str, Path]) -> list[tuple[str, int]]:
    """The peer: read the needed columns, compute the yaw rate, filter."""
    found = []
    for sid, path in files.items():
        df = pd.read_parquet(path, columns=["frame_index", "t", "grounded", "T_cam_world",
                                            "cam_angular_velocity"])
        t_cw = np.stack(df["T_cam_world"].to_numpy())
        omega = np.stack(df["cam_angular_velocity"].to_numpy())
        yaw = np.degrees(t_cw[:, 1] * omega[:, 0] + t_cw[:, 5] * omega[:, 1]
                         + t_cw[:, 9] * omega[:, 2])
        hit = df[(~df["grounded"]) & (np.abs(yaw) > 30)]
        found += [(sid, int(f)) for f in hit["frame_index"]]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rows", type=int, default=216_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for i in range(args.sessions):
            folder = Path(tmp) / f"session-{i:02d}"
            folder.mkdir()
            pq.write_table(labels_table(args.rows, i), folder / "labels.parquet",
                           compression="zstd")
            sessions[folder.name] = folder
        size = sum((p / "labels.parquet").stat().st_size for p in sessions.values())
        print(f"{args.sessions} sessions x {args.rows} rows, {size / 1e6:.0f} MB of labels")
        query = StateFilter.model_validate({"where": [
            {"field": "airborne", "op": "=", "value": True},
            {"field": "cam_turn_rate", "op": ">", "value": 30}], "limit": 100})
        start = time.perf_counter()
        page = search_state(sessions, query)
        cold = time.perf_counter() - start  # includes importing duckdb, once per server
        start, cpu = time.perf_counter(), time.process_time()
        page = search_state(sessions, query)
        ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        peer = pandas_scan({k: v / "labels.parquet" for k, v in sessions.items()})
        theirs, theirs_cpu = time.perf_counter() - start, time.process_time() - cpu
        every = search_state(sessions, query.model_copy(update={"limit": 500, "offset": 0}))
        if page.total != len(peer) or [(h.session, h.frame) for h in every.hits] != peer[:500]:
            raise SystemExit(f"the answers differ: {page.total} vs {len(peer)} frames")
        share = 100 * page.total / (args.sessions * args.rows)
        print(f"matching frames: {page.total} ({share:.1f} %)")
        print(f"ours (compiler + DuckDB, first page + total): {ours:.3f} s wall, "
              f"{ours_cpu:.3f} s CPU (first query of the process: {cold:.3f} s wall)")
        print(f"pandas scan of the needed columns:            {theirs:.3f} s wall, "
              f"{theirs_cpu:.3f} s CPU")
        print(f"ratio pandas / ours: {theirs / ours:.1f}x; target: ours under 1 s -> "
              f"{'met' if ours < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
