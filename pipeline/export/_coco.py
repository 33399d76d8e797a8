"""COCO instances: `annotations_<split>.json` with a box per visible object (the character and
every tagged entity), a `track_id` per object id across frames, and the frames as JPEG
files in `images/`. Masks (RLE) are added when the session's `annotations/segment/`
holds rows for the same frame and object; unrecognised annotation files are skipped."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pipeline.export._coco_masks import SegmentMasks
from pipeline.export._records import jpeg, key
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images, label_rows


class _Parts:
    """The `images` and `annotations` lists of each split's JSON, appended item by item to
    two part files so memory does not grow with the dataset; `join` writes
    `annotations_<split>.json` around them once the categories are known (the same bytes as
    `json.dumps(coco, sort_keys=True)`) and removes the parts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[tuple[str, str], IO[str]] = {}
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, split: str, kind: str, item: dict[str, Any]) -> None:
        key_ = (split, kind)
        if key_ not in self.files:
            self.files[key_] = open(self.root / f".{split}.{kind}.part", "w")  # noqa: SIM115
            self.counts[key_] = 0
        self.files[key_].write((", " if self.counts[key_] else "") +
                               json.dumps(item, sort_keys=True))
        self.counts[key_] += 1

    def _copy(self, split: str, kind: str, out: IO[str]) -> None:
        out.write("[")
        part = self.root / f".{split}.{kind}.part"
        if (split, kind) in self.files:
            with open(part) as f:
                shutil.copyfileobj(f, out)
            part.unlink()
        out.write("]")

    def join(self, split: str, categories: dict[str, int]) -> None:
        for f in self.files.values():
            f.flush()
        info = {"description": f"STPE ground-truth boxes ({split})", "version": "1.0"}
        cats = [{"id": i, "name": n, "supercategory": "object"} for n, i in categories.items()]
        with open(self.root / f"annotations_{split}.json", "w") as out:
            out.write('{"annotations": ')
            self._copy(split, "annotations", out)
            out.write(f', "categories": {json.dumps(cats, sort_keys=True)}, "images": ')
            self._copy(split, "images", out)
            out.write(f', "info": {json.dumps(info, sort_keys=True)}}}')

    def close(self) -> None:
        for (split, kind), f in self.files.items():
            f.close()
            (self.root / f".{split}.{kind}.part").unlink(missing_ok=True)


@register("coco")
def export_coco(sessions: Sequence[SessionData], root: Path,
                options: ExportOptions) -> dict[str, Any]:
    """Write `root/annotations_<split>.json` and `root/images/*.jpg`; ids and categories
    are shared by the splits. Frames and boxes are read and written a batch at a time."""
    (root / "images").mkdir()
    categories, tracks = {"character": 1}, {}
    images = annotations = masked = 0
    parts = _Parts(root)
    try:
        for s in sessions:
            masks = SegmentMasks(s)
            rows = label_rows(s, ["frame_index", "t", "objects"])
            for (_, image), label in zip(iter_images(s, options), rows, strict=True):
                images += 1
                name = f"images/{key(s, label['frame_index'])}.jpg"
                (root / name).write_bytes(jpeg(image))
                options.finished(root / name)
                parts.add(s.split, "images", {
                    "id": images, "file_name": name, "width": image.shape[1],
                    "height": image.shape[0], "session": s.name, "split": s.split,
                    "frame_index": label["frame_index"], "t": label["t"]})
                frame_masks = masks.frame(label["frame_index"])
                for obj in label["objects"]:
                    if not obj["on_screen"]:
                        continue
                    category = "character" if obj["kind"] == "character" else obj["name"]
                    categories.setdefault(category, len(categories) + 1)
                    track = tracks.setdefault((s.name, obj["id"]), len(tracks) + 1)
                    x0, y0, x1, y1 = obj["box_xyxy"]
                    annotations += 1
                    ann = {"id": annotations, "image_id": images,
                           "category_id": categories[category], "track_id": track,
                           "object_id": obj["id"], "bbox": [x0, y0, x1 - x0, y1 - y0],
                           "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                           "truncation": obj["truncation"], "distance": obj["distance"]}
                    mask = frame_masks.get(obj["id"])
                    if mask is not None:
                        ann["segmentation"] = mask
                        masked += 1
                    parts.add(s.split, "annotations", ann)
        for split in dict.fromkeys(s.split for s in sessions):
            parts.join(split, categories)
    finally:
        parts.close()
    return {"images": images, "annotations": annotations, "tracks": len(tracks),
            "masks": masked}
