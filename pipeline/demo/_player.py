"""The demo game's real-time loop: step, sample, draw, and show each frame after a known
display latency, logging when every frame really reached the screen (the truth).

Like Roblox's render step, each step samples the state right after the camera moved and
draws the timecode of that sample; the sample goes to the plugin at once, the picture
reaches the screen `latency_s` later. Physics runs in fixed ticks; when the loop falls
behind, a step advances several ticks (a longer `dt`), as a slow client would.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignment._timecode_code import DEFAULT_CELL
from pipeline.demo._sample import build_sample
from pipeline.demo._scene import render_state
from pipeline.demo._world import TICK_HZ, CharacterState, initial_state, step

logger = logging.getLogger(__name__)

DEFAULT_VIEWPORT = (1280, 720)  # Roblox Studio's usual viewport, as the plugin reports it
DEFAULT_LATENCY_S = 0.05


@dataclass(frozen=True)
class ShownFrame:
    """Truth for one rendered frame: its sample, when it was sampled and when it was shown
    (host_mono ns), and where the root part's centre was drawn (viewport px)."""

    seq: int
    tick: int
    step_ns: int
    client_t: float
    shown_begin_ns: int
    shown_end_ns: int
    root_px: tuple[float, float] | None
    humanoid_state: str


@dataclass(frozen=True)
class _Pending:
    show_at_ns: int
    image: np.ndarray
    info: dict[str, Any]


def _sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


class DemoGame:
    """Plays the scripted demo in real time.

    `show` puts a BGR frame on screen; `submit` hands a wire sample to the plugin; `clock`
    maps host_mono ns to the plugin's client seconds (`os.clock()`)."""

    def __init__(self, *, viewport: tuple[int, int] = DEFAULT_VIEWPORT,
                 latency_s: float = DEFAULT_LATENCY_S, timecode_cell: int = DEFAULT_CELL,
                 render_hz: float = TICK_HZ) -> None:
        if latency_s < 0 or not 0 < render_hz <= TICK_HZ:
            raise ValueError(f"need display latency >= 0 s and 0 < render rate <= {TICK_HZ} Hz, "
                             f"got {latency_s} s and {render_hz} Hz")
        self.render_period_ns = round(1e9 / render_hz)
        self.viewport = viewport
        self.latency_ns = round(latency_s * 1e9)
        self.timecode_cell = timecode_cell
        self.last_state: CharacterState = initial_state()

    def play(self, seconds: float, *, show: Callable[[np.ndarray], None],
             submit: Callable[[dict[str, Any]], None], clock: Callable[[int], float],
             stop: threading.Event | None = None) -> list[ShownFrame]:
        """Run for `seconds` of real time (or until `stop` is set); the truth per frame."""
        period_ns = round(1e9 / TICK_HZ)
        start_ns = time.perf_counter_ns()
        end_ns = start_ns + round(seconds * 1e9)
        pending: collections.deque[_Pending] = collections.deque()
        shown: list[ShownFrame] = []
        state, seq, previous_ns = initial_state(), 0, None
        next_ns = start_ns
        while True:
            if pending and (pending[0].show_at_ns <= next_ns or next_ns >= end_ns):
                frame = pending.popleft()
                _sleep_until(frame.show_at_ns)
                begin = time.perf_counter_ns()
                show(frame.image)
                shown.append(ShownFrame(shown_begin_ns=begin, shown_end_ns=time.perf_counter_ns(),
                                        **frame.info))
                continue
            if next_ns >= end_ns or (stop is not None and stop.is_set()):
                break
            _sleep_until(next_ns)
            step_ns = time.perf_counter_ns()
            due = max(state.tick + 1, (step_ns - start_ns) // period_ns)
            while state.tick < due:
                state = step(state)
            dt = 1 / TICK_HZ if previous_ns is None else (step_ns - previous_ns) / 1e9
            client_t = clock(step_ns)
            sample = build_sample(state, seq=seq, client_t=client_t, dt=min(dt, 9.9),
                                  wall_ms=time.time_ns() // 1_000_000, viewport=self.viewport)
            submit(sample)
            rendered = render_state(state, seq, self.viewport, timecode_cell=self.timecode_cell)
            pending.append(_Pending(step_ns + self.latency_ns, rendered.image, {
                "seq": seq, "tick": state.tick, "step_ns": step_ns, "client_t": client_t,
                "root_px": rendered.root_px, "humanoid_state": state.state}))
            seq, previous_ns = seq + 1, step_ns
            next_ns = max(next_ns + self.render_period_ns,
                          start_ns + (state.tick + 1) * period_ns)
        self.last_state = state
        logger.info("demo game: %d frames in %.1f s, %d physics ticks", seq, seconds, state.tick)
        return shown


def visible_seqs(shown: list[ShownFrame], grab_start_ns: int, grab_end_ns: int) -> set[int]:
    """The seqs that may have been on screen during a grab: a frame is visible from when
    its show began until the next frame's show ended."""
    out = set()
    for i, frame in enumerate(shown):
        until = shown[i + 1].shown_end_ns if i + 1 < len(shown) else None
        if frame.shown_begin_ns <= grab_end_ns and (until is None or until >= grab_start_ns):
            out.add(frame.seq)
    return out
