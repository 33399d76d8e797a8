"""Shared fixtures: synthetic samples built from the wire models."""

from __future__ import annotations

import math

import pytest

from tests import mutation_stats, skip_guard


@pytest.fixture
def rx(tmp_path):
    """A real receiver on loopback writing a fresh session in `tmp_path`: (receiver, writer)."""
    from capture import ReceiverThread, SessionWriter

    writer = SessionWriter.create(tmp_path, "rx")
    with ReceiverThread(writer, port=0) as receiver:
        yield receiver, writer
    writer.close()


def pytest_configure(config: pytest.Config) -> None:
    skip_guard.register(config)
    mutation_stats.register(config)


def make_sample(seq: int, t: float, *, with_character: bool = True) -> dict:
    """A valid wire sample (as JSON-ready dict) of a character walking along +X."""
    x = 4.0 * t
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    sample: dict = {
        "seq": seq, "t": t, "dt": 1 / 60, "wall_ms": 1_700_000_000_000 + int(t * 1000),
        "camera": {
            "cframe": [x, 5.0, 10.0, *identity], "fov_y": 70.0, "viewport": [1280.0, 720.0],
            "focus": [x, 3.0, 0.0], "gui_inset": [0.0, 36.0, 0.0, 0.0], "type": "Custom",
            "subject": "Workspace.Player.Humanoid", "root_projection": [640.0, 400.0, 10.0, 1.0],
        },
        "inputs": {"keys": ["W"], "mouse_buttons": [], "mouse_position": [10.0, 20.0],
                   "mouse_delta": [0.0, 0.0]},
        "entities": [{"id": "e1", "name": "Crate", "tag": "STPE_Track",
                      "cframe": [5.0, 1.0, -3.0, *identity], "size": [2.0, 2.0, 2.0],
                      "velocity": [0.0, 0.0, 0.0], "projection": [700.0, 380.0, 14.0, 1.0]}],
    }
    if with_character:
        sample["character"] = {
            "humanoid": {"state": "Running", "move_direction": [1.0, 0.0, 0.0],
                         "walk_speed": 16.0, "jump": False, "floor_material": "Plastic",
                         "health": 100.0},
            "root": {"cframe": [x, 3.0, 0.0, *identity], "velocity": [4.0, 0.0, 0.0],
                     "angular_velocity": [0.0, math.sin(t), 0.0], "size": [2.0, 2.0, 1.0]},
            "bbox": {"cframe": [x, 2.5, 0.0, *identity], "size": [4.0, 5.0, 1.0]},
            "ground": {"hit": True, "point": [x, 0.0, 0.0], "normal": [0.0, 1.0, 0.0],
                       "material": "Plastic", "instance": "Workspace.Baseplate",
                       "distance": 3.0},
        }
    return sample


@pytest.fixture
def sample_factory():
    return make_sample
