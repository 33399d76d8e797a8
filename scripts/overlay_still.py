"""Write one frame of a rendered overlay as a PNG (docs/demo-overlay.png comes from this).

    stpe demo --out /tmp/demo && python scripts/overlay_still.py /tmp/demo docs/demo-overlay.png

The frame picked is the matched frame whose character moves fastest, so every arrow shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import pyarrow.parquet as pq


def main(demo: Path, png: Path) -> None:
    (session,) = (demo / "sessions").iterdir()
    labels = pq.read_table(session / "labels.parquet").to_pylist()
    moving = [row for row in labels if row["speed"] is not None and row["root_px"]]
    best = max(moving, key=lambda row: row["speed"])["frame_index"]
    with av.open(str(demo / "overlay.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == best:
                image = frame.to_ndarray(format="bgr24")
                break
    cv2.imwrite(str(png), image)
    print(f"{png}: frame {best}, {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
