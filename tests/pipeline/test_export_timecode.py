"""No exported image shows the timecode strip by default: every image of every format is
read with the project's strip decoder (alignment._timecode) and checked pixel by pixel
where docs/timecode.md puts the strip; `--timecode keep` leaves it readable (and warns)."""

from __future__ import annotations

import json
import logging
import tarfile

import av
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from alignment._timecode import locate, read_cells
from alignment._timecode_code import render_strip
from capture import Session
from capture._synthetic import synthetic_sample
from pipeline.export import ExportOptions, export_sessions
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import frame_image, make_session

SIZE = (640, 360)  # of a 1280 x 720 viewport
N = 8
STRIP_W, STRIP_H = 160, 12  # 40 x 3 cells of 8 viewport px at scale 0.5, bottom-left


def _with_strip(i: int, width: int, height: int) -> np.ndarray:
    image = frame_image(i, width, height)
    image[height - STRIP_H:, :STRIP_W] = render_strip(1000 + i, cell=4)
    return image


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    samples = [synthetic_sample(i, i / 60) for i in range(2 * N)]
    path = make_session(tmp_path_factory.mktemp("tc"), samples, [2 * i for i in range(N)],
                        [i / 30 for i in range(N)], size=SIZE, scale=(0.5, 0.5),
                        video=True, image=_with_strip)
    write_labels(Session.open(path), compute_labels(Session.open(path)))
    return path


def _decoded(image: np.ndarray) -> int | None:
    """The sample number the strip in an RGB image encodes, or None when none is readable."""
    luma = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    geometry = locate(luma)
    grid = None if geometry is None else geometry.sample_grid(*luma.shape)
    return None if grid is None else read_cells(luma, grid)


def _jpeg(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)


def _images(fmt: str, root) -> list[np.ndarray]:
    """Every image of an export, read from its files."""
    if fmt == "webdataset":
        out = []
        for shard in sorted(root.glob("*.tar")):
            with tarfile.open(shard) as tar:
                out += [_jpeg(tar.extractfile(m).read()) for m in tar.getmembers()
                        if m.name.endswith(".jpg")]
        return out
    if fmt == "parquet":
        return [_jpeg(row["bytes"]) for path in sorted(root.glob("data/*.parquet"))
                for row in pq.read_table(path)["image"].to_pylist()]
    if fmt == "coco":
        coco = json.loads((root / "annotations_train.json").read_text())
        return [_jpeg((root / i["file_name"]).read_bytes()) for i in coco["images"]]
    with av.open(str(next(root.glob("videos/**/*.mp4")))) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_the_session_itself_shows_a_readable_strip(session):
    frames = [f.image for f in Session.open(session).iter_frames()]
    assert [_decoded(f) for f in frames] == [1000 + i for i in range(N)]


@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "coco", "lerobot"])
def test_no_exported_image_shows_the_strip_by_default(session, tmp_path, fmt):
    export_sessions([session], fmt, tmp_path / fmt)
    images = _images(fmt, tmp_path / fmt)
    assert len(images) >= N - 1
    for image in images:
        assert _decoded(image) is None
        assert image[SIZE[1] - STRIP_H:, :STRIP_W].max() <= 12  # black, give or take codec
        assert image[: SIZE[1] - STRIP_H - 8].mean() > 40  # the rest is the picture


def test_crop_removes_the_rows_and_keep_warns(session, tmp_path, caplog):
    export_sessions([session], "parquet", tmp_path / "crop", ExportOptions(timecode="crop"))
    cropped = _images("parquet", tmp_path / "crop")
    assert {i.shape for i in cropped} == {(SIZE[1] - STRIP_H, SIZE[0], 3)}
    assert all(_decoded(i) is None for i in cropped)
    with caplog.at_level(logging.WARNING, logger="pipeline.export"):
        export_sessions([session], "parquet", tmp_path / "keep", ExportOptions(timecode="keep"))
    assert "shortcut" in caplog.text
    kept = _images("parquet", tmp_path / "keep")
    assert [_decoded(i) for i in kept] == [1000 + i for i in range(len(kept))]


