"""A recording: one session, the receiver and the screen recorder started and stopped
together.

Frames are captured from the start; state joins whenever the plugin connects. `stop()`
stops both, then finalizes the session (idempotent), so ``with Recording(...)`` leaves a
complete session even when the body raises or the user presses Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from capture import _layout as layout
from capture._errors import CaptureError, RecorderError, StorageError
from capture._layout import Region
from capture._receiver import DEFAULT_PORT, ReceiverThread
from capture._recorder import ScreenRecorder
from capture._store import SessionWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordingStatus:
    """A snapshot for a live status line."""

    session: Path
    elapsed_s: float
    frames: int
    fps: float  # achieved
    drops: int
    samples: int
    samples_per_s: float
    clock_offset_ms: float | None  # host_mono - client clock, once a probe came back
    plugin_connected: bool
    failed: str | None  # why capture stopped early, if it did


class Recording:
    """Records one session under `out`: ``with Recording(Path("sessions")) as rec: ...``.

    `start()` creates the session, starts the screen recorder, then the receiver on
    127.0.0.1:`port` (0 picks a free port; see `url`). If either cannot start, what was
    started is stopped and the new, empty session folder is removed. `encoder` places the
    video encoder (see `ScreenRecorder`: "auto" uses a child process from 1920x1080 on).
    """

    def __init__(self, out: Path, *, fps: float = 30.0, monitor: int | None = 1,
                 region: Region | None = None, crf: int = 18, preset: str = "veryfast",
                 port: int = DEFAULT_PORT, token: str | None = None,
                 session_id: str | None = None,
                 encoder: Literal["auto", "thread", "process"] = "auto") -> None:
        self._out = Path(out)
        self._recorder_options = {"fps": fps, "monitor": monitor, "region": region,
                                  "crf": crf, "preset": preset, "encoder": encoder}
        self._receiver_options = {"port": port, "token": token}
        self._session_id = session_id
        self._writer: SessionWriter | None = None
        self._recorder: ScreenRecorder | None = None
        self._receiver: ReceiverThread | None = None
        self._started_ns = 0
        self._stopped: RecordingStatus | None = None

    @property
    def path(self) -> Path:
        """The session folder (known once started)."""
        if self._writer is None:
            raise CaptureError("the recording is not started; call start() first")
        return self._writer.path

    @property
    def url(self) -> str:
        """The address the plugin posts to, e.g. http://127.0.0.1:34873."""
        if self._receiver is None:
            raise CaptureError("the recording is not started; call start() first")
        return self._receiver.url

    def start(self) -> Recording:
        if self._writer is not None:
            raise CaptureError("the recording is already started; create a new one")
        writer = SessionWriter.create(self._out, self._session_id)
        writer.update_manifest(notes={**writer.manifest.notes, "recorder_pid": os.getpid()})
        self._writer = writer
        try:
            self._recorder = ScreenRecorder(writer, **self._recorder_options).start()
            self._receiver = ReceiverThread(writer, **self._receiver_options).start()
        except BaseException:
            self._abandon()
            raise
        self._started_ns = time.perf_counter_ns()
        logger.info("recording session %s; plugin address %s", writer.path, self.url)
        return self

    def _abandon(self) -> None:
        """Undo a failed start: stop what runs, remove the session if it holds no state."""
        if self._recorder is not None:
            try:
                self._recorder.stop()
            except RecorderError as exc:
                logger.warning("stopping the recorder after a failed start: %s", exc)
        writer = self._writer
        writer.close()
        if not (writer.path / layout.STATE).exists():
            shutil.rmtree(writer.path)
        self._writer = self._recorder = None

    def status(self) -> RecordingStatus:
        """Elapsed time, frames, achieved fps, drops, samples and the clock offset so far."""
        if self._stopped is not None:
            return self._stopped
        if self._recorder is None or self._receiver is None:
            raise CaptureError("the recording is not started; call start() first")
        video = self._recorder.stats
        state = self._receiver.stats
        failure = self._writer.failure if self._writer is not None else None
        error = failure or self._recorder.error
        offset = state.clock_offset_ns
        return RecordingStatus(
            session=self.path, elapsed_s=(time.perf_counter_ns() - self._started_ns) / 1e9,
            frames=video.frames, fps=video.fps, drops=video.dropped,
            samples=state.samples_stored, samples_per_s=state.samples_per_s,
            clock_offset_ms=None if offset is None else offset / 1e6,
            plugin_connected=state.plugin_connected,
            failed=None if error is None else str(error))

    def stop(self) -> RecordingStatus:
        """Stop capture and the receiver, finalize the session. Safe to call twice; raises
        (after finalizing) StorageError if a session file could not be written (the session
        is then "failed", with the reason), else RecorderError if the screen recorder
        failed while running."""
        if self._stopped is not None:
            return self._stopped
        if self._recorder is None or self._receiver is None or self._writer is None:
            raise CaptureError("the recording is not started; call start() first")
        error: CaptureError | None = None
        try:
            self._recorder.stop()
        except CaptureError as exc:  # the recorder failed, or the session store did
            error = exc
        final = self.status()
        self._receiver.stop()
        final = dataclasses.replace(final, samples=self._receiver.stats.samples_stored)
        self._writer.finalize()
        self._stopped = final
        failure = self._writer.failure
        if failure is not None:
            raise StorageError(f"recording stopped: {failure} Session {final.session} keeps "
                               f"{final.frames} frames and {final.samples} samples; `stpe "
                               "repair` it before aligning")
        logger.info("session %s complete: %d frames, %d drops, %d samples", final.session,
                    final.frames, final.drops, final.samples)
        if error is not None:
            raise error
        return final

    def __enter__(self) -> Recording:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
