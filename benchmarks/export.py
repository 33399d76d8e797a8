"""Export throughput (frames/s) of `stpe export` in every format against the floor a user
would write by hand on the same frames, the constant-rate resampling against pandas'
`merge_asof(direction="nearest")`, and the peak memory of long exports. Prints each ratio;
the target is >= 0.8 of the floor.

    python benchmarks/export.py [--frames 300] [--size 640x360] [--repeat 3]
    python benchmarks/export.py --rss --size 1920x1080 --frames 150,600 [--formats parquet]
    python benchmarks/export.py --rss --size 320x180 --frames 1000,4000 --entities 40
    python benchmarks/export.py --rss ... --work /tmp/sessions  # keep the sessions for reruns

Floors: LeRobot = decode and re-encode at a constant rate with raw PyAV, LeRobot's encoder
settings (keyframe every 2 frames); WebDataset = decode, JPEG, tarfile; Parquet = decode,
JPEG, one pyarrow table; COCO = decode, JPEG files, one JSON. `--rss` runs each export in
a child process and reports its peak resident memory at each length, with the linear
extrapolation to one hour at 60 frames/s; `--entities` adds tagged entities to every
sample so the labels have the size of a busy scene's (each adds about 140 B per frame),
and `--code DIR` (repeatable) measures other checkouts of the tree on the same sessions.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline.export import export_sessions
from pipeline.export._resample import nearest_rows
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session

HOUR_FRAMES = 30 * 3600
HOUR_FRAMES_60 = 60 * 3600


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def floor_lerobot(session: Session, out: Path) -> None:
    t = session.read_frames()["pts_us"].to_numpy() / 1e6
    rows = np.rint((t - t[0]) * 30).astype(int)  # the slot each frame lands in
    container = av.open(str(out), "w", format="mp4")
    stream = None
    k = 0
    for frame in session.iter_frames():
        if stream is None:
            stream = container.add_stream("libx264", rate=30, options={
                "crf": "23", "preset": "veryfast", "bf": "0", "g": "2"})
            stream.height, stream.width = frame.image.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, 30)
        while k <= rows[frame.index]:
            vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
            vf.pts = k
            for packet in stream.encode(vf):
                container.mux(packet)
            k += 1
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()


def floor_webdataset(session: Session, out: Path) -> None:
    out.mkdir()
    with tarfile.open(out / "shard.tar", "w") as tar:
        for frame in session.iter_frames():
            data = _jpeg(frame.image)
            info = tarfile.TarInfo(f"{frame.index:06d}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def floor_parquet(session: Session, out: Path) -> None:
    out.mkdir()
    images = [_jpeg(f.image) for f in session.iter_frames()]
    pq.write_table(pa.table({"image": images, "frame_index": range(len(images))}),
                   out / "data.parquet")


def floor_coco(session: Session, out: Path) -> None:
    (out / "images").mkdir(parents=True)
    images = []
    for frame in session.iter_frames():
        name = f"images/{frame.index:06d}.jpg"
        (out / name).write_bytes(_jpeg(frame.image))
        images.append({"id": frame.index + 1, "file_name": name})
    (out / "annotations.json").write_text(json.dumps({"images": images}))


FLOORS = {"lerobot": floor_lerobot, "webdataset": floor_webdataset,
          "parquet": floor_parquet, "coco": floor_coco}


def _crowd(sample: dict, extra: int) -> dict:
    """`sample` with `extra` more tagged entities: copies of its crate along a line."""
    crate = sample["entities"][0]
    for j in range(extra):
        copy = json.loads(json.dumps(crate))
        copy["id"], copy["cframe"][0] = f"crate-{j + 2}", crate["cframe"][0] + 3.0 * (j + 1)
        sample["entities"].append(copy)
    return sample


def make(work: Path, n: int, width: int, height: int, name: str = "s1",
         entities: int = 1) -> Path:
    """A labelled session of n frames near 30 fps (jittered), the last without state, with
    `entities` tagged entities in every sample."""
    samples = [_crowd(synthetic_sample(i, i / 60), entities - 1) for i in range(2 * n)]
    t = [i / 30 + 0.004 * (i % 3) for i in range(n)]
    path = make_session(work, samples, [2 * i for i in range(n - 1)] + [None], t,
                        size=(width, height), scale=(width / 1280, height / 720),
                        video=True, name=name)
    write_labels(Session.open(path), compute_labels(Session.open(path)))
    return path


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def throughput(work: Path, n: int, width: int, height: int, repeat: int) -> None:
    path = make(work, n, width, height)
    session = Session.open(path)
    print(f"{n} frames of {width}x{height}, best of {repeat}")
    for fmt, floor in FLOORS.items():
        ours, base = [], []
        for r in range(repeat):
            base.append(timed(floor, session, work / f"floor-{fmt}-{r}"))
            ours.append(timed(export_sessions, [path], fmt, work / f"{fmt}-{r}"))
        print(f"{fmt:>10}: stpe {n / min(ours):8.1f} frames/s, floor {n / min(base):8.1f} "
              f"frames/s, ratio {min(base) / min(ours):.2f}")
    import pandas as pd

    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.02, 0.05, HOUR_FRAMES))
    wanted = t[0] + np.arange(int((t[-1] - t[0]) * 30) + 1) / 30
    ours = min(timed(nearest_rows, t, 30) for _ in range(repeat))

    def peer() -> None:
        pd.merge_asof(pd.DataFrame({"w": wanted}), pd.DataFrame({"t": t, "row": range(len(t))}),
                      left_on="w", right_on="t", direction="nearest")

    base = min(timed(peer) for _ in range(repeat))
    print(f"{'resample':>10}: stpe {ours * 1e3:8.1f} ms, merge_asof {base * 1e3:8.1f} ms "
          f"for {len(t)} frames (1 h), ratio {base / ours:.2f}")


# VmHWM, not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss across exec
CHILD = """
import sys
from pipeline.export import export_sessions
export_sessions([sys.argv[1]], sys.argv[2], sys.argv[3])
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]))
"""


def peak_rss(work: Path, lengths: list[int], width: int, height: int,
             formats: list[str], entities: int, codes: list[Path]) -> None:
    print(f"peak RSS of one export in a child process, {width}x{height}, {entities} "
          "entities")
    folders = {n: work / f"rss-{width}x{height}-{entities}-{n}" for n in lengths}
    for n in lengths:
        path = folders[n] / "s1"
        if not (path / "labels.parquet").exists():  # labels are written last
            shutil.rmtree(folders[n], ignore_errors=True)
            make(folders[n], n, width, height, entities=entities)
        labels = pq.read_table(path / "labels.parquet")
        print(f"{n:6d} frames: labels.parquet {labels.nbytes / labels.num_rows / 1024:.1f} KB "
              f"per frame in memory, {(path / 'labels.parquet').stat().st_size / 2**20:.1f} "
              "MB on disk")
        del labels
    for code, fmt in ((c, f) for c in codes for f in formats):
        if fmt == formats[0]:
            print(f"code in {code}")
        points = []
        for n in lengths:
            out = work / f"rss-out-{fmt}-{n}"
            start = time.perf_counter()
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(folders[n] / "s1"), fmt, str(out)],
                capture_output=True, text=True, check=True, cwd=code,
                env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"})
            mb = int(child.stdout.split()[-1]) / 1024
            points.append((n, mb))
            print(f"{fmt:>10}: {n:6d} frames: peak {mb:7.1f} MB, "
                  f"{n / (time.perf_counter() - start):6.1f} frames/s")
            shutil.rmtree(out)
        (n0, m0), (n1, m1) = points[0], points[-1]
        slope = (m1 - m0) / (n1 - n0) if n1 != n0 else 0.0
        print(f"{fmt:>10}: {slope * 1024:.2f} KB per frame -> 1 h at 60 frames/s: "
              f"{m1 + max(slope, 0.0) * (HOUR_FRAMES_60 - n1):7.0f} MB (linear "
              "extrapolation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="300", help="frames, or a,b for --rss")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="peak memory of long exports")
    parser.add_argument("--formats", default=",".join(FLOORS),
                        help="for --rss; empty: only make the sessions (with --work)")
    parser.add_argument("--entities", type=int, default=1, help="tagged entities per sample")
    parser.add_argument("--work", type=Path, help="folder for the sessions, kept and reused "
                        "across runs (default a temporary folder, removed)")
    parser.add_argument("--code", type=Path, action="append",
                        help="a source tree whose export --rss measures (repeatable; "
                        "default this one)")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = args.work or Path(tempfile.mkdtemp(prefix="stpe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        lengths = [int(v) for v in args.frames.split(",")]
        if args.rss:
            codes = [c.resolve() for c in args.code or [Path(__file__).resolve().parents[1]]]
            peak_rss(work, lengths, width, height, [f for f in args.formats.split(",") if f],
                     args.entities,
                     codes)
        else:
            throughput(work, lengths[0], width, height, args.repeat)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
