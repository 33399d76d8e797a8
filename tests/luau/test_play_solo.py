"""The plugin, unchanged, in real Luau VMs (the edit copy, and the client and server copies of
Play Solo) in a fake Roblox world, posting over real HTTP to the real receiver on loopback."""

from __future__ import annotations

import math

import pytest

from capture import Session
from capture._wire import Sample
from tests.luau._harness import WALL_BASE_MS, PlaySolo

N = 90
DT = 1 / 60


def _state(i: int) -> dict:
    t = i * DT
    x = 4.0 * t
    return {"root": [x, 3.0, 0.0], "yaw": 0.3 * math.sin(t), "velocity": [4.0, 0.0, 0.0],
            "angular": [0.0, math.cos(t), 0.0], "state": "Freefall" if i % 30 > 25 else "Running",
            "camera": {"pos": [x, 6.0, 12.0], "yaw": 0.0, "pitch": -0.2, "focus": [x, 3.0, 0.0],
                       "fov": 70.0 + i * 0.1},
            "crate": [5.0, 1.0, -3.0 - 0.1 * i], "crate_velocity": [0.0, 0.0, -6.0],
            "keys": ["W", "LeftShift"] if i % 2 else ["W"], "buttons": ["MouseButton2"],
            "mouse": [640.0 + i, 360.0 - i]}


def _project(cam: dict, point: list[float]) -> tuple[float, float, float]:
    """Camera:WorldToViewportPoint for a camera with yaw 0 and `pitch` about X."""
    c, s = math.cos(cam["pitch"]), math.sin(cam["pitch"])
    d = [point[k] - cam["pos"][k] for k in range(3)]
    # R = Rx(pitch); object = R^T d
    ox, oy, oz = d[0], c * d[1] + s * d[2], -s * d[1] + c * d[2]
    depth = -oz
    f = 360.0 / math.tan(math.radians(cam["fov"]) / 2)
    return 640.0 + f * ox / depth, 360.0 - f * oy / depth, depth


def _record(play: PlaySolo, frames: int) -> int:
    """Arms, waits for the sampler, renders `frames` posed frames, disarms and renders on
    until the sampler stops; returns how many frames it sampled."""
    play.idle(0.3)  # the edit copy says hello and arms the client, which binds its step
    assert play.sampling
    i = 0
    while play.sampling:
        if i == frames:
            play.disarm()
        play.client.call("pose", _state(i))
        play.frame(DT)
        i += 1
    play.idle(1.0)  # the server flushes and says bye
    return play.sampled_frames


def test_n_frames_arrive_as_n_samples_equal_to_the_world(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    sampled = _record(play, N)
    assert N <= sampled <= N + 2  # the disarm message arrives on the next frame
    assert play.logs("warn") == [] and play.logs("error") == []
    records = sorted(Session.open(writer.path).state_records(), key=lambda r: r["seq"])
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(len(records)))
    assert len(records) == sampled  # one sample per rendered frame, none lost
    samples = [Sample.model_validate(r["sample"]) for r in records]
    for i, sample in enumerate(samples):
        s = _state(i)
        if i > 0:
            assert sample.t - samples[i - 1].t == pytest.approx(DT)
        assert sample.dt == pytest.approx(DT)
        assert sample.wall_ms == WALL_BASE_MS + round(sample.t * 1000)
        ch = sample.character
        assert ch is not None
        assert ch.root.cframe[:3] == pytest.approx(s["root"])
        yaw = s["yaw"]
        assert ch.root.cframe[3:] == pytest.approx(
            [math.cos(yaw), 0, math.sin(yaw), 0, 1, 0, -math.sin(yaw), 0, math.cos(yaw)])
        assert ch.root.velocity == pytest.approx(s["velocity"])
        assert ch.root.angular_velocity == pytest.approx(s["angular"])
        assert ch.root.size == (2.0, 2.0, 1.0)
        assert ch.humanoid.state == s["state"] and ch.humanoid.walk_speed == 16.0
        assert ch.humanoid.floor_material == "Plastic" and ch.humanoid.health == 100.0
        assert ch.ground.hit and ch.ground.instance == "Workspace.Baseplate"
        assert ch.ground.distance == pytest.approx(3.0)
        assert ch.ground.point == pytest.approx([s["root"][0], 0.0, 0.0])
        assert ch.ground.normal == (0.0, 1.0, 0.0) and ch.ground.material == "Plastic"
        assert ch.bbox.size == pytest.approx([2.0, 3.0, 1.0])
        cam = sample.camera
        assert cam.cframe[:3] == pytest.approx(s["camera"]["pos"])
        assert cam.fov_y == pytest.approx(s["camera"]["fov"])
        assert cam.viewport == (1280.0, 720.0) and cam.gui_inset == (0.0, 36.0, 0.0, 0.0)
        assert cam.focus == pytest.approx(s["camera"]["focus"])
        assert cam.type == "Custom" and cam.subject == "Workspace.Player1.Humanoid"
        u, v, depth = _project(s["camera"], s["root"])
        assert cam.root_projection == pytest.approx([u, v, depth, 1.0])
        assert sample.inputs.keys == sorted(s["keys"])
        assert sample.inputs.mouse_buttons == ["MouseButton2"]
        assert sample.inputs.mouse_position == tuple(s["mouse"])
        if i > 0:
            assert sample.inputs.mouse_delta == (1.0, -1.0)
        assert sample.inputs.gamepad is None
        (crate,) = sample.entities
        assert crate.name == "Crate" and crate.id == "Workspace.Crate"
        assert crate.cframe[:3] == pytest.approx(s["crate"])
        assert crate.velocity == (0.0, 0.0, -6.0)
        cu, cv, cd = _project(s["camera"], s["crate"])
        assert crate.projection[:3] == pytest.approx([cu, cv, cd])
    probes = [r for r in Session.open(writer.path).sync_records() if r["kind"] == "probe"]
    assert len(probes) >= 2
    assert all(p["t0"] <= p["t3"] and p["t1_ns"] <= p["t2_ns"] for p in probes)
    kinds = [e["kind"] for e in Session.open(writer.path).events()]
    assert "hello" in kinds and "bye" in kinds
    bye = next(e for e in Session.open(writer.path).events() if e["kind"] == "bye")
    assert bye["last_seq"] == sampled - 1
    assert play.status_text == f"idle | connected | {sampled} samples sent"
    assert play.client.errors() == [] and play.edit.errors() == []
    assert play.replicated == []  # nothing of the plugin is visible to the game


def test_malformed_messages_from_another_copy_are_ignored(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off"})
    play.idle(0.3)
    hostile = [5, "x", {"kind": "samples", "seqs": [0], "items": ['{"seq":0},{"seq":1}']},
               {"kind": "samples", "seqs": [0, 1], "items": ["{}"]},
               {"kind": "samples", "seqs": [900], "items": ['{"seq":900']},
               {"kind": "copy"}, {"kind": "stop"}, {"kind": "nope", "x": [1] * 1000}]
    for message in hostile:
        play.host.messages.append(("client", "client-1", message))
    sampled = _record(play, 30)
    records = sorted(Session.open(writer.path).state_records(), key=lambda r: r["seq"])
    assert [r["seq"] for r in records] == list(range(sampled))
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "malformed message" in warnings[0]
    assert play.edit.errors() == []


def test_gzip_bodies_are_stored_the_same(rx) -> None:
    receiver, writer = rx
    play = PlaySolo(receiver.port, {"STPE_armed": True, "STPE_timecode": "off",
                                    "STPE_gzip": True})
    sampled = _record(play, 30)
    records = sorted(Session.open(writer.path).state_records(), key=lambda r: r["seq"])
    assert [r["seq"] for r in records] == list(range(sampled))
    assert play.host.gzipped > 0 and play.logs("warn") == []
