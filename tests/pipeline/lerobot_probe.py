"""Run by the isolated lerobot environment (scripts/lerobot-env.sh), never imported by the
project: loads LeRobot exports with LeRobot itself and saves what it read to an .npz file for
the tests to check, in one process (importing torch and lerobot takes seconds).

    python lerobot_probe.py OUT ROOT STREAMED PART_A PART_B [FOLDER...]

OUT/load.npz: every item of ROOT with the default backend; streamed.npz: the same of
STREAMED (an export written to object storage, fetched back as it was stored); delta.npz:
every item with `delta_timestamps`; split.npz: every item of each part of `split_dataset`
(episode 0 / the rest); merge.npz: every item of `merge_datasets` of PART_A and PART_B;
hub.npz: the split sizes of each FOLDER (WebDataset, Parquet) loaded with
`datasets.load_dataset`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.dataset_tools import merge_datasets, split_dataset
from lerobot.datasets.lerobot_dataset import LeRobotDataset

VIDEO = "observation.images.main"
SCALARS = ("episode_index", "frame_index", "index", "timestamp", "source_frame_index",
           "capture_t", "task_index")


def _items(ds: LeRobotDataset, prefix: str = "") -> dict[str, np.ndarray]:
    """Every item in order: the decoded frame (uint8 HWC) and the scalar columns."""
    frames, scalars, texts = [], {k: [] for k in SCALARS}, {"task": [], "caption": []}
    for i in range(len(ds)):
        item = ds[i]
        frames.append((item[VIDEO].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        for k in SCALARS:
            scalars[k].append(float(item[k]))
        for k in texts:
            texts[k].append(item[k])
    out = {f"{prefix}{k}": np.array(v) for k, v in scalars.items()}
    out.update({f"{prefix}{k}": np.array(v) for k, v in texts.items()})
    out[f"{prefix}frames"] = np.stack(frames)
    out[f"{prefix}K"] = np.stack([ds[i]["observation.K"].numpy() for i in range(len(ds))]) \
        if len(ds) else np.zeros((0, 9))
    return out


def load(root: Path) -> dict[str, np.ndarray]:
    ds = LeRobotDataset("local/stpe", root=root)
    return {"backend": np.array(ds._video_backend),  # no public accessor in 0.6
            "fps": np.array(ds.fps), **_items(ds)}


def delta(root: Path) -> dict[str, np.ndarray]:
    fps = json.loads((root / "meta/info.json").read_text())["fps"]
    offsets = [-2 / fps, 0.0, 3 / fps]
    ds = LeRobotDataset("local/stpe", root=root, delta_timestamps={
        VIDEO: offsets, "source_frame_index": offsets})
    items = [ds[i] for i in range(len(ds))]
    return {
        "source_frame_index": np.stack([it["source_frame_index"].numpy() for it in items]),
        "pad": np.stack([it["source_frame_index_is_pad"].numpy() for it in items]),
        "video_pad": np.stack([it[f"{VIDEO}_is_pad"].numpy() for it in items]),
        "frames": np.stack([(it[VIDEO].permute(0, 2, 3, 1).numpy() * 255).round()
                            .astype(np.uint8) for it in items])}


def split(root: Path, work: Path) -> dict[str, np.ndarray]:
    ds = LeRobotDataset("local/stpe", root=root)
    parts = split_dataset(ds, {"first": [0], "rest": list(range(1, ds.num_episodes))},
                          output_dir=work)
    out: dict[str, np.ndarray] = {}
    for name, part in parts.items():
        out.update(_items(LeRobotDataset(part.repo_id, root=part.root), f"{name}."))
    return out


def merge(roots: list[Path], work: Path) -> dict[str, np.ndarray]:
    parts = [LeRobotDataset(f"local/part{i}", root=r) for i, r in enumerate(roots)]
    merged = merge_datasets(parts, "local/merged", output_dir=work)
    reopened = LeRobotDataset("local/merged", root=merged.root)
    return {"fps": np.array(reopened.fps), **_items(reopened)}


def hub(folders: list[Path], cache: Path) -> dict[str, np.ndarray]:
    """Each folder loaded by this environment's `datasets` (4.8) from its card."""
    import datasets

    out = {}
    for folder in folders:
        loaded = datasets.load_dataset(str(folder), cache_dir=str(cache))
        for split, ds in loaded.items():
            out[f"{folder.name}.{split}"] = np.array(len(ds))
    return out


def main() -> None:
    out, root, streamed, part_a, part_b = (Path(p) for p in sys.argv[1:6])
    np.savez(out / "hub.npz", **hub([Path(p) for p in sys.argv[6:]], out / "hf-cache"))
    np.savez(out / "load.npz", **load(root))
    np.savez(out / "streamed.npz", **load(streamed))
    np.savez(out / "delta.npz", **delta(root))
    np.savez(out / "split.npz", **split(root, out / "split"))
    np.savez(out / "merge.npz", **merge([part_a, part_b], out / "merged"))


if __name__ == "__main__":
    main()
