"""Export throughput (frames/s) of `stpe export` against the floor: the same frames decoded
and re-encoded with raw PyAV (LeRobot), or decoded, JPEG-encoded and written with tarfile
(WebDataset). Prints each ratio; the target is >= 0.8 of the floor.

    python benchmarks/export.py [--frames 300] [--size 640x360]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tarfile
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline.export import export_sessions
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session


def floor_lerobot(session: Session, out: Path) -> int:
    container = av.open(str(out), "w", format="mp4", options={"video_track_timescale": "90000"})
    stream = None
    n = 0
    for frame in session.iter_frames():
        if stream is None:
            stream = container.add_stream("libx264", rate=30, options={
                "crf": "23", "preset": "veryfast", "bf": "0", "g": "60"})
            stream.height, stream.width = frame.image.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, 90000)
            stream.codec_context.thread_count = 0
        vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        vf.pts = round(frame.pts_us * 0.09)
        for packet in stream.encode(vf):
            container.mux(packet)
        n += 1
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return n


def floor_webdataset(session: Session, out: Path) -> int:
    n = 0
    with tarfile.open(out, "w") as tar:
        for frame in session.iter_frames():
            _ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, 95])
            info = tarfile.TarInfo(f"{frame.index:06d}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data.tobytes()))
            n += 1
    return n


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="stpe-bench-"))
    try:
        n = args.frames
        samples = [synthetic_sample(i, i / 60) for i in range(2 * n)]
        path = make_session(work, samples, [2 * i for i in range(n)],
                            [i / 30 for i in range(n)], size=(width, height),
                            scale=(width / 1280, height / 720), video=True)
        session = Session.open(path)
        write_labels(session, compute_labels(session))
        print(f"{n} frames of {width}x{height}, best of {args.repeat}")
        for fmt, floor, suffix in (("lerobot", floor_lerobot, ".mp4"),
                                   ("webdataset", floor_webdataset, ".tar")):
            ours, base = [], []
            for r in range(args.repeat):
                base.append(timed(floor, session, work / f"floor-{fmt}-{r}{suffix}"))
                ours.append(timed(export_sessions, [path], fmt, work / f"{fmt}-{r}"))
            fps_ours, fps_floor = n / min(ours), n / min(base)
            print(f"{fmt:>10}: stpe {fps_ours:8.1f} frames/s, floor {fps_floor:8.1f} "
                  f"frames/s, ratio {fps_ours / fps_floor:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
