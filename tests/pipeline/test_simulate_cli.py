from __future__ import annotations

from click.testing import CliRunner

from capture import PluginError, ReceiverThread, Session, SessionWriter
from pipeline.commands.simulate import command


def test_simulate_feeds_a_running_receiver(tmp_path):
    with SessionWriter.create(tmp_path, "s1") as writer, \
            ReceiverThread(writer, port=0, token="tok") as rx:
        result = CliRunner().invoke(command, ["--url", rx.url, "--seconds", "0.6",
                                          "--rate", "50", "--token", "tok"])
        stored = rx.stats.samples_stored
    assert result.exit_code == 0, result.output
    assert "sent 30 samples" in result.output and "stored through seq 29" in result.output
    assert stored == 30
    assert [r["seq"] for r in Session.open(tmp_path / "s1").state_records()] == list(range(30))


def test_a_second_simulation_continues_at_next_seq(tmp_path):
    with SessionWriter.create(tmp_path, "s1") as writer, \
            ReceiverThread(writer, port=0) as rx:
        runs = [CliRunner().invoke(command, ["--url", rx.url, "--seconds", "0.4",
                                             "--rate", "50"]) for _ in range(2)]
    assert [r.exit_code for r in runs] == [0, 0], runs[1].output
    assert "stored through seq 39" in runs[1].output
    assert [r["seq"] for r in Session.open(tmp_path / "s1").state_records()] == list(range(40))


def test_simulate_without_a_receiver_fails_clearly():
    result = CliRunner().invoke(command, ["--url", "http://127.0.0.1:9",
                                          "--seconds", "0.2", "--connect-timeout", "0.4"])
    assert isinstance(result.exception, PluginError)
    assert "is `stpe record` running?" in str(result.exception)
