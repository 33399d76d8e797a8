import json
import stat
import zipfile

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from alignment import ImportFormatError, ZipLimits, decode_video, import_seed, read_aligned
from alignment._timecode_code import render_strip
from capture import Session
from pipeline.cli import cli

SIZE = (360, 64)  # frame width, height: not the viewport's aspect


def _record(frame, timestamp):
    return {
        "frame": frame, "timestamp": timestamp, "fps": 57.0, "humanoid_state": "Running",
        "hrp": {"cframe": {"position": [frame * 0.25, 3.0, 0.0], "look_vector": [0, 0, -1],
                           "up_vector": [0, 1, 0], "right_vector": [1, 0, 0]},
                "velocity": [15.0, 0.0, 0.0], "speed": 15.0},
        "ground": {"touch_point": [frame * 0.25, 0.0, 0.0], "landing_normal": [0, 1, 0],
                   "landing_instance": "Workspace.Baseplate", "distance_to_landing": 3.0},
        "camera": {"position": [frame * 0.25, 8.0, 12.0], "distance_to_hrp": 13.0,
                   "viewport_size": [1528, 856]},
        "inputs": ["W"],
    }


def _frame_image(frame):
    image = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    strip = render_strip(frame)
    image[SIZE[1] - strip.shape[0]:, : strip.shape[1]] = strip
    return image


def make_seed(root, numbers, *, start=1765616658.5261, padded=True, wrapper=None):
    """Seed frame folders; the fps wanders 54.7-64.5 like the seed's walking example."""
    base = root / wrapper if wrapper else root
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = start
    stamps = {}
    for n in range(min(numbers), max(numbers) + 1):
        t += 1 / rng.uniform(54.7, 64.5)
        if n in numbers:
            stamps[n] = t
    for n, stamp in stamps.items():
        name = f"frame_{n:04d}" if padded else f"frame_{n}"
        folder = base / name
        folder.mkdir()
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(_frame_image(n), cv2.COLOR_RGB2BGR))
        (folder / f"{name}.json").write_text(json.dumps(_record(n, stamp)))
    return stamps


def _zip(folder, archive):
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder))
    return archive


def test_import_joins_each_image_with_its_record_and_reports_gaps(tmp_path):
    numbers = [*range(1, 13), *range(15, 30)]  # 13 and 14 missing
    stamps = make_seed(tmp_path / "seed", numbers, padded=False)  # frame_10 sorts before frame_9
    result = import_seed(tmp_path / "seed", tmp_path / "out")
    assert result.frames == len(numbers)
    assert result.missing_frames == [(13, 14)]
    assert [g["after_frame"] for g in result.timestamp_gaps] == [12]
    assert result.frame_size == SIZE and result.viewport == (1528, 856)
    table = read_aligned(tmp_path / "out")
    assert table.column("seq").to_pylist() == numbers
    assert set(table.column("method").to_pylist()) == {"clock"}
    assert table.column("residual_ms").to_numpy() == pytest.approx(0, abs=1e-3)
    # frame times come from the records' timestamps, not i / fps
    t = np.array([stamps[n] for n in numbers])
    assert table.column("t").to_numpy() == pytest.approx(t - t[0], abs=1e-3)
    # the images were paired with their own record: each shows its frame number
    session = Session.open(tmp_path / "out")
    decoded = decode_video(session.path / "video.mkv", table.column("pts_us").to_numpy())
    assert decoded.payload.tolist() == numbers
    # both sizes recorded; the aspect mismatch is reported
    assert session.manifest.plugin.viewport == (1528.0, 856.0)
    assert any("aspect" in w for w in result.report.warnings)
    root_x = [c[0] for c in table.column("character.root.cframe").to_pylist()]
    assert root_x == pytest.approx([n * 0.25 for n in numbers], abs=1e-4)
    # camera looks at the root part: its -Z axis points from the camera to the root
    cam = np.array(table.column("camera.cframe")[0].as_py())
    forward = -cam[3:].reshape(3, 3)[:, 2]
    to_root = np.array([0.25, 3.0, 0.0]) - cam[:3]
    assert forward == pytest.approx(to_root / np.linalg.norm(to_root), abs=1e-6)
    assert session.manifest.notes["imported"]["camera_orientation"] == "look_at_root"


def test_zipped_wrapper_folder_imports_via_the_cli(tmp_path):
    make_seed(tmp_path / "src", [1, 2, 3, 4], wrapper="walk_and_stop_extracted_frames")
    archive = _zip(tmp_path / "src", tmp_path / "seed.zip")
    result = CliRunner().invoke(cli, ["import", str(archive), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "imported 4 frames" in result.output
    assert read_aligned(tmp_path / "s").column("seq").to_pylist() == [1, 2, 3, 4]


def _assert_nothing_written(tmp_path, keep):
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def _evil_zip(tmp_path, name, data=b"x", *, attr=None, member_count=1):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(member_count):
            info = zipfile.ZipInfo(name if member_count == 1 else f"{name}{i}")
            info.compress_type = zipfile.ZIP_DEFLATED
            if attr is not None:
                info.external_attr = attr
            z.writestr(info, data)
    return archive


@pytest.mark.parametrize("name, attr, message", [
    ("../escape/frame_0001.json", None, "outside the import folder"),
    ("/etc/frame_0001.json", None, "outside the import folder"),
    ("C:/frame_0001.json", None, "outside the import folder"),
    ("frame_0001/frame_0001.png", (stat.S_IFLNK | 0o777) << 16, "symbolic link"),
])
def test_hostile_zip_members_are_refused(tmp_path, name, attr, message):
    archive = _evil_zip(tmp_path, name, attr=attr)
    with pytest.raises(ImportFormatError, match=message):
        import_seed(archive, tmp_path / "out")
    _assert_nothing_written(tmp_path, ["evil.zip"])


def test_zip_bomb_and_too_many_members_are_refused(tmp_path):
    archive = _evil_zip(tmp_path, "frame_0001/frame_0001.json", b"\0" * (8 << 20))
    with pytest.raises(ImportFormatError, match="zip bomb"):
        import_seed(archive, tmp_path / "out")
    archive = _evil_zip(tmp_path, "f", member_count=30)
    with pytest.raises(ImportFormatError, match="30 members, over the 20"):
        import_seed(archive, tmp_path / "out", limits=ZipLimits(members=20))
    archive = _evil_zip(tmp_path, "frame_0001/frame_0001.json", b"\1" * 5000)
    with pytest.raises(ImportFormatError, match="over the 4096 byte limit"):
        import_seed(archive, tmp_path / "out", limits=ZipLimits(member_bytes=4096))
    _assert_nothing_written(tmp_path, ["evil.zip"])


def test_not_a_zip(tmp_path):
    (tmp_path / "seed.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ImportFormatError, match="not a readable zip"):
        import_seed(tmp_path / "seed.zip", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["seed.zip"])


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.joinpath("frame_0003.json").write_text('{"frame": 3, "timest'),
     "frame_0003.json is not a valid frame record"),
    (lambda f: f.joinpath("frame_0003.json").write_text('{"frame": 3}'),
     "frame_0003.json is not a valid frame record: Field required at timestamp"),
    (lambda f: f.joinpath("frame_0003.json").write_text(
        json.dumps(_record(3, 1765616658.6) | {"fps": "fast"})), "at fps"),
    (lambda f: f.joinpath("frame_0003.json").write_text(json.dumps(_record(7, 1765616658.6))),
     "says frame 7 but sits in frame_0003"),
    (lambda f: f.joinpath("frame_0003.json").unlink(), "has no frame_0003.json"),
    (lambda f: f.joinpath("frame_0003.png").unlink(), "has no frame_0003.png"),
    (lambda f: f.joinpath("frame_0003.png").write_bytes(b"\x89PNG\r\n\x1a\n trunc"),
     "not a readable image"),
])
def test_malformed_frames_are_refused_naming_the_file(tmp_path, damage, message):
    make_seed(tmp_path / "seed", [1, 2, 3, 4, 5])
    damage(tmp_path / "seed" / "frame_0003")
    with pytest.raises(ImportFormatError, match=message):
        import_seed(tmp_path / "seed", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["seed"])


def test_no_frame_folders(tmp_path):
    (tmp_path / "seed" / "a").mkdir(parents=True)
    (tmp_path / "seed" / "b").mkdir()
    with pytest.raises(ImportFormatError, match="no frame_NNNN/ folders"):
        import_seed(tmp_path / "seed", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["seed"])


def test_missing_source_and_existing_out(tmp_path):
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "nope"), "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.output
    make_seed(tmp_path / "seed", [1, 2])
    (tmp_path / "o").mkdir()
    with pytest.raises(ImportFormatError, match="already exists"):
        import_seed(tmp_path / "seed", tmp_path / "o")


def _png_claiming(width, height):
    """A small real PNG whose header claims another size (nothing past it is read)."""
    _, data = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))
    data = bytearray(data.tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def test_a_frame_number_far_past_the_records_is_refused(tmp_path):
    make_seed(tmp_path / "seed", [1, 2, 3])
    folder = tmp_path / "seed" / "frame_0003"
    big = tmp_path / "seed" / "frame_99999999999"
    folder.rename(big)
    (big / "frame_0003.png").rename(big / "frame_99999999999.png")
    (big / "frame_0003.json").unlink()
    (big / "frame_99999999999.json").write_text(json.dumps(_record(99999999999, 1765616659.0)))
    with pytest.raises(ImportFormatError, match="run from 1 to 99999999999 for 3 records"):
        import_seed(tmp_path / "seed", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["seed"])


def test_many_large_members_are_refused_or_never_extracted(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(40):  # 40 MiB of frame records in a few tens of kB
            z.writestr(f"frame_{i:04d}/frame_{i:04d}.json", b" " * (1 << 20))
    with pytest.raises(ImportFormatError, match="likely zip bomb"):
        import_seed(archive, tmp_path / "out")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(40):  # members an import never reads are not extracted
            z.writestr(f"junk/{i}.bin", b" " * (1 << 20))
    with pytest.raises(ImportFormatError) as caught:
        import_seed(other, tmp_path / "out")
    # the error names the zip the user has, not a temporary folder that is gone
    assert f"{other} holds no frame_NNNN/ folders" in str(caught.value)
    assert ".out." not in str(caught.value)
    _assert_nothing_written(tmp_path, ["evil.zip", "other.zip"])


def test_image_size_is_read_from_the_header_before_decoding(tmp_path):
    make_seed(tmp_path / "src", [1, 2, 3])
    (tmp_path / "src" / "frame_0002" / "frame_0002.png").write_bytes(_png_claiming(16000, 16000))
    archive = _zip(tmp_path / "src", tmp_path / "seed.zip")
    with pytest.raises(ImportFormatError, match="frames must match"):
        import_seed(archive, tmp_path / "out")
    make_seed(tmp_path / "one", [1])
    (tmp_path / "one" / "frame_0001" / "frame_0001.png").write_bytes(_png_claiming(16000, 16000))
    with pytest.raises(ImportFormatError, match="16000x16000 pixels; images up to"):
        import_seed(tmp_path / "one", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["src", "seed.zip", "one"])


@pytest.mark.parametrize("field, value", [("frame", "3"), ("timestamp", "1765616658.6"),
                                          ("fps", True), ("timestamp", 1e300)])
def test_record_types_are_strict(tmp_path, field, value):
    make_seed(tmp_path / "seed", [1, 2, 3])
    path = tmp_path / "seed" / "frame_0003" / "frame_0003.json"
    path.write_text(json.dumps(_record(3, 1765616658.6) | {field: value}))
    with pytest.raises(ImportFormatError, match=f"frame_0003.json is not a valid frame record.*"
                                                f"at {field}"):
        import_seed(tmp_path / "seed", tmp_path / "out")
    _assert_nothing_written(tmp_path, ["seed"])


def test_path_clashes_are_clear_errors(tmp_path):
    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("frame_0001", b"a file")
        z.writestr("frame_0001/frame_0001.json", b"{}")
    with pytest.raises(ImportFormatError, match="'frame_0001' is both a file and a folder"):
        import_seed(archive, tmp_path / "out")
    make_seed(tmp_path / "seed", [1, 2])
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ImportFormatError, match="is a symbolic link"):
        import_seed(tmp_path / "seed", tmp_path / "link")
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(ImportFormatError, match="is a file, not a folder"):
        import_seed(tmp_path / "seed", tmp_path / "afile" / "out")
    assert not (tmp_path / "nowhere").exists()


def test_every_file_names_the_final_path_and_fps_is_the_frames_rate(tmp_path):
    stamps = make_seed(tmp_path / "src", [1, 2, 3, 4, 5, 6])
    archive = _zip(tmp_path / "src", tmp_path / "seed.zip")
    result = import_seed(archive, tmp_path / "out")
    out = tmp_path / "out"
    for path in out.rglob("*"):
        if path.is_file():
            assert b"/.out." not in path.read_bytes(), path  # no temporary folder named
    assert json.loads((out / "alignment.json").read_text())["session"] == str(out)
    assert result.report.session == str(out)
    t = sorted(stamps.values())
    session = Session.open(out)
    assert session.manifest.capture.fps == pytest.approx(5 / (t[-1] - t[0]))
    assert read_aligned(out).column("seed.fps").to_pylist() == [57.0] * 6
