"""Screen recorder vs ffmpeg x11grab, on the same virtual screen in one run.

For each setting (1280x720 at 60 fps, 1920x1080 at 30 fps) the script starts Xvfb with a
moving pattern painted by a separate process, then records it for the same duration with
  - thread: capture.ScreenRecorder(encoder="thread") (mss grabs paced on one thread,
    x264 veryfast crf 18 on an encoder thread behind a bounded queue),
  - process: capture.ScreenRecorder(encoder="process") (the same grabs, the encoder in a
    child process fed through shared memory: capture/_encoder_process.py),
  - ffmpeg: Debian's ffmpeg, -f x11grab, libx264 veryfast crf 18, zerolatency like ours,
    `-enc_time_base -1` so that its file keeps its real grab times (by default it rounds
    them to the 1/fps grid, which would hide its jitter),
  - grab only: our pacing and grabs with no encoding at all (the floor for any design),
in rotating order for --rounds rounds, and prints each metric's median: achieved fps,
drops, grab-interval jitter and CPU, with the ratios ours / ffmpeg.

Every file is measured the same way, from its stored timestamps (whole milliseconds):
drops = ticks the span should hold - frames; jitter = interval - 1/fps over intervals with
no skipped tick (std, and p99 of its magnitude). Ours is also shown from its nanosecond grab
times. CPU = CPU time of the process (and any encoder child) / wall time (1.0 = one core).

    python benchmarks/recorder.py [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capture import ScreenRecorder, SessionWriter  # noqa: E402
from capture._recorder import _sleep_until  # noqa: E402
from capture._xvfb import start_xvfb  # noqa: E402
from tests.capture._x11 import Painter  # noqa: E402

SETTINGS = [(1280, 720, 60.0), (1920, 1080, 30.0)]
CRF, PRESET = 18, "veryfast"


@dataclass(frozen=True)
class Result:
    name: str
    frames: int
    fps: float
    drop_pct: float
    jitter_std_ms: float
    jitter_p99_ms: float
    cpu: float


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _from_times(name: str, times_s: np.ndarray, fps: float, cpu: float) -> Result:
    """Achieved fps, drops and jitter from frame times (seconds)."""
    period = 1 / fps
    span = times_s[-1] - times_s[0]
    ticks = round(span / period) + 1
    intervals = np.diff(times_s)
    regular = intervals[(intervals > 0.5 * period) & (intervals < 1.5 * period)]
    deviation = (regular - period) * 1000
    return Result(name, len(times_s), (len(times_s) - 1) / span if span > 0 else 0.0,
                  100 * max(ticks - len(times_s), 0) / ticks, float(deviation.std()),
                  float(np.percentile(np.abs(deviation), 99)), cpu)


def _file_times(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [p.pts * stream.time_base for p in container.demux(stream) if p.pts is not None]
    return np.sort(np.array(pts, dtype=np.float64))


def run_ours(display: str, work: Path, size: tuple[int, int], fps: float, seconds: float,
             encoder: str) -> tuple[Result, Result]:
    os.environ["DISPLAY"] = display
    writer = SessionWriter.create(work, f"{encoder}-{size[0]}x{size[1]}")
    recorder = ScreenRecorder(writer, fps=fps, crf=CRF, preset=PRESET, encoder=encoder)
    cpu0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    recorder.start()
    time.sleep(seconds)
    stats = recorder.stop()
    cpu = (_cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu0) / (
        time.perf_counter() - wall0)
    writer.finalize()
    video = writer.path / "video.mkv"
    from_file = _from_times(f"{encoder} (file pts)", _file_times(video), fps, cpu)
    grabs = np.array([r["grab_start_ns"] for r in _frames(writer.path)], np.float64) / 1e9
    exact = _from_times(f"{encoder} (grab ns)", grabs, fps, cpu)
    exact = Result(exact.name, stats.frames, exact.fps,
                   100 * stats.dropped / max(stats.frames + stats.dropped, 1),
                   exact.jitter_std_ms, exact.jitter_p99_ms, cpu)
    return from_file, exact


def _frames(path: Path) -> list[dict]:
    from capture import Session

    return Session.open(path).read_frames().to_pylist()


def run_ffmpeg(display: str, work: Path, size: tuple[int, int], fps: float,
               seconds: float) -> Result:
    out = work / f"ffmpeg-{size[0]}x{size[1]}.mkv"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-y",
               "-f", "x11grab", "-draw_mouse", "0", "-framerate", f"{fps:g}",
               "-video_size", f"{size[0]}x{size[1]}", "-i", display, "-t", f"{seconds:g}",
               "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-tune", "zerolatency",
               "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-enc_time_base", "-1",
               str(out)]
    cpu0, wall0 = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
    cpu = (_cpu(resource.RUSAGE_CHILDREN) - cpu0) / (time.perf_counter() - wall0)
    return _from_times("ffmpeg x11grab", _file_times(out), fps, cpu)


def run_grab_only(display: str, size: tuple[int, int], fps: float, seconds: float) -> Result:
    """Our pacing and grabs with no encoder: what a process-based encoder could reach."""
    import mss

    period = 1e9 / fps
    box = {"left": 0, "top": 0, "width": size[0], "height": size[1]}
    stop, starts = threading.Event(), []
    cpu0, wall0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    with mss.MSS(display=display) as screen:
        t0 = time.perf_counter_ns()
        tick = 0
        while (now := time.perf_counter_ns()) - t0 < seconds * 1e9:
            deadline = t0 + round(tick * period)
            _sleep_until(deadline, stop)
            start = time.perf_counter_ns()
            if start - deadline <= period / 2:
                np.frombuffer(screen.grab(box).raw, np.uint8)
                starts.append(start)
            now = time.perf_counter_ns()
            tick = max(tick + 1, int(np.ceil((now - t0 - period / 2) / period)))
    cpu = (_cpu(resource.RUSAGE_SELF) - cpu0) / (time.perf_counter() - wall0)
    return _from_times("grab only", np.array(starts, np.float64) / 1e9, fps, cpu)


def animate(display: str, width: int, height: int) -> None:
    """Paint a moving square over a slowly changing background until killed."""
    with Painter(display) as painter:
        x, step, frame = 0, 12, 0
        while True:
            painter.rect(x, height // 3, 200, 200, (20, 20, 20))
            x = (x + step) % (width - 200)
            frame += 1
            painter.rect(x, height // 3, 200, 200, (240, 180 - frame % 120, 40))
            time.sleep(1 / 60)


def _print(results: list[Result]) -> None:
    print(f"  {'':18} {'frames':>7} {'fps':>7} {'drop %':>7} {'jit std':>8} {'jit p99':>8}"
          f" {'CPU':>6}")
    for r in results:
        print(f"  {r.name:18} {r.frames:7d} {r.fps:7.2f} {r.drop_pct:7.2f} "
              f"{r.jitter_std_ms:6.2f}ms {r.jitter_p99_ms:6.2f}ms {r.cpu:6.2f}")


def _median(results: list[Result]) -> Result:
    """Each metric's median over the rounds (the load on a shared machine varies)."""
    def med(name: str) -> float:
        return float(np.median([getattr(r, name) for r in results]))

    return Result(results[0].name, round(med("frames")), med("fps"), med("drop_pct"),
                  med("jitter_std_ms"), med("jitter_p99_ms"), med("cpu"))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else ("1.00" if a == 0 else f"{a:.2f}/0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per setting, the order of the contenders rotating")
    parser.add_argument("--animate", nargs=3, metavar=("DISPLAY", "W", "H"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.animate:
        animate(args.animate[0], int(args.animate[1]), int(args.animate[2]))
        return
    print(f"{os.cpu_count()} CPU cores; {args.seconds:g} s per recording, {args.rounds} "
          f"rounds (medians shown); load average {os.getloadavg()[0]:.2f}")
    for width, height, fps in SETTINGS:
        size = (width, height)
        server = start_xvfb(width, height)
        painter = subprocess.Popen([sys.executable, __file__, "--animate", server.display,
                                    str(width), str(height)])
        setting = (server.display, size, fps, args.seconds)
        contenders = [
            lambda work, s=setting: list(run_ours(s[0], work, *s[1:], "thread")),
            lambda work, s=setting: [run_ffmpeg(s[0], work, *s[1:])],
            lambda work, s=setting: list(run_ours(s[0], work, *s[1:], "process")),
            lambda work, s=setting: [run_grab_only(*s)],
        ]
        results: dict[str, list[Result]] = {}
        try:
            time.sleep(0.5)
            for round_ in range(args.rounds):
                for i in range(len(contenders)):
                    run = contenders[(i + round_) % len(contenders)]
                    with tempfile.TemporaryDirectory() as tmp:
                        for result in run(Path(tmp)):
                            results.setdefault(result.name, []).append(result)
        finally:
            painter.kill()
            painter.wait()
            server.stop()
        medians = {name: _median(runs) for name, runs in results.items()}
        print(f"\n{width}x{height} at {fps:g} fps (load average {os.getloadavg()[0]:.2f}):")
        _print(list(medians.values()))
        ffmpeg = medians["ffmpeg x11grab"]
        for encoder in ("thread", "process"):
            ours = medians[f"{encoder} (file pts)"]
            print(f"  ratio {encoder}/ffmpeg (file pts): fps {_ratio(ours.fps, ffmpeg.fps)}, "
                  f"drop % {_ratio(ours.drop_pct, ffmpeg.drop_pct)}, "
                  f"jitter p99 {_ratio(ours.jitter_p99_ms, ffmpeg.jitter_p99_ms)}, "
                  f"CPU {_ratio(ours.cpu, ffmpeg.cpu)}")


if __name__ == "__main__":
    main()
