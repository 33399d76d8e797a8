"""Frame <-> state matching: our aligner vs pandas.merge_asof on one hour of 60 fps capture.

The capture is simulated in memory with known truth (alignment.simulate_capture: render rate
wandering 54-65 fps, 100 ppm client drift, a display pipeline of GPU time, 60 Hz refresh,
double buffering and compositor delay averaging 25 ms, asymmetric jittered probe delays,
2 % dropped grabs); no video is encoded. "wrong" counts frames mapped to any other sample
than the one on screen, "off >1" those mapped more than one sample away. Compared, on the
same input:

- ours, timecode: every frame's decoded seq (what the strip gives), matched exactly;
- ours, clap: the strip only in the first and last 2 s (latency measured there), the rest
  matched through the fitted clock;
- pandas.merge_asof(direction="nearest", tolerance=50 ms) on raw timestamps, what a user
  would write: frame wall times vs the samples' wall_ms;
- merge_asof(direction="backward") on wall times shifted by our measured latency (the
  latency is most of the gap; the rest is what the clock model adds).

Run: python benchmarks/align.py [--hours 1]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _timing import best_of

from alignment import Matching, fit_clock, match_frames, simulate_capture
from alignment._match import content_times, display_latency


def _sync(sim) -> list[dict]:
    probes = [{"kind": "probe", "t0": a, "t1_ns": b, "t2_ns": c, "t3": d}
              for a, b, c, d in zip(sim.probe_t0.tolist(), sim.probe_t1_ns.tolist(),
                                    sim.probe_t2_ns.tolist(), sim.probe_t3.tolist(), strict=True)]
    anchors = [{"kind": "anchor", "client": c, "arrival_mono_ns": a}
               for c, a in zip(sim.anchor_client.tolist(), sim.anchor_arrival_ns.tolist(),
                               strict=True)]
    return probes + anchors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    sim = simulate_capture(args.hours * 3600, latency_ms=25.0, drift_ppm=100.0, seed=1)
    frames, truth = sim.grab_start_ns.astype(np.float64), sim.true_seq
    print(f"{sim.seq.size} samples, {frames.size} frames, {sim.probe_t0.size} probes")

    fit_s, (model, segment) = best_of(lambda: fit_clock(sim.client_t, sim.arrival_ns,
                                                         _sync(sim)), repeat=1)
    host = model.to_host_ns(sim.client_t, segment)

    decoded = truth.copy()  # the strip on every frame: its decoded seq (= sample index here)
    tc_s, tc = best_of(lambda: match_frames(frames, host, decoded=decoded))

    clap = (frames < frames[0] + 2e9) | (frames > frames[-1] - 2e9)
    clap_decoded = np.where(clap, truth, -1)

    def clap_match() -> Matching:
        latency, _ = display_latency(frames, host, clap_decoded)
        return match_frames(content_times(frames, latency, host), host, decoded=clap_decoded)

    clap_s, clap_m = best_of(clap_match)
    latency, _ = display_latency(frames, host, clap_decoded)

    left = pd.DataFrame({"time": pd.to_datetime(sim.frame_wall_ns, unit="ns")})
    right = pd.DataFrame({"time": pd.to_datetime(sim.wall_ms * 1_000_000, unit="ns"),
                          "seq": sim.seq})

    def asof(shift_ns: float = 0.0, direction: str = "nearest") -> np.ndarray:
        shifted = left.assign(time=left["time"] - pd.Timedelta(int(shift_ns), "ns"))
        merged = pd.merge_asof(shifted, right, on="time", direction=direction,
                               tolerance=pd.Timedelta(50, "ms"))
        return merged["seq"].to_numpy()

    asof_s, asof_seq = best_of(asof)
    _, asof_lat_seq = best_of(lambda: asof(latency, "backward"), repeat=1)

    def wrong(seq: np.ndarray) -> int:
        seq = np.asarray(seq, np.float64)
        return int(np.sum(~(seq == truth)))

    def far(seq: np.ndarray) -> int:
        seq = np.asarray(seq, np.float64)
        return int(np.sum(~(np.abs(seq - truth) <= 1)))

    tc_seq = np.where(tc.matched, sim.seq[tc.nearest], -1)
    clap_seq = np.where(clap_m.matched, sim.seq[clap_m.nearest], -1)
    rows = [
        ("ours, timecode", wrong(tc_seq), far(tc_seq), tc_s),
        ("ours, clap + clock", wrong(clap_seq), far(clap_seq), clap_s),
        ("merge_asof nearest 50 ms", wrong(asof_seq), far(asof_seq), asof_s),
        ("merge_asof back, our lat.", wrong(asof_lat_seq), far(asof_lat_seq), float("nan")),
    ]
    print(f"clock fit (probes + anchors): {fit_s:.3f} s, drift {model.main.drift_ppm:.2f} ppm "
          f"(true 100), latency measured {latency / 1e6:.2f} ms (mean render-to-screen 25)")
    print(f"{'method':28} {'wrong':>8} {'wrong %':>8} {'off >1':>8} {'match s':>9} "
          f"{'frames/s':>12}")
    for name, bad, off, seconds in rows:
        rate = frames.size / seconds if seconds == seconds else float("nan")
        print(f"{name:28} {bad:8d} {100 * bad / frames.size:8.3f} {off:8d} {seconds:9.4f} "
              f"{rate:12.3e}")
    asof_bad, clap_bad = rows[2][1], rows[1][1]
    print(f"wrong mappings, merge_asof / ours (clap + clock): "
          f"{asof_bad / max(clap_bad, 1):.1f}x"
          + (" (ours has none; ratio vs 1)" if clap_bad == 0 else ""))
    print(f"speed, ours (clap + clock) / merge_asof: {asof_s / clap_s:.1f}x; "
          f"ours matches {frames.size / clap_s / 1e6:.1f} M frames/s")


if __name__ == "__main__":
    main()
