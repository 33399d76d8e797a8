import numpy as np
import pytest

from alignment import decode_video, locate, read_cells, simulate_capture
from tests.alignment._sessions import VIEWPORT, viewport_frame, write_session


def _decode(path):
    pts = [int(line.split(b'"pts_us":')[1].split(b",")[0])
           for line in (path / "frames.jsonl").read_bytes().splitlines()]
    return decode_video(path / "video.mkv", np.array(pts))


@pytest.mark.parametrize("scale", [1.0, 1.25, 1.5])
def test_decodes_every_frame_through_h264_crf28_at_display_scales(tmp_path, scale):
    sim = simulate_capture(1.5, seed=11)
    path = write_session(sim, tmp_path, video=True, scale=scale, crf=28)
    result = _decode(path)
    assert result.decoded == sim.true_seq.size and result.undecodable == 0
    assert result.payload.tolist() == (sim.true_seq % (1 << 24)).tolist()
    assert result.geometry.pitch_x == pytest.approx(8 * scale, abs=0.05)
    assert result.geometry.pitch_y == pytest.approx(8 * scale, abs=0.05)
    assert result.geometry.x0 == pytest.approx(0.0, abs=1.0)
    assert result.geometry.y0 + 3 * result.geometry.pitch_y == pytest.approx(
        round(VIEWPORT[1] * scale), abs=1.5)


def test_video_without_strip_decodes_nothing(tmp_path):
    sim = simulate_capture(0.5, seed=12)
    path = write_session(sim, tmp_path, video=True, strip=False)
    result = _decode(path)
    assert result.geometry is None and result.decoded == 0
    assert (result.payload == -1).all()


def _located(seq=777):
    image = viewport_frame(seq)
    luma = image.mean(axis=2).astype(np.uint8)
    geometry = locate(luma)
    return luma, geometry, geometry.sample_grid(*luma.shape)


def test_clean_frame_decodes():
    luma, _, grid = _located(777)
    assert read_cells(luma, grid) == 777


@pytest.mark.parametrize("occluder", ["grey", "white", "black", "texture"])
@pytest.mark.parametrize("columns", [(10, 18), (30, 41), (0, 6)])
def test_partial_occlusion_is_undecodable_never_misread(occluder, columns):
    luma, geometry, grid = _located(0x5A5A5A)
    x0 = int(geometry.x0 + columns[0] * geometry.pitch_x)
    x1 = int(geometry.x0 + columns[1] * geometry.pitch_x)
    y0 = int(geometry.y0 + 0.4 * geometry.pitch_y)
    covered = luma.copy()
    patch = covered[y0:, x0:x1]
    rng = np.random.default_rng(1)
    patch[...] = {"grey": 128, "white": 255, "black": 0}.get(occluder, 0) if occluder != \
        "texture" else rng.integers(0, 256, patch.shape)
    assert read_cells(covered, grid) is None


def test_low_contrast_frame_is_undecodable():
    luma, _, grid = _located(42)
    faded = (128 + (luma.astype(np.int16) - 128) // 8).astype(np.uint8)
    assert read_cells(faded, grid) is None


def test_a_strip_that_appears_late_and_vanishes_is_read_wherever_it_shows(tmp_path):
    # the recording starts before Play (no strip for 2.6 s, past any fixed search window),
    # then clap mode: the strip at the start and end of two Plays
    sim = simulate_capture(7.5, seed=14)
    t = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    # each stretch lasts over a second: searches come at least every 60 frames
    shown = ((t >= 2.6) & (t < 3.7)) | ((t >= 4.2) & (t < 5.3)) | (t >= 6.3)
    path = write_session(sim, tmp_path, video=True, strip=shown)
    result = _decode(path)
    expected = np.where(shown, sim.true_seq % (1 << 24), -1)
    assert result.payload.tolist() == expected.tolist()
    rows = np.flatnonzero(shown)
    starts = rows[np.r_[0, np.flatnonzero(np.diff(rows) > 1) + 1]]
    ends = rows[np.r_[np.flatnonzero(np.diff(rows) > 1), rows.size - 1]]
    assert result.seen == tuple(zip(starts.tolist(), ends.tolist(), strict=True))
    # searching is sparse: at most once per 30 frames where no strip reads
    assert result.locate_calls <= (~shown).sum() // 30 + 4


@pytest.mark.parametrize("cell", [(0, 0), (0, 17), (2, 39), (1, 0), (1, 39)])
def test_a_white_quiet_zone_cell_makes_an_otherwise_perfect_strip_undecodable(cell):
    luma, geometry, grid = _located(0x123456)
    lit = luma.copy()
    row, column = cell
    y, x = int(geometry.y0 + row * geometry.pitch_y), int(geometry.x0 + column * geometry.pitch_x)
    lit[y:y + int(geometry.pitch_y), x:x + int(geometry.pitch_x)] = 255
    assert read_cells(lit, grid) is None


def _misreadable():
    """A seq and m such that blacking out its m lowest payload cells and the check cells
    leaves a valid code row of another seq."""
    from alignment._timecode_code import crc8

    for seq in range(1, 1 << 16):
        for m in range(1, 9):
            wrong = seq & ~((1 << m) - 1)
            if wrong != seq and crc8(wrong.to_bytes(3, "big")) == 0:
                return seq, m, wrong
    raise AssertionError("no such seq")


@pytest.mark.parametrize("rows", [(0, 3), (1, 2), (1, 3)])
@pytest.mark.parametrize("level", [0, 255])
def test_a_uniform_box_over_code_cells_is_refused_even_where_it_spells_another_seq(rows, level):
    seq, m, _ = _misreadable()
    luma, geometry, grid = _located(seq)
    boxed = luma.copy()
    y0, y1 = (int(geometry.y0 + r * geometry.pitch_y) for r in rows)
    x0, x1 = (int(geometry.x0 + c * geometry.pitch_x) for c in (28 - m, 36))
    boxed[y0:y1, x0:x1] = level
    assert read_cells(boxed, grid) is None


def test_a_strip_without_the_check_row_still_decodes_but_a_box_can_misread_it():
    # strips drawn before the check row existed (bottom row all black): read as before,
    # with only the sequence checks against such a box (docs/timecode.md)
    seq, m, wrong = _misreadable()
    luma, geometry, grid = _located(seq)
    legacy = luma.copy()
    y2 = int(geometry.y0 + 2 * geometry.pitch_y)
    legacy[y2:int(geometry.y0 + 3 * geometry.pitch_y), int(geometry.x0):] = 0
    assert read_cells(legacy, grid) == seq
    legacy[int(geometry.y0):y2 + 1, int(geometry.x0 + (28 - m) * geometry.pitch_x):
           int(geometry.x0 + 36 * geometry.pitch_x)] = 0
    assert read_cells(legacy, grid) == wrong


@pytest.mark.parametrize("cell", [8, 12])
def test_hd_frames_are_searched_at_half_resolution_and_located_to_a_pixel(cell):
    import cv2

    from alignment._timecode_code import render_strip

    image = np.full((720, 1280), 90, np.uint8)
    image[300:400, 200:900] = 200
    strip = render_strip(0xABCDE, cell)[:, :, 0]
    image[720 - strip.shape[0]:, :strip.shape[1]] = strip
    luma = cv2.GaussianBlur(image, (3, 3), 0.8)
    geometry = locate(luma)
    assert geometry.pitch_x == pytest.approx(cell, abs=0.1)
    assert geometry.pitch_y == pytest.approx(cell, abs=0.1)
    assert geometry.x0 == pytest.approx(0.0, abs=1.0)
    assert geometry.y0 + 3 * geometry.pitch_y == pytest.approx(720, abs=1.0)
    assert read_cells(luma, geometry.sample_grid(*luma.shape)) == 0xABCDE


def test_searches_do_not_fall_in_step_with_a_periodic_occluder(tmp_path, monkeypatch):
    # the budget refuses every optional search: only the forced ones run; an occluder
    # covers the strip 20 frames in every 60, in step with a fixed 60-frame search
    import alignment._timecode as timecode

    monkeypatch.setattr(timecode, "LOCATE_BUDGET", 0.0)
    sim = simulate_capture(8.0, seed=15)
    shown = np.arange(sim.true_seq.size) >= 61

    def box(i, image):
        if i % 60 < 20:
            image[VIEWPORT[1] - 24:, :320] = 0

    path = write_session(sim, tmp_path, video=True, strip=shown, overlay=box)
    result = _decode(path)
    assert result.geometry is not None
    visible = shown & (np.arange(shown.size) % 60 >= 20)
    assert (result.payload[visible] >= 0).all()


@pytest.mark.parametrize(("x", "bottom"), [(0, 720), (1, 720), (6, 717), (13, 711)])
def test_hd_frames_locate_the_strip_to_a_tenth_of_a_pixel(x, bottom):
    """The strip's corner sets the capture offset that every label's pixel position uses,
    so the half-resolution search must not bias it (it sampled even pixels only)."""
    from alignment._timecode_code import render_strip

    image = np.full((720, 1280), 90, np.uint8)
    strip = render_strip(0x12345, 8)[:, :, 0]
    image[bottom - strip.shape[0]:bottom, x:x + strip.shape[1]] = strip
    geometry = locate(image)
    assert geometry.x0 == pytest.approx(x, abs=0.1)
    assert geometry.y0 == pytest.approx(bottom - strip.shape[0], abs=0.1)
    assert geometry.pitch_x == pytest.approx(8, abs=0.05)
    assert read_cells(image, geometry.sample_grid(*image.shape)) == 0x12345
