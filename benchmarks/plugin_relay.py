"""Bytes per sample and per second on the RemoteEvent fallback, against the JSON messages
of the PluginConnection path for the same Play.

The plugin runs unchanged in its Luau VMs (tests/luau harness) against the real receiver
on loopback: a Play of `--seconds` at 60 frames/s with 0 and `--entities` extra parts
tagged STPE_Track (plus the scene's crate), once with the client's Edit connection (JSON
messages) and once without it (buffers through the server copy's RemoteEvent, within the
relay's bytes/s budget). Printed per case: samples sampled / stored / declared dropped,
packed bytes per sample (per sample sent), bytes/s fired, and the ratio JSON / packed.

Run: python benchmarks/plugin_relay.py [--seconds 20] [--entities 32]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from capture import ReceiverThread, Session, SessionWriter
from tests.luau._harness import Host, PlaySolo
from tests.luau.test_play_solo import DT, _state


def _run(client_edit: str, entities: int, frames: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        writer = SessionWriter.create(Path(tmp), "bench")
        with ReceiverThread(writer, port=0) as rx:
            host = Host(port=rx.port, settings={"STPE_port": rx.port, "STPE_timecode": "off"},
                        client_edit=client_edit)
            play = PlaySolo(rx.port, {"STPE_armed": True}, host=host)
            play.client.call("spawn", entities)
            play.idle(4.0)
            for i in range(frames):
                play.client.call("pose", _state(i % 3600))
                play.frame(DT)
            play.disarm()
            while play.sampling:
                play.frame(DT)
            play.idle(2.0)
            sampled = play.sampled_frames
        stored = sum(1 for _ in Session.open(writer.path).state_records())
        dropped = sum(e["last"] - e["first"] + 1 for e in Session.open(writer.path).events()
                      if e["kind"] == "drop")
        writer.close()
    samples_bytes = sum(len(p) for p in host.remote_payloads[1:-1])  # copy and stop left out
    return {"sampled": sampled, "stored": stored, "dropped": dropped,
            "json": host.message_bytes / sampled,
            "packed": samples_bytes / max(stored, 1),
            "fired_per_s": sum(b for _, b in host.remote_fired) / (sampled * DT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--entities", type=int, default=32)
    args = parser.parse_args()
    frames = round(args.seconds * 60)
    for entities in (0, args.entities):
        direct = _run("connected", entities, frames)
        relay = _run("absent", entities, frames)
        print(f"{entities + 1} tracked entities, {args.seconds:.0f} s at 60 fps:")
        print(f"  PluginConnection: {direct['json']:.0f} B/sample (JSON), "
              f"{direct['json'] * 60 / 1000:.1f} KB/s; stored {direct['stored']:.0f} "
              f"of {direct['sampled']:.0f}")
        print(f"  RemoteEvent relay: {relay['packed']:.0f} B/sample (buffer), "
              f"{relay['fired_per_s'] / 1000:.1f} KB/s fired; stored {relay['stored']:.0f}, "
              f"declared dropped {relay['dropped']:.0f} of {relay['sampled']:.0f}")
        print(f"  JSON / packed bytes per sample: {direct['json'] / relay['packed']:.1f}x")


if __name__ == "__main__":
    main()
