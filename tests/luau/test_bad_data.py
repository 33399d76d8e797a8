"""Bad data never blocks the plugin: names cut on a UTF-8 boundary, batches refused as
malformed dropped (and reported) instead of retried, no timecode on a frame without a
sample, hostile stored settings refused, and a fake world that raises like Roblox."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture import ReceiverThread, Session, SessionWriter
from tests.luau._harness import PlaySolo
from tests.luau._refusing import refusing_receiver
from tests.luau.test_failures import _finish, _frames, _strip_seq
from tests.luau.test_play_solo import DT, _state

pytestmark = pytest.mark.timeout(120)


def test_long_multibyte_names_are_cut_whole_and_every_sample_is_stored(tmp_path: Path) -> None:
    name = "a" + "\u00e9" * 150  # 301 bytes: a cut at 200 bytes splits an é
    writer = SessionWriter.create(tmp_path, "utf8")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "off"})
        play.idle(0.3)
        for i in range(30):
            play.client.call("pose", {**_state(i), "crate_name": name})
            play.frame(DT)
        _finish(play, 30)
    writer.close()
    records = sorted(Session.open(writer.path).state_records(), key=lambda r: r["seq"])
    assert [r["seq"] for r in records] == list(range(play.sampled_frames))
    names = {e["name"] for r in records for e in r["sample"]["entities"]}
    assert names == {"a" + "\u00e9" * 99}  # 199 bytes, whole characters
    assert [s for _, path, s in play.host.requests if path == "/v1/samples"] == [200] * len(
        [p for _, p, _ in play.host.requests if p == "/v1/samples"])


@pytest.mark.parametrize("status", [400, 415, 422])
def test_a_refused_batch_is_dropped_and_reported_not_retried(status: int) -> None:
    with refusing_receiver(status, "body refused") as (port, batches):
        play = PlaySolo(port, {"STPE_armed": True, "STPE_timecode": "off"})
        play.idle(0.3)
        _finish(play, _frames(play, 120))
    sent = [s["seq"] for b in batches for s in b["samples"]]
    assert sent == list(range(play.sampled_frames))  # each sent once, in order
    reported = [(r["first"], r["last"]) for b in batches for r in b["dropped"]]
    assert reported and reported[0][0] == 0  # the loss is reported onward
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "rejected" in warnings[0] and "body refused" in warnings[0]
    probes = [p for b in batches for p in b["probes"]]
    assert probes and all(p["t1_ns"] == 5 for p in probes)  # matched by the echoed id


def test_no_timecode_is_shown_on_a_frame_whose_sample_failed(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "fail")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "always"})
        play.idle(0.3)
        shown = []
        for i in range(12):
            broken = {"fov_text": "wide"} if i in (5, 6) else {"camera": _state(i)["camera"]}
            play.client.call("pose", {**_state(i), **broken})
            play.frame(DT)
            shown.append(_strip_seq(play))
        _finish(play, 12)
    writer.close()
    assert shown == [0, 1, 2, 3, 4, -1, -1, 5, 6, 7, 8, 9]  # hidden, never a stale seq
    stored = sorted(r["seq"] for r in Session.open(writer.path).state_records())
    assert stored == list(range(play.sampled_frames - 2))
    assert any("reading the game state failed" in m for m in play.logs("warn"))


@pytest.mark.parametrize("token", ['a"b', "a\\b", "tab\there", "\u00e9t\u00e9"])
def test_a_hostile_stored_token_is_refused_and_not_sent(tmp_path: Path, token: str) -> None:
    writer = SessionWriter.create(tmp_path, "token")
    with ReceiverThread(writer, port=0) as rx:
        play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "off", "STPE_token": token})
        play.idle(0.3)
        _finish(play, _frames(play, 10))
    writer.close()
    warnings = play.logs("warn")
    assert len(warnings) == 1 and "setting token" in warnings[0]
    assert "without quotes or backslashes" in warnings[0]
    assert len(list(Session.open(writer.path).state_records())) == play.sampled_frames


def test_the_fake_world_raises_on_unknown_members_like_roblox() -> None:
    play = PlaySolo(1)
    check = play.client.lua.load_chunk(
        "local world = ...; local ws = world.game:GetService('Workspace');"
        "local ok, err = pcall(function() return ws.Baseplate.Sizee end);"
        "return ok, err, ws.Baseplate.Parent == ws, ws:FindFirstChild('Nope') == nil",
        name="=probe")
    ok, err, parent, missing = check(play.client.world)
    assert ok is False and "Sizee is not a valid member of Part" in str(err)
    assert parent is True and missing is True
    http = play.client.lua.load_chunk(
        "local world = ...; return pcall(function() return "
        "world.game:GetService('HttpService'):RequestAsync({ Url = 'http://127.0.0.1:1/' }) end)",
        name="=probe")(play.client.world)
    assert http[0] is False and "can only be executed by game server" in str(http[1])
