"""`stpe render`: the overlay lands where the labels say, at the source frame times."""

from __future__ import annotations

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import Session
from pipeline.cli import cli
from pipeline.overlay import render_overlay
from pipeline.overlay._draw import CHARACTER_BOX, ROOT
from tests.pipeline.demo_session import labelled_demo_session


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(round(f.pts * stream.time_base * 1000), f.to_ndarray(format="rgb24"))
                for f in container.decode(stream)]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path, frames = labelled_demo_session(tmp_path_factory.mktemp("overlay"))
    return path, frames


def test_overlay_draws_root_point_and_boxes_where_the_labels_say(session, tmp_path):
    path, frames = session
    result = render_overlay(path, tmp_path / "out.mp4")
    labels = pq.read_table(path / "labels.parquet").to_pylist()
    decoded = _decode(result.path)
    source_pts = Session.open(path).read_frames()["pts_us"].to_pylist()
    assert result.frames == len(labels) == len(decoded) == len(source_pts)
    assert [pts for pts, _ in decoded] == [p // 1000 for p in source_pts]
    for (_, image), row, frame in zip(decoded, labels, frames, strict=True):
        u, v = row["root_px"]
        # the labels' root pixel is where the game drew its root marker
        assert (u, v) == pytest.approx(frame.root_px, abs=0.01)
        centre = image[int(v), int(u)].astype(int)
        assert np.abs(centre - ROOT).max() < 40
        character = next(o for o in row["objects"] if o["kind"] == "character")
        x0, y0, x1, _ = character["box_xyxy"]
        mid_top = image[round(y0 - 0.5), round((x0 + x1) / 2)].astype(int)
        assert np.abs(mid_top - CHARACTER_BOX).max() < 60


def test_render_command_writes_into_the_session(session):
    path, _ = session
    run = CliRunner().invoke(cli, ["render", str(path)])
    assert run.exit_code == 0, run.output
    assert "8 frames" in run.output
    assert len(_decode(path / "overlay.mp4")) == 8


def test_render_without_labels_names_the_command(tmp_path):
    from capture import SessionWriter

    writer = SessionWriter.create(tmp_path, "bare")
    writer.finalize()
    run = CliRunner().invoke(cli, ["render", str(writer.path), "--out", str(tmp_path / "o.mp4")])
    assert run.exit_code != 0
    assert "stpe labels" in str(run.exception)
    assert not (tmp_path / "o.mp4").exists()


def test_a_rendered_file_gets_the_usual_permissions(session, tmp_path):
    import os
    import stat

    path, _ = session
    result = render_overlay(path, tmp_path / "shared.mp4")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o666 & ~mask


def test_the_legend_and_distances_are_drawn_on_wide_frames():
    from pipeline.overlay._draw import LEGEND, OverlayFrame, draw_overlay

    image = np.full((720, 1280, 3), (90, 140, 90), np.uint8)  # grass
    frame = OverlayFrame(frame_index=3, t=0.1, root_px=None, velocity_tip_px=None,
                         objects=[{"on_screen": True, "box_xyxy": [400, 300, 500, 420],
                                   "kind": "entity", "name": "Cart", "distance": 27.4}])
    out = draw_overlay(image, frame, [])
    corner = out[4:40, 1280 - 60:1280 - 4]
    assert (corner.astype(int).sum(axis=2) < 200).mean() > 0.3  # the legend's dark band
    for _, colour, _ in LEGEND:  # each swatch colour appears in the legend
        band = out[:200, 900:].reshape(-1, 3).astype(int)
        assert (np.abs(band - colour).max(axis=1) < 40).any(), colour
    above = out[270:298, 400:470].astype(int)  # the label's band above the box is dark
    assert np.median(above.sum(axis=2)) < np.median(image[270:298, 400:470].sum(axis=2)) / 2
    small = draw_overlay(np.full((180, 320, 3), 90, np.uint8), frame, [])
    assert (small[4:20, 300:316] == 90).all()  # no legend on a small frame


def test_overlay_of_clock_matched_interpolated_rows(tmp_path):
    """A session aligned by the real aligner (clock matches, interpolated state): the root
    point lands on every frame where the labels put it."""
    from pipeline.labels import compute_labels, write_labels
    from tests.pipeline.session_kit import make_simulated_session
    from tests.pipeline.test_labels_aligned import _sample

    path, _ = make_simulated_session(tmp_path, _sample, duration_s=0.5, size=(320, 180),
                                     video=True, seed=4)
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    result = render_overlay(path, tmp_path / "out.mp4")
    labels = pq.read_table(path / "labels.parquet").to_pylist()
    assert {row["method"] for row in labels} == {"clock"}
    decoded = _decode(result.path)
    assert len(decoded) == len(labels) > 20
    for (_, image), row in zip(decoded, labels, strict=True):
        u, v = row["root_px"]
        assert np.abs(image[int(v), int(u)].astype(int) - ROOT).max() < 40
