"""Two Plays in one `stpe record` (the Recording it runs: receiver and screen recorder):
the plugin's copies in real Luau VMs record twice into one session and every sample of
both Plays that reached the edit copy is stored, with seqs continuing."""

from __future__ import annotations

import pytest

from capture import Recording, Session
from tests.luau._harness import PlaySolo
from tests.luau.test_play_solo import DT, _state

pytestmark = [pytest.mark.x11, pytest.mark.timeout(240)]


def _delivered(play: PlaySolo) -> list[int]:
    return [s for m in play.delivered if m.get("kind") == "samples" for s in m["seqs"]]


def test_two_plays_in_one_recording_are_both_stored(display, tmp_path):
    display.fill((40, 40, 40))
    with Recording(tmp_path, fps=30, port=0, session_id="two") as rec:
        play = PlaySolo(int(rec.url.rsplit(":", 1)[1]),
                        {"STPE_armed": True, "STPE_timecode": "off"})
        first_play = 0
        for n in range(2):
            if n:
                first_play = len(_delivered(play))
                play.start_play()
            play.idle(0.3)
            for i in range(50):
                play.client.call("pose", _state(i))
                play.frame(DT)
            play.stop_play()
            play.idle(1.0)
        final = rec.stop()
    delivered = _delivered(play)
    session = Session.open(tmp_path / "two")
    stored = sorted(r["seq"] for r in session.state_records())
    assert stored == sorted(delivered) == list(range(len(stored)))
    assert final.samples == len(stored) >= 2 * (50 - 6)
    plays = [e for e in session.events() if e["kind"] == "play"]
    assert [e["first_seq"] for e in plays] == [0, first_play]
    assert session.manifest.status == "complete"
