"""Sessions with known truth on disk: a simulated capture written through SessionWriter and
VideoWriter, optionally with the timecode strip drawn into every frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import orjson

from alignment import SimulatedCapture
from alignment._timecode_code import DEFAULT_CELL, render_strip
from capture import CaptureSettings, PluginInfo, Region, SessionWriter
from capture._layout import ClockAnchor
from capture._video import VideoWriter
from tests.conftest import make_sample

VIEWPORT = (480, 270)


def viewport_frame(seq: int, *, strip: bool = True) -> np.ndarray:
    """A viewport image: a gradient scene, with the strip of `seq` at the bottom left."""
    w, h = VIEWPORT
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    channels = np.broadcast_arrays((x + seq * 3) % 256, (y + x) / 2, 255 - y)
    scene = np.stack(channels, -1).astype(np.uint8)
    if strip:
        cells = render_strip(seq)
        scene[h - cells.shape[0]:, : cells.shape[1]] = cells
    return scene


def write_session(sim: SimulatedCapture, parent: Path, *, name: str = "s",
                  video: bool = False, scale: float = 1.0, crf: int = 28,
                  strip: bool | np.ndarray = True, probes: bool = True,
                  stored: np.ndarray | None = None, seqs: np.ndarray | None = None,
                  plays: list[int] | None = None,
                  shown_seq: dict[int, int] | None = None,
                  overlay: Callable[[int, np.ndarray], None] | None = None) -> Path:
    """Write `sim` as a session folder; returns its path. `strip` may be a per-frame mask
    (clap mode: the strip on some frames only). `stored` masks the samples written (the
    rest never reached the receiver), `seqs` replaces their seqs (a second Play restarting
    at 0), `plays` writes a `play` event per first seq, `shown_seq` draws another seq's
    strip on some frames (frame index -> seq: a misread the decoder cannot detect);
    `overlay(frame, image)` draws over a viewport image (occluders). A torn frame
    (`sim.tear_seq`) shows the newer sample's strip in its top half."""
    writer = SessionWriter.create(parent, name)
    size = (round(VIEWPORT[0] * scale), round(VIEWPORT[1] * scale))
    start = int(sim.grab_start_ns[0])
    writer.update_manifest(
        capture=CaptureSettings(fps=60, region=Region(left=0, top=0, width=size[0],
                                                      height=size[1]), crf=crf),
        plugin=PluginInfo(plugin_version="test", datamodel="simulated",
                          viewport=(float(VIEWPORT[0]), float(VIEWPORT[1]))),
        video_start=ClockAnchor(host_mono_ns=start, host_wall_ns=start))
    lines = []
    seq_of = sim.seq if seqs is None else seqs
    for k in np.flatnonzero(np.ones(sim.seq.size, bool) if stored is None else stored):
        sample = make_sample(int(seq_of[k]), float(sim.client_t[k]))
        sample["wall_ms"] = int(sim.wall_ms[k])
        sample["camera"]["viewport"] = [float(VIEWPORT[0]), float(VIEWPORT[1])]
        arrival = int(sim.arrival_ns[k])
        lines.append(orjson.dumps({"seq": int(seq_of[k]), "arrival_mono_ns": arrival,
                                   "arrival_wall_ns": arrival, "sample": sample}))
    writer.append_state(lines)
    sync = [{"kind": "anchor", "client": float(c), "wall_ms": 0, "arrival_mono_ns": int(a),
             "arrival_wall_ns": int(a)}
            for c, a in zip(sim.anchor_client, sim.anchor_arrival_ns, strict=True)]
    if probes:
        sync += [{"kind": "probe", "t0": float(a), "t1_ns": int(b), "t2_ns": int(c),
                  "t3": float(d)} for a, b, c, d in zip(sim.probe_t0, sim.probe_t1_ns,
                                                       sim.probe_t2_ns, sim.probe_t3, strict=True)]
    writer.append_sync(sync)
    pts = (sim.grab_start_ns - start) // 1000
    if video:
        with VideoWriter(writer.path / "video.mkv", size[0], size[1], crf=crf) as out:
            stored = []
            shown = np.broadcast_to(np.asarray(strip, bool), pts.shape)
            drawn = seq_of[sim.true_seq]
            for i, seq in (shown_seq or {}).items():
                drawn[i] = seq
            for i, (seq, p, on) in enumerate(zip(drawn, pts, shown, strict=True)):
                image = viewport_frame(int(seq), strip=bool(on))
                if on and sim.tear_seq[i] >= 0:
                    top = viewport_frame(int(seq_of[sim.tear_seq[i]]))
                    rows = VIEWPORT[1] - 3 * DEFAULT_CELL // 2 - 1
                    image[:rows] = top[:rows]
                if overlay is not None:
                    overlay(i, image)
                if scale != 1.0:
                    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
                stored.append(out.write(image, int(p)))
        pts = np.array(stored)
    writer.append_frames(
        {"index": i, "pts_us": int(pts[i]), "grab_start_ns": int(sim.grab_start_ns[i]),
         "grab_end_ns": int(sim.grab_end_ns[i]), "wall_ns": int(sim.frame_wall_ns[i]),
         "dropped_before": int(sim.dropped_before[i])} for i in range(pts.size))
    for first in plays or []:
        writer.append_event("play", play=f"p{first}", first_seq=int(first),
                            datamodel="simulated")
    writer.finalize()
    return writer.path
