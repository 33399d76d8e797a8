"""The RemoteEvent fallback for a client copy without an Edit PluginConnection: the plugin,
unchanged, in real Luau VMs (edit, server and client copies), the client's samples packed
in buffers and relayed by the server copy over a fake RemoteEvent that takes time and has a
bandwidth budget, posted by the edit copy to the real receiver on loopback."""

from __future__ import annotations

import math
import struct

import pytest

from capture import Session, SessionWriter
from capture._wire import Sample
from tests.luau._harness import WALL_BASE_MS, Host, PlaySolo
from tests.luau.test_play_solo import _project, _state

DT = 1 / 60
BUDGET = 40_000  # the budget docs/plugin.md states for the relay, bytes/s
BURST = 0.25  # seconds of budget the plugin may send at once (docs/plugin.md)
FLUSH = 0.1  # the client's batch period (docs/plugin.md)


def _play(port: int, client_edit: str, armed: bool = True, **host: object) -> PlaySolo:
    h = Host(port=port, settings={"STPE_port": port, "STPE_timecode": "off"},
             client_edit=client_edit, **host)
    return PlaySolo(port, {"STPE_armed": armed}, host=h)


def _has_relay(play: PlaySolo, copy: str) -> bool:
    world = getattr(play, copy).world
    storage = world.get("game").get("GetService")(world.get("game"), "ReplicatedStorage")
    storage = storage[0]
    return storage.get("FindFirstChild")(storage, "STPE_Relay")[0] is not None


def _record(play: PlaySolo, frames: int) -> int:
    """Waits for the client to sample, renders `frames` posed frames, disarms, renders on
    until it stops; returns how many frames it sampled."""
    play.idle(4.0)  # the client waits for an Edit connection, the relay opens, hello, arm
    assert play.sampling
    i = 0
    while play.sampling:
        if i == frames:
            play.disarm()
        play.client.call("pose", _state(i % 600))
        play.frame(DT)
        i += 1
    play.idle(1.0)
    return play.sampled_frames


def _records(writer: SessionWriter) -> list[dict]:
    return sorted(Session.open(writer.path).state_records(), key=lambda r: r["seq"])


def test_the_direct_path_never_creates_the_relay(rx) -> None:
    receiver, writer = rx
    play = _play(receiver.port, "connected")
    sampled = _record(play, 30)
    assert len(_records(writer)) == sampled
    assert play.host.remote_fired == [] and play.replicated == []
    assert not _has_relay(play, "server")


@pytest.mark.parametrize("client_edit", ["absent", "none"])
def test_without_an_edit_connection_every_sample_arrives_through_the_relay(rx, client_edit) -> None:
    receiver, writer = rx
    play = _play(receiver.port, client_edit)
    sampled = _record(play, 90)
    assert 90 <= sampled <= 96  # the disarm crosses two hops and the remote's latency
    assert play.logs("warn") == [] and play.logs("error") == []
    assert play.replicated == ["STPE_Relay"]
    assert not _has_relay(play, "server") and not _has_relay(play, "client")
    records = _records(writer)
    assert [r["seq"] for r in records] == list(range(sampled))
    f32 = {"rel": 1e-6, "abs": 1e-5}
    for i, record in enumerate(records):
        sample = Sample.model_validate(record["sample"])
        s = _state(i)
        assert sample.dt == pytest.approx(DT, **f32)
        assert sample.wall_ms == WALL_BASE_MS + round(sample.t * 1000)  # f64: exact
        if i > 0:
            assert sample.t - records[i - 1]["sample"]["t"] == pytest.approx(DT, rel=1e-9)
        ch = sample.character
        assert ch is not None
        assert ch.root.cframe[:3] == pytest.approx(s["root"], **f32)
        yaw = s["yaw"]
        assert ch.root.cframe[3:] == pytest.approx(
            [math.cos(yaw), 0, math.sin(yaw), 0, 1, 0, -math.sin(yaw), 0, math.cos(yaw)], **f32)
        assert ch.root.velocity == pytest.approx(s["velocity"], **f32)
        assert ch.root.angular_velocity == pytest.approx(s["angular"], **f32)
        assert ch.humanoid.state == s["state"] and ch.humanoid.walk_speed == 16.0
        assert ch.humanoid.jump is False and ch.humanoid.floor_material == "Plastic"
        assert ch.ground.hit and ch.ground.instance == "Workspace.Baseplate"
        assert ch.ground.distance == pytest.approx(3.0, **f32)
        assert ch.ground.normal == (0.0, 1.0, 0.0) and ch.ground.material == "Plastic"
        assert ch.bbox.size == pytest.approx([2.0, 3.0, 1.0], **f32)
        cam = sample.camera
        assert cam.cframe[:3] == pytest.approx(s["camera"]["pos"], **f32)
        assert cam.fov_y == pytest.approx(s["camera"]["fov"], **f32)
        assert cam.viewport == (1280.0, 720.0) and cam.gui_inset == (0.0, 36.0, 0.0, 0.0)
        assert cam.type == "Custom" and cam.subject == "Workspace.Player1.Humanoid"
        u, v, depth = _project(s["camera"], s["root"])
        assert cam.root_projection == pytest.approx([u, v, depth, 1.0], rel=1e-5)
        assert sample.inputs.keys == sorted(s["keys"])
        assert sample.inputs.mouse_buttons == ["MouseButton2"]
        assert sample.inputs.mouse_position == tuple(s["mouse"])
        assert sample.inputs.gamepad is None
        (crate,) = sample.entities
        assert crate.name == "Crate" and crate.id == "Workspace.Crate" and crate.tag == "STPE_Track"
        assert crate.cframe[:3] == pytest.approx(s["crate"], **f32)
        assert crate.velocity == (0.0, 0.0, -6.0)
    assert play.status_text == f"idle | connected | {sampled} samples sent"


def test_the_relay_exists_only_while_armed(rx) -> None:
    receiver, _ = rx
    play = _play(receiver.port, "absent", armed=False)
    play.idle(6.0)
    assert not _has_relay(play, "server") and not _has_relay(play, "client")
    assert play.host.remote_fired == []
    play.record()
    play.idle(4.0)
    assert _has_relay(play, "server") and _has_relay(play, "client") and play.sampling
    play.disarm()
    play.frame(DT)
    play.idle(0.5)
    assert not play.sampling
    assert not _has_relay(play, "server") and not _has_relay(play, "client")
    play.record()  # armed again: a new relay, removed at Stop (Unloading)
    play.idle(4.0)
    assert _has_relay(play, "server") and play.sampling
    play.stop_play()
    assert not _has_relay(play, "server")
    play.disarm()  # armed but idle without a Play: nothing left behind
    assert play.edit.errors() == [] and play.server.errors() == []


class _Reader:
    """The relay packet layout as docs/plugin.md states it, read with struct."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        out = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return out

    def name(self) -> str:
        (n,) = self.take("B")
        self.at += n
        return self.data[self.at - n:self.at].decode()

    def names(self) -> list[str]:
        (n,) = self.take("H")
        return [self.name() for _ in range(n)]

    def maybe(self, read):
        (flag,) = self.take("B")
        return read() if flag else None

    def sample(self) -> dict:
        (seq,) = self.take("I")
        t, dt, wall = self.take("dfd")
        character = self.maybe(lambda: {
            "humanoid": (self.name(), self.take("3ff?"), self.name(), self.take("f")),
            "root": self.take("21f"), "bbox": self.take("15f"),
            "ground": (self.take("?"), self.maybe(lambda: self.take("3f")),
                       self.maybe(lambda: self.take("3f")), self.maybe(self.name),
                       self.maybe(self.name), self.maybe(lambda: self.take("f")))})
        camera = (self.take("22f"), self.name(), self.maybe(self.name),
                  self.maybe(lambda: self.take("4f")))
        inputs = (self.names(), self.names(), self.take("4f"), self.maybe(lambda: (
            self.take("6f"), self.names())))
        (count,) = self.take("H")
        entities = [(self.name(), self.name(), self.take("22f")) for _ in range(count)]
        return {"seq": seq, "t": t, "dt": dt, "wall_ms": wall, "character": character,
                "camera": camera, "inputs": inputs, "entities": entities}


def test_packets_follow_the_documented_layout(rx) -> None:
    receiver, _ = rx
    play = _play(receiver.port, "absent")
    _record(play, 12)
    packets = play.host.remote_payloads
    copy = _Reader(packets[0])
    assert copy.take("B") == (1,)
    viewport_x, viewport_y, clock, wall = copy.take("ffdd")
    assert (viewport_x, viewport_y) == (1280.0, 720.0) and copy.at == len(packets[0])
    assert wall == WALL_BASE_MS + round(clock * 1000)
    samples = []
    for data in packets[1:-1]:
        r = _Reader(data)
        assert r.take("B") == (2,)
        (ranges,) = r.take("H")
        assert ranges == 0
        (count,) = r.take("H")
        samples += [r.sample() for _ in range(count)]
        assert r.at == len(data)  # nothing left over: the layout is the whole packet
    stop = _Reader(packets[-1])
    assert stop.take("BI") == (3, len(samples) - 1) and stop.at == len(packets[-1])
    assert [s["seq"] for s in samples] == list(range(len(samples)))
    s, world = samples[3], _state(3)
    assert s["dt"] == pytest.approx(DT, rel=1e-6)
    humanoid = s["character"]["humanoid"]  # state, (move_direction, walk_speed, jump), ...
    assert humanoid[0] == world["state"] and humanoid[1][3:] == (16.0, False)
    assert humanoid[2] == "Plastic" and humanoid[3] == (100.0,)
    assert s["character"]["root"][:3] == pytest.approx(world["root"], rel=1e-6)
    assert s["camera"][0][:3] == pytest.approx(world["camera"]["pos"], rel=1e-6)
    assert s["camera"][0][12] == pytest.approx(world["camera"]["fov"], rel=1e-6)
    assert s["inputs"][0] == sorted(world["keys"]) and s["inputs"][1] == ["MouseButton2"]
    assert s["inputs"][2][:2] == tuple(world["mouse"])
    ((eid, ename, numbers),) = s["entities"]
    assert (eid, ename) == ("Workspace.Crate", "Crate")
    assert numbers[:3] == pytest.approx(world["crate"], rel=1e-6)


def _bytes_per_sample(play: PlaySolo) -> float:
    payloads = play.host.remote_payloads[1:-1]
    return sum(len(p) for p in payloads) / play.sampled_frames


def test_the_relay_holds_its_budget_with_32_entities_at_60_fps(rx) -> None:
    receiver, writer = rx
    play = _play(receiver.port, "absent")
    play.client.call("spawn", 32)
    sampled = _record(play, 300)  # 5 s at 60 fps
    fired = play.host.remote_fired
    start = fired[1][0]
    for t0, _ in fired:  # any one-second window: at most one second of budget plus the burst
        window = sum(b for t, b in fired if t0 <= t < t0 + 1.0)
        assert window <= BUDGET * (1.0 + BURST) + 8
    seconds = fired[-1][0] - start
    assert sum(b for _, b in fired[1:]) / seconds <= BUDGET * 1.05
    # over budget: what was not sent is declared, stored + dropped = every sampled seq
    stored = {r["seq"] for r in _records(writer)}
    drops = [e for e in Session.open(writer.path).events() if e["kind"] == "drop"]
    dropped = {seq for e in drops for seq in range(e["first"], e["last"] + 1)}
    assert stored.isdisjoint(dropped) and stored | dropped == set(range(sampled))
    assert 0 < len(stored) < sampled  # 33 entities do not fit at 60 fps: decimated, declared
    assert play.status_text.startswith("idle | connected") and "dropped" in play.status_text
    assert play.host.remote_free_at - play.host.t < FLUSH  # the remote never queued behind


def test_stop_mid_batch_loses_at_most_one_batch_period(rx) -> None:
    receiver, writer = rx
    play = _play(receiver.port, "absent")
    play.idle(4.0)
    for i in range(100):  # 1.67 s: the last flush was 0.07 s ago
        play.client.call("pose", _state(i))
        play.frame(DT)
    sampled = play.sampled_frames
    play.stop_play()
    play.edit.world.get("runThreads")()
    play.idle(1.0)
    seqs = [r["seq"] for r in _records(writer)]
    assert seqs == list(range(len(seqs)))
    lost = sampled - len(seqs)
    in_flight = math.ceil((FLUSH + play.host.remote_latency) / DT) + 1
    assert 0 < lost <= in_flight
    assert not _has_relay(play, "server")


def test_hostile_packets_are_ignored(rx) -> None:
    receiver, writer = rx
    play = _play(receiver.port, "absent")
    play.idle(4.0)
    deliver = play.server.world.get("remoteDeliver")
    junk = (b"", b"\x02", b"\x02\x00\x00\x01\x00\x05\x00\x00", b"\x09abc",
            b"\x03\x01\x00\x00\x00\x00")  # truncated, truncated sample, unknown kind, trailing
    for data in junk:
        assert deliver("STPE_Relay", "buffer", play.server.lua.create_string(data))
    deliver("STPE_Relay", "value", "not a buffer")
    sampled = _record(play, 20)
    assert [r["seq"] for r in _records(writer)] == list(range(sampled))
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "malformed or unexpected relay packet" in warnings[0]
    assert play.server.errors() == [] and play.edit.errors() == []
