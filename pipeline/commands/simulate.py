"""`stpe simulate`: feed a running receiver with a simulated plugin, to test a setup."""

from __future__ import annotations

import click
from rich.progress import Progress

from capture import DEFAULT_PORT, SimulatedPlugin
from pipeline._errors import PipelineError
from pipeline.commands._conventions import Output


@click.command("simulate")
@click.option("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True,
              help="The receiver to send to (`stpe record` prints it).")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="How long to play.")
@click.option("--rate", type=click.FloatRange(min=1, max=1000), default=60.0,
              show_default=True, help="Samples per second (the game's frame rate).")
@click.option("--batch-hz", type=click.FloatRange(min=0.5, max=1000), default=10.0,
              show_default=True, help="Batches per second.")
@click.option("--token", envvar="STPE_TOKEN", default=None,
              help="The receiver's shared token, if it was started with one [env STPE_TOKEN].")
@click.option("--drift-ppm", type=float, default=0.0, show_default=True,
              help="Client clock drift relative to the host, parts per million.")
@click.option("--connect-timeout", type=click.FloatRange(min=0), default=10.0,
              show_default=True, help="How long to keep retrying the first hello, seconds.")
def command(url: str, seconds: float, rate: float, batch_hz: float, token: str | None,
            drift_ppm: float, connect_timeout: float) -> None:
    """Play a synthetic character at RATE samples/s for SECONDS against a running receiver.

    Its seqs start at the receiver's `next_seq`, so a second run continues the recording.
    It follows the plugin's client state machine: hello is retried with backoff, and when
    the receiver is lost (restarted, a 404) it says hello again and joins the running
    recording, which records the outage."""
    output = Output.current()
    plugin = SimulatedPlugin(url, token=token, batch_hz=batch_hz, clock_drift_ppm=drift_ppm,
                             connect_timeout_s=connect_timeout)
    chunk = 0.5
    sent = 0
    with plugin, Progress(console=output.progress_console, transient=True) as progress:
        task = progress.add_task(f"simulating into session {plugin.session}", total=seconds)
        while sent < round(seconds * rate):
            step = min(chunk, seconds - sent / rate)
            sent += plugin.play(step, rate=rate, first_seq=plugin.next_seq + sent)
            progress.update(task, completed=sent / rate)
    output.console.print(f"session {plugin.session}: sent {sent} samples in "
                         f"{plugin.batches} batches, receiver stored through seq "
                         f"{plugin.stored_through}; "
                         f"{plugin.dropped} dropped, {plugin.rejected} refused, "
                         f"{plugin.retries} retries, {plugin.outages} outages")
    if plugin.error is not None:
        raise PipelineError(f"the receiver stopped the simulation: {plugin.error}")
    output.result({"command": "simulate", "session": plugin.session, "sent": sent,
                   "batches": plugin.batches, "stored_through": plugin.stored_through,
                   "dropped": plugin.dropped, "refused": plugin.rejected,
                   "retries": plugin.retries, "outages": plugin.outages})
