"""Alignment over a corpus of simulated recordings with known truth, written to disk with
H.264 video, aligned by `align_session` / `align_external`, scored frame by frame.

The corpus crosses: Play starting 0, 8 or 60 s into the recording; clap and always-on
strips; crf 28 and 35; display scales 1, 1.25 and 1.5; occluders (a cursor, a tooltip, dark
boxes over the payload's low cells and the check cells, tears without vsync); client drift
+-50 ppm; clock resets; dropped grabs; two Plays (seqs continuing, and an older session
restarting them at 0); external videos with and without a start time. The display is
simulated as GPU time, vertical blanks, double buffering and a compositor delay, not as the
aligner's latency model.

Printed per case and in total: frames, frames mapped by the timecode and how many wrongly,
reads naming a wrong stored sample (misreads) and how many were kept, clock-mapped frames
within one frame, and the clock's offset, drift and latency errors against their stated
uncertainties; and the time spent searching for the strip against decoding.

    python benchmarks/align_corpus.py [--frames 100000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alignment import align_external, align_session, read_aligned, simulate_capture
from alignment._simulate import WALL_OFFSET_NS
from alignment._timecode import decode_video
from alignment._timecode_code import DEFAULT_CELL, crc8
from tests.alignment._sessions import VIEWPORT, viewport_frame, write_session
from tests.conftest import make_sample


@dataclass(frozen=True)
class Case:
    name: str
    duration: float
    play_at: float = 0.0
    clap: bool = False
    crf: int = 28
    scale: float = 1.0
    occluder: str = "none"
    drift: float = 50.0
    reset: bool = False
    drop: float = 0.02
    plays: str = "one"  # one | two | two-restart
    external: str = "no"  # no | start | timecode
    tear: bool = False
    seed: int = 0


def corpus(frames: int) -> list[Case]:
    """Cases cycling through every factor until about `frames` frames (60 per second)."""
    occluders = ["adversarial", "cursor", "tooltip", "box-payload", "box-check", "adversarial"]
    cases, total, i = [], 0, 0
    while total < frames:
        play_at = [0.0, 8.0, 60.0][i % 3]
        case = Case(
            name=f"c{i:02d}", duration=play_at + [40.0, 90.0, 250.0][i % 3],
            play_at=play_at, clap=i % 2 == 1, crf=[28, 35][(i // 2) % 2],
            scale=[1.0, 1.25, 1.5][(i // 3) % 3], occluder=occluders[i % len(occluders)],
            drift=[50.0, -50.0, 17.0, -33.0][i % 4], reset=i % 7 == 3,
            drop=[0.02, 0.0, 0.05][i % 3], plays=["one", "two", "one", "two-restart"][i % 4],
            external=["no", "no", "start", "no", "timecode"][i % 5], tear=i % 6 == 5, seed=i)
        if case.external != "no":  # an external recording is one Play, no reset
            case = Case(**{**case.__dict__, "plays": "one", "reset": False})
        cases.append(case)
        total += int(case.duration * 60)
        i += 1
    return cases


def _misreading_cells(seq: int) -> int:
    """The number m of lowest payload bits that, blacked out with the check, leave a valid
    strip of another seq (0 when none does)."""
    payload = seq % (1 << 24)
    for m in range(1, 9):
        wrong = payload & ~((1 << m) - 1)
        if wrong != payload and crc8(wrong.to_bytes(3, "big")) == 0:
            return m
    return 0


def _occluder(kind: str, rng: np.random.Generator, shown: np.ndarray):
    """Draws `kind` over the strip's region on about a third of the frames; "adversarial"
    blacks out the low payload bits and the check exactly where that reads as another seq
    (the worst a dark box can do)."""
    h = VIEWPORT[1]
    cell = DEFAULT_CELL

    def draw(i: int, image: np.ndarray) -> None:
        if kind == "adversarial":
            m = _misreading_cells(int(shown[i]))
            if m:
                image[h - 3 * cell:h, (28 - m) * cell:36 * cell] = 0
            return
        if kind == "none" or (i // 20) % 3:
            return
        if kind == "cursor":  # a white arrow with a black edge, moving across the strip
            x, y = (i * 7) % (40 * cell), h - 3 * cell + (i % 3) * 4
            for r in range(16):
                image[y + r - 8:y + r - 7, x:x + r // 2 + 1] = 255 if r < 15 else 0
        elif kind == "tooltip":  # a light box with dark text over part of the strip
            x = (i * 5) % (30 * cell)
            image[h - 2 * cell - 4:h - 4, x:x + 12 * cell] = 225
            image[h - 2 * cell + 2:h - 2 * cell + 8:2, x + 4:x + 12 * cell - 4:3] = 40
        else:  # a dark box over the payload's low byte and the check, markers visible
            first = 20 if kind == "box-payload" else 28
            image[h - 3 * cell:h, first * cell:36 * cell] = int(rng.integers(0, 30))

    return draw


def _write_external(sim, stored, root: Path) -> tuple[Path, Path]:
    video = root / "obs.mkv"
    from capture._video import VideoWriter

    with VideoWriter(video, *VIEWPORT, crf=28) as out:
        for seq, grab in zip(sim.true_seq, sim.grab_start_ns, strict=True):
            out.write(viewport_frame(int(seq), strip=bool(stored[seq])),
                      int(grab - sim.grab_start_ns[0]) // 1000)
    log = root / "state.jsonl"
    lines = []
    for k in np.flatnonzero(stored):
        sample = make_sample(int(sim.seq[k]), float(sim.client_t[k]))
        sample["wall_ms"] = int(sim.wall_ms[k])
        lines.append(orjson.dumps(sample))
    log.write_bytes(b"\n".join(lines) + b"\n")
    return video, log


def run_case(case: Case) -> dict[str, float]:
    """Simulate, write, align and score one case."""
    sim = simulate_capture(case.duration, drift_ppm=case.drift, latency_ms=22.0,
                           drop_fraction=case.drop, seed=case.seed,
                           reset_at_s=case.duration * 0.6 if case.reset else None,
                           vsync_hz=None if case.tear else 60.0,
                           tear_fraction=0.5 if case.tear else 0.0)
    t = (sim.render_ns - sim.render_ns[0]) / 1e9
    stored = t >= case.play_at
    plays = None
    seqs = None
    if case.plays != "one":
        cut = case.play_at + (case.duration - case.play_at) / 2
        stored &= ~((t >= cut - 1.0) & (t < cut + 1.0))
        second = int(np.argmax(t >= cut + 1.0))
        if case.plays == "two":
            plays = [int(np.argmax(stored)), second]
        else:
            seqs = np.where(np.arange(t.size) >= second, np.arange(t.size) - second, sim.seq)
    truth = sim.true_seq
    seq_of = sim.seq if seqs is None else seqs
    tg = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    strip = stored[truth]
    if case.clap:  # the strip in the first and last 2 s of each stored stretch
        on = stored[truth].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.r_[0, on, 0]))
        clap = np.zeros(truth.size, bool)
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            clap |= ((tg >= tg[a]) & (tg < tg[a] + 2)) | ((tg > tg[b - 1] - 2) & (tg <= tg[b - 1]))
        strip &= clap
    rng = np.random.default_rng(case.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if case.external == "no":
            path = write_session(sim, root, video=True, scale=case.scale, crf=case.crf,
                                 strip=strip, stored=stored, seqs=seqs, plays=plays,
                                 overlay=_occluder(case.occluder, rng, seq_of[truth]))
            report = align_session(path)
        else:
            video, log = _write_external(sim, stored, root)
            start = None
            if case.external == "start":
                start = datetime.fromtimestamp(int(sim.frame_wall_ns[0]) / 1e9,
                                               UTC).isoformat(timespec="microseconds")
            path = root / "ext"
            report = align_external(log, video, path, video_start_wall=start)
        table = read_aligned(path)
    seq = np.array(table.column("seq").fill_null(-1).to_pylist())
    method = np.array(table.column("method").to_pylist())
    read = np.array(table.column("timecode_seq").fill_null(-1).to_pylist())
    right = seq_of[truth]
    torn = np.where(sim.tear_seq >= 0, seq_of[np.maximum(sim.tear_seq, 0)], -2)
    tc = method == "timecode"
    clock = method == "clock"
    misread = (read >= 0) & (read != right) & (read != torn)
    # frames that show a stored sample inside a Play should be matched
    showing = stored[truth] & stored[np.maximum(truth - 1, 0)] & stored[
        np.minimum(truth + 1, truth.size - 1)]
    shown = sim.screen_ns >= 0
    latency_truth = float(np.mean(sim.screen_ns[shown] - sim.render_ns[shown])) / 1e6
    main = report.clock
    seg_client = main["reference_client"]
    j = int(np.argmin(np.abs(np.where(stored, sim.client_t, np.inf) - seg_client)))
    host_truth = sim.render_ns[j] + (seg_client - sim.client_t[j]) * sim.rate * 1e9
    if case.external != "no":  # the clock is the samples' wall time there
        host_truth += WALL_OFFSET_NS
    offset_err = main["offset_ms"] - (host_truth / 1e6 - seg_client * 1e3)
    external_offset = case.external == "timecode"  # the latency absorbs the video's start
    drift_err = main["drift_ppm"] - (sim.rate - 1) * 1e6
    return {
        "frames": truth.size, "timecode": int(tc.sum()), "tc_wrong": int((tc & (seq != right)
                                                                          & (seq != torn)).sum()),
        "misreads": int(misread.sum()), "misreads_kept": int((misread & tc).sum()),
        "rejected": report.timecode["rejected"], "clock": int(clock.sum()),
        "clock_within_1": int((clock & (np.abs(seq - right) <= 1)).sum()),
        "showing": int(showing.sum()), "showing_matched": int((showing & (method != "none"))
                                                              .sum()),
        "offset_err_ms": offset_err,
        "offset_covered": float(abs(offset_err) <= main["asymmetry_bound_ms"]
                                + 2 * main["offset_std_ms"]),
        "drift_err_ppm": drift_err,
        "drift_covered": float(abs(drift_err) <= 2 * main["drift_std_ppm"]),
        "latency_err_ms": report.latency_ms - latency_truth if report.latency_source ==
        "timecode" and not external_offset else float("nan"),
        "latency_covered": float(abs(report.latency_ms - latency_truth)
                                 <= (report.latency_bound_ms or 0) + main["asymmetry_bound_ms"]
                                 + 2 * main["offset_std_ms"])
        if report.latency_source == "timecode" and not external_offset else float("nan"),
        "long": float(case.duration - case.play_at >= 240),
    }


def locate_cost() -> None:
    """Time spent searching for the strip against decoding and reading every frame, on a
    1280x720 clap-mode recording (the strip in the first and last 2 s of a minute)."""
    sim = simulate_capture(60.0, seed=99)
    tg = (sim.grab_start_ns - sim.grab_start_ns[0]) / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        path = write_session(sim, Path(tmp), video=True, scale=1280 / VIEWPORT[0],
                             strip=(tg < 2) | (tg > tg[-1] - 2))
        pts = [orjson.loads(line)["pts_us"] for line in
               (path / "frames.jsonl").read_bytes().splitlines()]
        result = decode_video(path / "video.mkv", np.array(pts))
    print(f"locating: {result.locate_calls} searches over {sim.true_seq.size} frames took "
          f"{result.locate_s:.2f} s; decoding and reading every frame {result.decode_s:.2f} s; "
          f"locate / decode = {result.locate_s / result.decode_s:.3f} (limit 0.1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    locate_cost()
    cases = corpus(args.frames)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_case, cases))
    total = {k: 0.0 for k in results[0]}
    print(f"{'case':6} {'frames':>7} {'tc':>7} {'tcwrong':>7} {'misrd':>6} {'kept':>5} "
          f"{'clock':>7} {'clk<=1':>7} {'off ms':>7} {'drift':>7} {'lat ms':>7}  factors")
    for case, r in zip(cases, results, strict=True):
        print(f"{case.name:6} {r['frames']:7d} {r['timecode']:7d} {r['tc_wrong']:7d} "
              f"{r['misreads']:6d} {r['misreads_kept']:5d} {r['clock']:7d} "
              f"{r['clock_within_1']:7d} {r['offset_err_ms']:7.3f} {r['drift_err_ppm']:7.2f} "
              f"{r['latency_err_ms']:7.2f}  play@{case.play_at:g} "
              f"{'clap' if case.clap else 'always'} crf{case.crf} x{case.scale} "
              f"{case.occluder} {case.drift:+g}ppm{' reset' if case.reset else ''} "
              f"drop{case.drop} {case.plays} ext:{case.external}{' tear' if case.tear else ''}")
        for k, v in r.items():
            if v == v:
                total[k] += v
    n = len(results)

    def share(key: str) -> str:
        values = [r[key] for r in results if r[key] == r[key]]
        return f"{sum(values):.0f}/{len(values)}"

    print(f"\n{n} cases, {total['frames']:.0f} frames, {time.perf_counter() - start:.0f} s")
    print(f"timecode-mapped frames {total['timecode']:.0f}, wrong {total['tc_wrong']:.0f}")
    print(f"misreads (reads naming a wrong stored sample) {total['misreads']:.0f}, kept "
          f"{total['misreads_kept']:.0f}; reads rejected {total['rejected']:.0f}")
    within = 100 * total["clock_within_1"] / max(total["clock"], 1)
    print(f"clock-mapped frames {total['clock']:.0f}, within one frame "
          f"{total['clock_within_1']:.0f} ({within:.3f} %)")
    print(f"frames showing a stored sample inside a Play {total['showing']:.0f}, matched "
          f"{total['showing_matched']:.0f}")
    offsets = np.array([r["offset_err_ms"] for r in results])
    longs = [abs(r["drift_err_ppm"]) for r in results if r["long"]]
    print(f"offset |error| max {np.abs(offsets).max():.3f} ms; covered {share('offset_covered')}")
    print(f"drift |error| max over sessions >= 4 min {max(longs) if longs else float('nan'):.2f} "
          f"ppm; covered {share('drift_covered')}")
    print(f"latency covered {share('latency_covered')}")


if __name__ == "__main__":
    main()
