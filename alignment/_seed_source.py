"""Reading the seed prototype's per-frame layout safely: folders `frame_NNNN/` each holding
`frame_NNNN.png` and `frame_NNNN.json`, zipped or not, maybe inside a wrapper folder.

Zip archives are checked before anything is extracted: no absolute or parent-escaping
paths, no symlinks, no name used as both a file and a folder, a bounded number of members,
bounded sizes and compression ratios, per member and for the whole archive (a zip bomb is
refused). Only the members an import reads (`frame_NNNN/frame_NNNN.json` and its image) are
extracted. Records are validated strictly (`"frame": "4"` is refused); optional fields may be
missing. Image sizes are read from the file header, before any pixel is decoded.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alignment._errors import ImportFormatError

MAX_RECORD_BYTES = 1 << 20
MAX_DEPTH = 3  # wrapper folders searched for the frame folders
MAX_SPAN_PER_RECORD = 1000  # frame numbers may skip, but not by more than this per record
FRAME_DIR = re.compile(r"^frame_(\d+)$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

Vec3 = tuple[float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, frozen=True)


class SeedCFrame(_Model):
    position: Vec3
    look_vector: Vec3 | None = None
    up_vector: Vec3 | None = None
    right_vector: Vec3 | None = None


class SeedRoot(_Model):
    cframe: SeedCFrame | None = None
    position: Vec3 | None = None
    velocity: Vec3 | None = None
    speed: float | None = None


class SeedGround(_Model):
    touch_point: Vec3 | None = None
    landing_point: Vec3 | None = None
    landing_normal: Vec3 | None = None
    landing_instance: str | None = None
    distance_to_landing: float | None = Field(None, ge=0)


class SeedCamera(_Model):
    position: Vec3 | None = None
    relative_to_hrp: Vec3 | None = None
    distance_to_hrp: float | None = None
    viewport_size: tuple[float, float] | None = None


class SeedRecord(_Model):
    """One frame's record as the seed wrote it."""

    frame: int = Field(ge=0, lt=2**53)
    timestamp: float = Field(gt=0, lt=253_402_300_800, description="unix seconds, before 10000")
    fps: float | None = Field(None, gt=0)
    humanoid_state: str | None = None
    hrp: SeedRoot | None = None
    ground: SeedGround | None = None
    camera: SeedCamera | None = None
    inputs: list[str] = Field(default_factory=list, max_length=64)


@dataclass(frozen=True)
class ZipLimits:
    """What an archive may hold before it is refused."""

    members: int = 200_000
    member_bytes: int = 256 << 20
    total_bytes: int = 16 << 30  # of the members extracted
    ratio: float = 200.0  # uncompressed / compressed, per member over 1 MiB and in all
    max_pixels: int = 8192 * 8192  # per image, read from its header before decoding


@dataclass(frozen=True)
class SeedFrame:
    record: SeedRecord
    image: Path
    source: Path  # the record's file, for messages


def _check_member(info: zipfile.ZipInfo, archive: Path, limits: ZipLimits) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise ImportFormatError(f"{archive}: member {name!r} would be written outside the "
                                "import folder (absolute or '..' path); refusing the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ImportFormatError(f"{archive}: member {name!r} is a symbolic link; refusing "
                                "the archive (re-create it without links)")
    if info.file_size > limits.member_bytes:
        raise ImportFormatError(f"{archive}: member {name!r} is {info.file_size} bytes, over "
                                f"the {limits.member_bytes} byte limit")
    if info.file_size > limits.ratio * max(info.compress_size, 1) and info.file_size > 1 << 20:
        raise ImportFormatError(f"{archive}: member {name!r} expands {info.file_size} bytes "
                                f"from {info.compress_size}: refusing a likely zip bomb")


def _copy_capped(z: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path,
                 archive: Path) -> None:
    """Copy one member, stopping if it grows past the size its header declares."""
    written = 0
    with z.open(info) as src, open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise ImportFormatError(f"{archive}: member {info.filename!r} is larger than "
                                        "its header says; refusing the archive")
            out.write(chunk)


def _needed(info: zipfile.ZipInfo) -> bool:
    """Whether an import reads this member: a frame folder's record or image."""
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if info.is_dir() or len(parts) < 2 or not FRAME_DIR.match(parts[-2]):
        return False
    stem, suffix = PurePosixPath(parts[-1]).stem, PurePosixPath(parts[-1]).suffix.lower()
    return stem == parts[-2] and suffix in (".json", *IMAGE_SUFFIXES)


def _check_names(infos: list[zipfile.ZipInfo], archive: Path) -> None:
    """Refuse a name used twice, or as both a file and a folder (case-insensitively, as on
    Windows and macOS)."""
    files: set[str] = set()
    folders: set[str] = set()
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/").lower()).parts
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if not info.is_dir():
            name = "/".join(parts)
            if name in files:
                raise ImportFormatError(f"{archive}: member {info.filename!r} appears twice; "
                                        "refusing the archive")
            files.add(name)
    clash = files & folders
    if clash:
        raise ImportFormatError(f"{archive}: {sorted(clash)[0]!r} is both a file and a folder "
                                "in the archive; refusing it (rename one of them)")


def extract_zip(archive: Path, dest: Path, limits: ZipLimits = ZipLimits()) -> None:
    """Extract the members an import reads from `archive` into `dest`, after checking
    every member (see the module doc)."""
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            if len(infos) > limits.members:
                raise ImportFormatError(f"{archive}: {len(infos)} members, over the "
                                        f"{limits.members} limit")
            for info in infos:
                _check_member(info, archive, limits)
            _check_names(infos, archive)
            needed = [i for i in infos if _needed(i)]
            total = sum(i.file_size for i in needed)
            if total > limits.total_bytes:
                raise ImportFormatError(f"{archive}: its frames expand to {total} bytes, over "
                                        f"the {limits.total_bytes} byte limit")
            packed = archive.stat().st_size
            if total > 1 << 24 and total > limits.ratio * packed:
                raise ImportFormatError(f"{archive}: {packed} bytes expand to {total}: "
                                        "refusing a likely zip bomb")
            dest.mkdir(parents=True, exist_ok=True)
            for info in needed:
                target = dest / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_capped(z, info, target, archive)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ImportFormatError(f"{archive} is not a readable zip archive ({exc})") from None


def _frame_root(root: Path) -> Path:
    """The folder holding the frame folders: `root` or a chain of single wrapper folders."""
    current = root
    for _ in range(MAX_DEPTH + 1):
        children = [c for c in current.iterdir()
                    if not c.name.startswith(".") and c.name != "__MACOSX"]
        if any(c.is_dir() and FRAME_DIR.match(c.name) for c in children):
            return current
        dirs = [c for c in children if c.is_dir()]
        if len(dirs) != 1:
            break
        current = dirs[0]
    raise ImportFormatError(f"{root} holds no frame_NNNN/ folders (searched {MAX_DEPTH} "
                            "wrapper folders deep); expected the seed's per-frame layout")


def _read_record(path: Path) -> SeedRecord:
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise ImportFormatError(f"{path}: record over {MAX_RECORD_BYTES} bytes")
    try:
        return SeedRecord.model_validate_json(path.read_bytes(), strict=True)
    except ValidationError as exc:
        raise ImportFormatError(f"{path} is not a valid frame record: "
                                f"{exc.errors()[0]['msg']} at "
                                f"{'.'.join(map(str, exc.errors()[0]['loc'])) or 'top level'}; "
                                "expected {frame, timestamp, ...} (docs/alignment.md)") from None


def read_seed_frames(root: Path) -> list[SeedFrame]:
    """Every frame of an extracted seed folder, joined with its record, in time order."""
    base = _frame_root(root)
    frames: dict[int, SeedFrame] = {}
    for folder in sorted(base.iterdir()):
        match = FRAME_DIR.match(folder.name)
        if folder.is_symlink():
            raise ImportFormatError(f"{folder} is a symbolic link; refusing to follow it")
        if not match or not folder.is_dir():
            continue
        stem = folder.name
        record_path = folder / f"{stem}.json"
        images = [folder / f"{stem}{s}" for s in IMAGE_SUFFIXES if (folder / f"{stem}{s}")
                  .is_file()]
        if not record_path.is_file() or not images:
            missing = record_path.name if not record_path.is_file() else f"{stem}.png"
            raise ImportFormatError(f"{folder} has no {missing}; every frame folder needs "
                                    "its image and its record")
        if any(p.is_symlink() for p in (record_path, images[0])):
            raise ImportFormatError(f"{folder} holds a symbolic link; refusing to follow it")
        record = _read_record(record_path)
        if record.frame != int(match.group(1)):
            raise ImportFormatError(f"{record_path} says frame {record.frame} but sits in "
                                    f"{stem}/: the image and record do not belong together")
        if record.frame in frames:
            raise ImportFormatError(f"frame {record.frame} appears twice ({record_path} and "
                                    f"{frames[record.frame].source})")
        frames[record.frame] = SeedFrame(record, images[0], record_path)
    if not frames:
        raise ImportFormatError(f"{base} holds no frames")
    numbers = sorted(frames)
    span = numbers[-1] - numbers[0] + 1
    if span > MAX_SPAN_PER_RECORD * len(numbers):
        raise ImportFormatError(f"{base}: frame numbers run from {numbers[0]} to {numbers[-1]} "
                                f"for {len(numbers)} records (more than {MAX_SPAN_PER_RECORD} "
                                "numbers per record); a frame number is wrong")
    return sorted(frames.values(), key=lambda f: (f.record.timestamp, f.record.frame))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG, read from its header without decoding a pixel."""
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 <= len(head) and head[at] == 0xFF:
            marker = head[at + 1]
            if marker in _JPEG_FRAMES:  # start of frame: precision, height, width
                return (int.from_bytes(head[at + 7:at + 9], "big"),
                        int.from_bytes(head[at + 5:at + 7], "big"))
            at += 2 + int.from_bytes(head[at + 2:at + 4], "big")
    raise ImportFormatError(f"{path} is not a readable image (truncated or not PNG/JPEG: no "
                            "size in its header)")


MAX_HEADER_BYTES = 1 << 16
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
