"""A short labelled session of the demo world (real video, aligned and labels tables), for
the overlay and viewer tests."""

from __future__ import annotations

from pathlib import Path

import cv2

from capture import Session
from pipeline.demo import build_sample, initial_state, render_state, step
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session

VIEWPORT = (320, 180)


def demo_states(count: int, start_tick: int = 150, every: int = 2) -> list:
    """`count` demo states `every` ticks apart from `start_tick` (the character walking)."""
    state, out = initial_state(), []
    while len(out) < count:
        state = step(state)
        if state.tick >= start_tick and (state.tick - start_tick) % every == 0:
            out.append(state)
    return out


def labelled_demo_session(parent: Path, count: int = 8,
                          unmatched: tuple[int, ...] = ()) -> tuple[Path, list]:
    """A session of `count` demo frames, frame i showing sample i (no sample for the frames
    in `unmatched`, as `stpe align` leaves them), with labels.parquet."""
    states = demo_states(count)
    samples = [build_sample(s, seq=i, client_t=10.0 + s.t, dt=1 / 30, wall_ms=1_700_000_000_000,
                            viewport=VIEWPORT) for i, s in enumerate(states)]
    frames = [render_state(s, i, VIEWPORT) for i, s in enumerate(states)]

    def image(i: int, width: int, height: int):
        return cv2.cvtColor(frames[i].image, cv2.COLOR_BGR2RGB)

    shown = [None if i in unmatched else i for i in range(count)]
    path = make_session(parent, samples, shown, [i / 30 for i in range(count)], size=VIEWPORT,
                        video=True, image=image, name="demo")
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    return path, frames


def unmatched_demo_session(parent: Path, unmatched: tuple[int, ...]) -> Path:
    """An 8-frame labelled demo session whose frames `unmatched` have no state."""
    return labelled_demo_session(parent, 8, unmatched)[0]
