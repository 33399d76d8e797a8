"""The built-in demo game: a deterministic 3D world whose frames and wire samples agree exactly,
shown in a real window so `stpe demo` can record, align, label and export it end to end."""

from pipeline.demo._display import GameWindow, VirtualDisplay
from pipeline.demo._player import DemoGame, ShownFrame, visible_seqs
from pipeline.demo._run import DemoOptions, DemoResult, record_demo, run_demo
from pipeline.demo._sample import build_sample, viewport_projection
from pipeline.demo._scene import Frame, render_state
from pipeline.demo._truth import TruthCheck, check_truth, read_truth
from pipeline.demo._world import CharacterState, initial_state, step

__all__ = [
    "CharacterState",
    "DemoGame",
    "DemoOptions",
    "DemoResult",
    "Frame",
    "GameWindow",
    "ShownFrame",
    "TruthCheck",
    "VirtualDisplay",
    "build_sample",
    "check_truth",
    "initial_state",
    "read_truth",
    "record_demo",
    "render_state",
    "run_demo",
    "step",
    "viewport_projection",
    "visible_seqs",
]
