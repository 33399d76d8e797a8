"""The plugin's edit copy, unchanged, in a real Luau VM: the STPE toolbar and widget, its
settings (plugin:SetSetting, persisted between Studio sessions) and its status; the last
test arms and stops a real Play Solo recording from the toolbar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capture import ReceiverThread, Session, SessionWriter
from pipeline._rbxmx import luau_source_dir, plugin_tree
from tests.luau._harness import Copy, Host, PlaySolo, _tree
from tests.luau._vm import to_lua, to_python
from tests.luau.test_play_solo import DT, _state

pytestmark = pytest.mark.timeout(120)


class Edit:
    """The edit DataModel's copy of the plugin, sharing `host` (settings, clock, HTTP)."""

    def __init__(self, host: Host) -> None:
        self.copy = Copy(host, "edit", _tree(plugin_tree(luau_source_dir())))
        self.host = host
        self.copy.run()
        self.world = self.copy.world

    def button(self, name: str) -> Any:
        return self.world.get("buttons").get(name)

    @property
    def widget(self) -> Any:
        return self.world.get("widgets").get("STPE")

    def field(self, name: str) -> Any:
        """A GUI instance of the widget (the Frame holds them)."""
        return self.widget.get("Frame").get(name)

    def click(self, name: str) -> None:
        _fire(self.button(name).get("Click"))

    def activate(self, name: str) -> None:
        _fire(self.field(name).get("Activated"))

    def type_port(self, text: str) -> None:
        box = self.field("Port")
        box.set("Text", text)
        _fire(box.get("FocusLost"), True)

    def tick(self, seconds: float = 1.0) -> None:
        """Time passes in the edit copy: its status poll runs."""
        self.host.t += seconds
        self.world.get("runThreads")()

    def errors_format(self, kind: str, *details: Any) -> str:
        """The message the plugin's own Errors table gives for `kind`."""
        errors = self.copy.globals.get("require")(self.copy.root.get("Errors"))[0]
        return to_python(errors.get("format")(kind, *details)[0])


def _fire(signal: Any, *args: Any) -> None:
    signal.get("Fire")(signal, *args)


def _text(inst: Any) -> str:
    return to_python(inst.get("Text"))


@pytest.fixture
def edit() -> Edit:
    return Edit(Host())


def test_record_arms_and_disarms_without_touching_the_settings(edit: Edit) -> None:
    assert _text(edit.field("Status")).startswith("idle | not connected | 0 samples sent")
    edit.click("Record")
    edit.tick()
    assert edit.button("Record").get("Active") is True
    assert _text(edit.field("Status")).startswith("recording armed | ")
    edit.click("Record")
    edit.tick()
    assert edit.button("Record").get("Active") is False
    assert _text(edit.field("Status")).startswith("idle | ")
    assert "STPE_armed" not in edit.host.settings  # arming travels by PluginConnection
    assert edit.copy.errors() == [] and edit.host.logs == []


def test_settings_button_shows_and_hides_the_widget(edit: Edit) -> None:
    assert edit.widget.get("Enabled") is False
    edit.click("Settings")
    assert edit.widget.get("Enabled") is True
    edit.click("Settings")
    assert edit.widget.get("Enabled") is False


def test_port_field_stores_a_valid_port_and_persists_it(edit: Edit) -> None:
    assert _text(edit.field("Port")) == "34873"
    edit.type_port("8080")
    assert edit.host.settings["STPE_port"] == 8080
    assert _text(edit.field("Port")) == "8080"
    assert edit.host.logs == []
    again = Edit(edit.host)  # Studio restarted: a new edit copy reads the stored value
    assert _text(again.field("Port")) == "8080"


@pytest.mark.parametrize("text", ["abc", "", "0", "65536", "80.5", "-1", "9" * 400, "8080; rm"])
def test_port_field_refuses_bad_ports_with_the_bad_setting_message(edit: Edit, text: str) -> None:
    edit.type_port("8080")
    edit.type_port(text)
    assert edit.host.settings["STPE_port"] == 8080  # nothing stored
    assert _text(edit.field("Port")) == "8080"  # the field shows the stored value again
    warnings = [m for _, level, m in edit.host.logs if level == "warn"]
    shown = to_python(edit.copy.lua.load_chunk(f"return tostring(tonumber({text!r}))")()[0])
    assert warnings == [edit.errors_format("BadSetting", "port", shown,
                                           "a whole number from 1 to 65535")]
    assert "Fix: change it in the STPE widget" in warnings[0]


def test_timecode_mode_cycles_through_the_modes_and_persists(edit: Edit) -> None:
    assert _text(edit.field("Timecode")) == "timecode: clap"
    seen = []
    for _ in range(3):
        edit.activate("Timecode")
        seen.append(edit.host.settings["STPE_timecode"])
        assert _text(edit.field("Timecode")) == "timecode: " + seen[-1]
    assert seen == ["off", "always", "clap"]
    edit.activate("Timecode")
    assert _text(Edit(edit.host).field("Timecode")) == "timecode: off"


def test_a_bad_stored_timecode_mode_shows_the_default_and_says_why() -> None:
    edit = Edit(Host(settings={"STPE_timecode": "sometimes"}))
    assert _text(edit.field("Timecode")) == "timecode: clap"
    warnings = [m for _, level, m in edit.host.logs if level == "warn"]
    assert warnings == [edit.errors_format("BadSetting", "timecode", "sometimes",
                                           "off, always or clap")]
    edit.activate("Timecode")  # clap -> off replaces the bad value
    assert edit.host.settings["STPE_timecode"] == "off"


def test_gzip_toggles(edit: Edit) -> None:
    assert _text(edit.field("Gzip")) == "gzip: false"
    edit.activate("Gzip")
    assert edit.host.settings["STPE_gzip"] is True
    assert _text(edit.field("Gzip")) == "gzip: true"


def test_status_text_shows_counts_duplicates_and_the_last_error(edit: Edit) -> None:
    toolbar = edit.copy.globals.get("require")(edit.copy.root.get("Toolbar"))[0]
    error = edit.errors_format("ReceiverRefused", 401, "bad token")
    status = {"connected": True, "sent": 1234, "dropped": 7, "duplicates": 3, "lastError": error}
    text = to_python(toolbar.get("statusText")(True, to_lua(edit.copy.lua, status))[0])
    assert text == ("recording armed | connected | 1234 samples sent | 7 dropped | 3 duplicates"
                    f"\nlast error: {error}")
    text = to_python(toolbar.get("statusText")(False, to_lua(edit.copy.lua, {"sent": 5}))[0])
    assert text == "idle | not connected | 5 samples sent"


def test_unloading_disconnects_everything_and_destroys_the_widget(edit: Edit) -> None:
    connections = edit.world.get("game").get("GetService")(
        edit.world.get("game"), "PluginConnectionService")[0]
    signals = [edit.button("Record").get("Click"), edit.button("Settings").get("Click"),
               edit.field("Port").get("FocusLost"), edit.field("Timecode").get("Activated"),
               edit.field("Gzip").get("Activated"), edit.field("Check").get("Activated"),
               connections.get("Connected")]
    assert [s.get("Connected")(s)[0] for s in signals] == [1] * 7
    frame = edit.field("Port").get("Parent")
    edit.world.get("unload")()
    assert [s.get("Connected")(s)[0] for s in signals] == [0] * 7
    assert edit.widget.get("Destroyed") is True and edit.widget.get("Parent") is None
    assert frame.get("Destroyed") is True
    edit.click("Record")  # a click after unloading does nothing
    assert edit.button("Record").get("Active") is False
    assert edit.copy.errors() == []


def test_check_reports_the_receiver_or_that_it_is_down(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "check")
    with ReceiverThread(writer, port=0) as receiver:
        edit = Edit(Host(settings={"STPE_port": receiver.port}))
        edit.activate("Check")
        edit.tick(0.01)  # RequestAsync yields
        up = _text(edit.field("Status"))
    writer.close()
    assert up.startswith("receiver ") and "is up (protocol 1)" in up
    edit.activate("Check")  # nobody listens on that port any more
    edit.tick(0.01)
    down = _text(edit.field("Status"))
    assert down.startswith("STPE: cannot reach the STPE receiver at http://127.0.0.1:"
                           f"{receiver.port}")
    assert "Fix: start it with `stpe record`" in down


def test_record_from_the_toolbar_records_a_play_solo_session(tmp_path: Path) -> None:
    writer = SessionWriter.create(tmp_path, "toolbar")
    with ReceiverThread(writer, port=0) as receiver:
        play = PlaySolo(receiver.port, {"STPE_timecode": "off"})
        play.idle(0.5)
        assert not play.sampling  # not armed: the client copy waits
        play.record()
        play.idle(0.3)
        assert play.sampling
        for i in range(60):
            play.client.call("pose", _state(i))
            play.frame(DT)
        play.idle(1.0)
        assert play.status_text.startswith("recording armed | connected | ")
        play.record()
        i = 60
        while play.sampling:
            play.client.call("pose", _state(i))
            play.frame(DT)
            i += 1
        play.idle(1.5)
    writer.close()
    sampled = play.sampled_frames
    assert 60 <= sampled <= 60 + 2
    seqs = sorted(r["seq"] for r in Session.open(writer.path).state_records())
    assert seqs == list(range(sampled))
    assert play.status_text == f"idle | connected | {sampled} samples sent"
    assert play.logs("warn") == [] and play.logs("error") == []
