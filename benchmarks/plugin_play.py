"""A long Play through the plugin's message path, Stop pressed mid-batch.

The plugin runs unchanged in its Luau VMs (edit, server and client copies, tests/luau
harness) against the real receiver on loopback: a Play of `--minutes` at 60 frames/s with
`--entities` parts tagged STPE_Track (plus the scene's crate), then Stop Play between two
flushes of the client. Printed: samples sampled, sent to the edit copy before Stop, stored
(every sent one must be), lost at Stop (at most one flush period), and the bytes per sample
and per second on the PluginConnection (JSON of the messages) and over HTTP (request
bodies). There is no peer: a RemoteEvent relay is what this path replaces (about 1.6 KB per
sample plus 240 B per entity were measured for it).

Run: python benchmarks/plugin_play.py [--minutes 10] [--entities 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from capture import ReceiverThread, Session, SessionWriter
from tests.luau._harness import PlaySolo
from tests.luau.test_play_solo import DT, _state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--entities", type=int, default=32)
    args = parser.parse_args()
    frames = round(args.minutes * 60 * 60)
    with tempfile.TemporaryDirectory() as tmp:
        writer = SessionWriter.create(Path(tmp), "bench")
        with ReceiverThread(writer, port=0) as rx:
            http_bytes = 0
            play = PlaySolo(rx.port, {"STPE_armed": True, "STPE_timecode": "off"})
            original = play.host.http

            def counted(request: dict) -> dict:
                nonlocal http_bytes
                http_bytes += len(request.get("Body") or "")
                return original(request)

            play.host.http = counted
            play.client.call("spawn", args.entities)
            play.idle(0.3)
            start = time.perf_counter()
            for i in range(frames):
                play.client.call("pose", _state(i % 3600))
                play.frame(DT)
            play.frame(DT)
            play.frame(DT)  # Stop lands two frames after a flush: mid-batch
            sampled = play.sampled_frames
            play.stop_play()
            play.idle(10.0)
            took = time.perf_counter() - start
            sent = sorted(s for m in play.delivered if m.get("kind") == "samples"
                          for s in m["seqs"])
        stored = sorted(r["seq"] for r in Session.open(writer.path).state_records())
        writer.close()
    seconds = sampled * DT
    print(f"Play: {sampled} frames ({seconds / 60:.1f} min at 60 fps), "
          f"{args.entities + 1} tracked entities; simulated in {took:.0f} s")
    print(f"sent to the edit copy before Stop: {len(sent)}; stored: {len(stored)}; "
          f"every sent sample stored: {stored == sent}; lost at Stop: {sampled - len(sent)}")
    print(f"PluginConnection: {play.host.message_bytes / sampled:.0f} B/sample, "
          f"{play.host.message_bytes / seconds / 1024:.1f} KiB/s")
    print(f"HTTP bodies:      {http_bytes / sampled:.0f} B/sample, "
          f"{http_bytes / seconds / 1024:.1f} KiB/s")


if __name__ == "__main__":
    main()
