"""The screen recorder: grab a monitor or a region at a fixed rate and encode every grab
with its true time.

Grabs are paced on deadlines `t0 + k / fps` of `time.perf_counter_ns` (sleep, then a short
spin), so lateness never accumulates. A grab that ends too late to make the next deadline
skips the ticks it missed and counts them as dropped (`FrameRecord.dropped_before`); no
frame is ever re-timed. Grabs go to the encoder behind a bounded queue, so a slow encoder
costs counted drops, never a stalled capture clock. A writer thread takes each encoded
frame's stored pts and does all the session writes; frame rows and pts are the same
wherever the encoder runs.

Where the encoder runs (`encoder=`): "thread" encodes on a thread of this process (the grab
is handed over without a copy; PyAV releases the GIL while it converts and encodes, but not
always); "process" encodes in a child fed through shared memory (`capture._encoder_process`:
one copy per frame, about 0.1 core more, a second interpreter). On an idle machine
(benchmarks/recorder.py, 8 s x 2 rounds) the p99 of the grab-interval jitter was, thread vs
process: 5.49 vs 0.67 ms at 1920x1080 and 30 fps, 1.91 vs 2.00 ms at 1280x720 and 60 fps,
with 0-0.1 % drops for both. "auto" (the default) therefore picks "process" for frames of
1920x1080 pixels or more, where the thread misses the 2 ms target, and "thread" below.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from capture import _layout as layout
from capture._encoder_process import EncoderProcess
from capture._errors import RecorderError, SessionError
from capture._layout import CaptureSettings, ClockAnchor, Region
from capture._screen import open_screen, resolve_region
from capture._store import SessionWriter
from capture._video import VideoWriter

logger = logging.getLogger(__name__)

MAX_FPS = 240.0
SPIN_NS = 1_000_000  # busy-wait the last millisecond before a deadline
QUEUE_SECONDS = 0.5  # frames the encoder may fall behind before grabs are dropped
PROCESS_PIXELS = 1920 * 1080  # "auto" encodes in a child process from this frame size on
ENCODERS = ("auto", "thread", "process")


@dataclass(frozen=True)
class RecorderStats:
    """A snapshot of the recorder: counts, achieved rate and pacing jitter."""

    frames: int  # encoded and in the frame table
    grabbed: int
    dropped: int  # scheduled ticks with no frame: late grabs plus a full encoder queue
    dropped_late: int
    dropped_queue: int
    elapsed_s: float
    fps: float  # achieved: frames encoded per second between the first and the last grab
    jitter_std_ms: float  # std of (grab interval - 1/fps) over intervals without a drop
    jitter_p99_ms: float  # p99 of |grab interval - 1/fps|
    queue_depth: int
    running: bool


@dataclass(frozen=True)
class _Grab:
    start_ns: int
    end_ns: int
    wall_ns: int
    dropped_before: int


class _ThreadEncoder:
    """The encoder on a thread of this process, with `EncoderProcess`'s interface: the
    grab's buffer is queued without a copy and encoded as the writer thread asks."""

    def __init__(self, video: VideoWriter, slots: int) -> None:
        self._video = video
        self._queue: queue.Queue[tuple[np.ndarray, int, _Grab] | None] = queue.Queue(slots)
        self.slots = slots

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def offer(self, image: np.ndarray, pts_us: int, tag: _Grab) -> bool:
        try:
            self._queue.put_nowait((image, pts_us, tag))
        except queue.Full:
            return False
        return True

    def results(self) -> Iterator[tuple[_Grab, int]]:
        while (item := self._queue.get()) is not None:
            yield item[2], self._video.write(item[0], item[1])

    def drain(self) -> None:
        while self._queue.get() is not None:
            pass

    def finish(self) -> None:
        self._queue.put(None)  # blocks until there is room: the writer always drains

    def close(self) -> None:
        self._video.close()


def _sleep_until(deadline_ns: int, stop: threading.Event) -> None:
    """Wait for `deadline_ns` (perf_counter_ns): sleep, then spin the last stretch."""
    while True:
        remaining = deadline_ns - time.perf_counter_ns()
        if remaining <= 0:
            return
        if remaining <= SPIN_NS:
            while time.perf_counter_ns() < deadline_ns:
                pass
            return
        if stop.wait((remaining - SPIN_NS) / 1e9):
            return


class ScreenRecorder:
    """Records the screen into `writer`'s session: video, frame table, capture settings.

    ``start()`` checks the display and the region and returns once capture runs;
    ``stop()`` (idempotent) drains the encoder, closes the video and raises RecorderError
    if capture or encoding failed while running.
    """

    def __init__(self, writer: SessionWriter, *, fps: float = 30.0, monitor: int | None = 1,
                 region: Region | None = None, crf: int = 18, preset: str = "veryfast",
                 encoder: Literal["auto", "thread", "process"] = "auto") -> None:
        if not 0 < fps <= MAX_FPS:
            raise RecorderError(f"fps={fps} is out of range; use a rate in (0, {MAX_FPS:g}]")
        if encoder not in ENCODERS:
            raise RecorderError(f"encoder={encoder!r} is not one of {', '.join(ENCODERS)}")
        if not 0 <= crf <= 51:
            raise RecorderError(f"crf={crf} is out of range; x264 accepts 0 (lossless)..51")
        self._writer = writer
        self._fps = float(fps)
        self._period_ns = 1e9 / self._fps
        self._monitor = monitor
        self._region = region
        self._region_given = region is not None
        self._crf, self._preset = crf, preset
        self._encoder_choice = encoder
        self._encoder: _ThreadEncoder | EncoderProcess[_Grab] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._started_ns = 0
        self._stopped_ns: int | None = None
        self._grabbed = self._written = self._late = self._full = 0
        self._deviations = array("q")  # ns: grab interval minus its scheduled interval
        self._stopped = False
        self._span = (0, 0)  # first and last grab start
        self._trailing = 0  # ticks dropped after the last frame (no frame row to carry them)

    @property
    def region(self) -> Region | None:
        """The rectangle being grabbed (known once started)."""
        return self._region

    @property
    def encoder(self) -> Literal["auto", "thread", "process"]:
        """Where frames are encoded: "thread" or "process" once started ("auto" resolved)."""
        return self._encoder_choice

    @property
    def error(self) -> BaseException | None:
        """What stopped capture or encoding early, if anything did."""
        return self._error

    def start(self) -> ScreenRecorder:
        """Open the screen and the video, write the capture settings, start both threads."""
        if self._threads:
            raise RecorderError("the recorder is already started; create a new one")
        screen = open_screen()
        path = self._writer.path / layout.VIDEO
        try:
            region = resolve_region(screen.monitors, self._monitor, self._region)
            with open(path, "ab"):  # the encoder opens it lazily: fail now, not mid-recording
                pass
            encoder = self._open_encoder(path, region)
        except OSError as exc:
            screen.close()
            raise RecorderError(f"cannot write the video {path} ({exc.strerror}); check the "
                                "session folder's permissions and free space") from None
        except BaseException:
            screen.close()
            raise
        self._region = region
        monitor = None if self._region_given else (1 if self._monitor is None else self._monitor)
        settings = CaptureSettings(fps=self._fps, region=region, crf=self._crf, monitor=monitor)
        try:
            self._writer.update_manifest(capture=settings)
            self._writer.append_event("recorder_start", fps=self._fps,
                                      region=region.model_dump(), queue=encoder.slots,
                                      encoder=self._encoder_choice)
        except BaseException:
            screen.close()
            encoder.finish()
            encoder.close()
            raise
        self._encoder = encoder
        self._started_ns = time.perf_counter_ns()
        self._threads = [
            threading.Thread(target=self._run_capture, args=(screen, region, encoder),
                             name="stpe-recorder-grab", daemon=True),
            threading.Thread(target=self._run_writer, args=(encoder,),
                             name="stpe-recorder-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        logger.info("recording %dx%d at (%d,%d), %g fps, encoder %s", region.width,
                    region.height, region.left, region.top, self._fps, self._encoder_choice)
        return self

    def _open_encoder(self, path: Any, region: Region) -> _ThreadEncoder | EncoderProcess[_Grab]:
        """The encoder this recorder was asked for ("auto" resolved by the frame size)."""
        if self._encoder_choice == "auto":
            large = region.width * region.height >= PROCESS_PIXELS
            self._encoder_choice = "process" if large else "thread"
        slots = max(4, math.ceil(self._fps * QUEUE_SECONDS))
        if self._encoder_choice == "process":
            return EncoderProcess(path, region.width, region.height, slots=slots,
                                  fps_hint=self._fps, crf=self._crf, preset=self._preset)
        return _ThreadEncoder(VideoWriter(path, region.width, region.height,
                                          fps_hint=self._fps, crf=self._crf,
                                          preset=self._preset), slots)

    def _run_capture(self, screen: Any, region: Region,
                     encoder: _ThreadEncoder | EncoderProcess[_Grab]) -> None:
        box = {"left": region.left, "top": region.top, "width": region.width,
               "height": region.height}
        period = self._period_ns
        t0 = time.perf_counter_ns()
        tick, owed, last_tick, last_start = 0, 0, -2, 0
        video_start: int | None = None
        try:
            while not self._stop.is_set():
                deadline = t0 + round(tick * period)
                _sleep_until(deadline, self._stop)
                if self._stop.is_set():
                    break
                wall_ns = time.time_ns()
                start_ns = time.perf_counter_ns()
                # woken more than half a period late: grabbing now would re-time this tick
                missed = int(start_ns - deadline > period / 2)
                if not missed:
                    shot = screen.grab(box)
                    end_ns = time.perf_counter_ns()
                    image = np.frombuffer(shot.raw, np.uint8).reshape(
                        region.height, region.width, 4)
                    with self._lock:
                        self._grabbed += 1
                        self._span = (self._span[0] or start_ns, start_ns)
                        if tick == last_tick + 1:
                            self._deviations.append(start_ns - last_start - round(period))
                    last_tick, last_start = tick, start_ns
                    video_start = start_ns if video_start is None else video_start
                    grab = _Grab(start_ns, end_ns, wall_ns, owed)
                    if encoder.offer(image, (start_ns - video_start) // 1000, grab):
                        owed = 0
                    else:
                        owed += 1
                        with self._lock:
                            self._full += 1
                        self._writer.append_event("frame_drop", reason="encoder_behind",
                                                  frames=1, grab_start_ns=start_ns)
                # the next tick whose deadline is less than half a period ago
                now = time.perf_counter_ns()
                following = max(tick + 1, math.ceil((now - t0 - period / 2) / period))
                skipped = following - tick - 1 + missed
                if skipped:
                    owed += skipped
                    with self._lock:
                        self._late += skipped
                    self._writer.append_event("frame_drop", reason="late", frames=skipped)
                tick = following
        except BaseException as exc:
            self._fail(exc, "capture")
        finally:
            self._trailing = owed
            screen.close()
            encoder.finish()

    def _run_writer(self, encoder: _ThreadEncoder | EncoderProcess[_Grab]) -> None:
        """Write each frame's row (and the video start) once the encoder has stored it."""
        try:
            for grab, pts_us in encoder.results():  # every encoded frame gets its row
                if self._written == 0:
                    self._writer.update_manifest(video_start=ClockAnchor(
                        host_mono_ns=grab.start_ns, host_wall_ns=grab.wall_ns))
                index = self._written
                self._writer.append_frames([{
                    "index": index, "pts_us": pts_us, "grab_start_ns": grab.start_ns,
                    "grab_end_ns": grab.end_ns, "wall_ns": grab.wall_ns,
                    "dropped_before": grab.dropped_before}])
                with self._lock:
                    self._written += 1
        except BaseException as exc:
            self._fail(exc, "encoding")
            encoder.drain()
        finally:
            try:
                encoder.close()
            except Exception as exc:
                self._fail(exc, "closing the video")

    def _fail(self, exc: BaseException, what: str) -> None:
        """Stop on an error; one that follows a failed session write is already reported
        (the session store says why), so it is only logged at INFO."""
        storage_failed = self._writer.failure is not None
        logger.log(logging.INFO if storage_failed else logging.ERROR,
                   "screen recorder: %s failed: %s", what, exc)
        with self._lock:
            if self._error is None:
                self._error = exc
        self._stop.set()
        if not self._writer.closed and not storage_failed:
            with contextlib.suppress(SessionError):  # a write failing now is reported too
                self._writer.append_event("error", source="recorder", stage=what,
                                          message=str(exc))

    @property
    def stats(self) -> RecorderStats:
        """Counts so far, the achieved rate and the grab-interval jitter."""
        with self._lock:
            deviations = np.frombuffer(self._deviations, np.int64).astype(np.float64) / 1e6
            end = self._stopped_ns or time.perf_counter_ns()
            elapsed = (end - self._started_ns) / 1e9 if self._started_ns else 0.0
            span_s = (self._span[1] - self._span[0]) / 1e9 + 1 / self._fps
            return RecorderStats(
                frames=self._written, grabbed=self._grabbed, dropped=self._late + self._full,
                dropped_late=self._late, dropped_queue=self._full, elapsed_s=elapsed,
                fps=self._written / span_s if self._grabbed else 0.0,
                jitter_std_ms=float(deviations.std()) if deviations.size else 0.0,
                jitter_p99_ms=float(np.percentile(np.abs(deviations), 99))
                if deviations.size else 0.0,
                queue_depth=self._encoder.depth if self._encoder else 0,
                running=bool(self._threads) and self._stopped_ns is None)

    def stop(self) -> RecorderStats:
        """Stop grabbing, encode what is queued, close the video. Safe to call twice."""
        if self._stopped or not self._threads:
            return self.stats
        self._stopped = True
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._stopped_ns = time.perf_counter_ns()
        stats = self.stats
        if not self._writer.closed and self._writer.failure is None:
            self._writer.append_event("recorder_stop", frames=stats.frames,
                                      dropped=stats.dropped, fps=round(stats.fps, 3),
                                      dropped_after_last=self._trailing)
        if self._error is not None:
            raise RecorderError(f"the screen recorder failed: {self._error}") from self._error
        return stats

    def __enter__(self) -> ScreenRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
