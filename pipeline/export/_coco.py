"""COCO instances: `annotations_<split>.json` with a box per visible object (the character and
every tagged entity), a `track_id` per object id across frames, and the frames as JPEG
files in `images/`. Masks (RLE) are added when the session's `annotations/segment/`
holds rows for the same frame and object; unrecognised annotation files are skipped."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export._records import jpeg, key
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images

logger = logging.getLogger(__name__)


def segment_masks(data: SessionData) -> dict[tuple[int, str], dict[str, Any]]:
    """{(frame_index, entity id): RLE} from the segment stage's shards
    (`annotations/segment/shard-*.parquet`, docs/annotations.md): only masks anchored to a
    true entity; when several masks claim one entity in a frame, the best-scoring wins."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    best: dict[tuple[int, str], float] = {}
    folder = data.session.file("annotations") / "segment"
    for path in sorted(folder.glob("shard-*.parquet")):
        try:
            rows = pq.read_table(path, columns=["frame_index", "entity_id", "score",
                                                "mask_size", "mask_counts"]).to_pylist()
        except (pa.ArrowException, OSError, KeyError) as exc:
            logger.warning("skipping unreadable mask file %s: %s", path, exc)
            continue
        for row in rows:
            if row["entity_id"] is None:
                continue
            key_ = (row["frame_index"], row["entity_id"])
            if row["score"] > best.get(key_, -1.0):
                best[key_] = row["score"]
                out[key_] = {"size": list(row["mask_size"]), "counts": row["mask_counts"]}
    return out


@register("coco")
def export_coco(sessions: Sequence[SessionData], root: Path,
                options: ExportOptions) -> dict[str, Any]:
    """Write `root/annotations_<split>.json` and `root/images/*.jpg`; ids and categories
    are shared by the splits."""
    (root / "images").mkdir()
    images, annotations, categories, tracks = [], [], {"character": 1}, {}
    for s in sessions:
        masks = segment_masks(s)
        objects = s.labels["objects"].to_pylist()
        frames = s.labels["frame_index"].to_pylist()
        for row, image in iter_images(s, options):
            image_id = len(images) + 1
            name = f"images/{key(s, frames[row])}.jpg"
            (root / name).write_bytes(jpeg(image))
            options.finished(root / name)
            images.append({"id": image_id, "file_name": name, "width": image.shape[1],
                           "height": image.shape[0], "session": s.name, "split": s.split,
                           "frame_index": frames[row],
                           "t": s.labels["t"][row].as_py()})
            for obj in objects[row]:
                if not obj["on_screen"]:
                    continue
                category = "character" if obj["kind"] == "character" else obj["name"]
                categories.setdefault(category, len(categories) + 1)
                track = tracks.setdefault((s.name, obj["id"]), len(tracks) + 1)
                x0, y0, x1, y1 = obj["box_xyxy"]
                ann = {"id": len(annotations) + 1, "image_id": image_id,
                       "category_id": categories[category], "track_id": track,
                       "object_id": obj["id"], "bbox": [x0, y0, x1 - x0, y1 - y0],
                       "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                       "truncation": obj["truncation"], "distance": obj["distance"]}
                mask = masks.get((frames[row], obj["id"]))
                if mask is not None:
                    ann["segmentation"] = mask
                annotations.append(ann)
    split_of = {i["id"]: i["split"] for i in images}
    for split in dict.fromkeys(s.split for s in sessions):
        coco = {"info": {"description": f"STPE ground-truth boxes ({split})",
                         "version": "1.0"},
                "images": [i for i in images if i["split"] == split],
                "annotations": [a for a in annotations if split_of[a["image_id"]] == split],
                "categories": [{"id": i, "name": n, "supercategory": "object"}
                               for n, i in categories.items()]}
        (root / f"annotations_{split}.json").write_text(json.dumps(coco, sort_keys=True))
    return {"images": len(images), "annotations": len(annotations),
            "tracks": len(tracks), "masks": sum("segmentation" in a for a in annotations)}
