"""The encoder process: H.264 encoding in a child interpreter, fed through shared memory.

Encoding in a thread of the recording process holds the GIL often enough to delay grabs by
milliseconds (benchmarks/recorder.py measures both designs), so the encoder runs in its own
process. Frames travel through a ring of shared-memory slots: the parent copies a grab into
a free slot and sends `(slot, pts_us)` on the child's stdin; the child encodes it with
`VideoWriter` and answers `(slot, stored pts_us)` on its stdout, which frees the slot.
Closing stdin (or the parent dying) ends the child after it has flushed the video, so even
a killed recorder leaves every frame the child received encoded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from capture._errors import RecorderError

logger = logging.getLogger(__name__)

_MESSAGE = struct.Struct("<iq")  # slot, pts_us: parent -> child, and child -> parent
_READY = -1  # child -> parent once the video is open
_SHM_SHARE = 0.5  # at most this share of the free shared memory is used for the ring


def _read_exact(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data and len(data) == size else None


class EncoderProcess:
    """A child process encoding `width` x `height` BGRA frames into `path`.

    ``slot = free slot; frames[slot][:] = image; submit(slot, pts_us)``; `acks()` yields
    `(slot, stored_pts_us)` per encoded frame until the child exits.
    """

    def __init__(self, path: Path, width: int, height: int, *, slots: int, fps_hint: float,
                 crf: int, preset: str) -> None:
        frame_bytes = width * height * 4
        slots = self._fit(slots, frame_bytes)
        self.slots = slots
        self._shm = shared_memory.SharedMemory(create=True, size=slots * frame_bytes)
        self.frames = np.ndarray((slots, height, width, 4), np.uint8, self._shm.buf)
        command = [sys.executable, "-m", "capture._encoder", self._shm.name, str(slots),
                   str(width), str(height), str(path), repr(fps_hint), str(crf), preset]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        self._closed = False
        ready = _read_exact(self._process.stdout, _MESSAGE.size)
        if ready is None or _MESSAGE.unpack(ready)[0] != _READY:
            self.close()
            try:
                self.wait()
            except RecorderError as exc:
                raise RecorderError(str(exc).replace("failed", "could not start", 1)) from None
            raise RecorderError("the encoder process could not start: it exited silently")

    @staticmethod
    def _fit(slots: int, frame_bytes: int) -> int:
        """Shrink the ring to what the shared-memory filesystem can hold."""
        if not os.path.isdir("/dev/shm"):
            return slots
        stat = os.statvfs("/dev/shm")
        fits = int(stat.f_bavail * stat.f_frsize * _SHM_SHARE) // frame_bytes
        if fits < 2:
            raise RecorderError(f"/dev/shm has room for {fits} frame(s) of {frame_bytes} bytes; "
                                "the recorder needs at least 2: free space there or, in a "
                                "container, mount a larger one (docker --shm-size=1g)")
        if fits < slots:
            logger.warning("/dev/shm is small: the encoder queue holds %d frames, not %d",
                           fits, slots)
        return min(slots, fits)

    def submit(self, slot: int, pts_us: int) -> None:
        """Hand frame `slot` to the encoder (the slot must not be written until acked)."""
        try:
            self._process.stdin.write(_MESSAGE.pack(slot, pts_us))
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise RecorderError("the encoder process is gone; see the error it logged") from None

    def acks(self) -> Iterator[tuple[int, int]]:
        """(slot, stored pts_us) per encoded frame, until the child exits."""
        while (data := _read_exact(self._process.stdout, _MESSAGE.size)) is not None:
            yield _MESSAGE.unpack(data)

    def close(self) -> None:
        """Close the child's input: it encodes what it was given, closes the video and
        exits. Safe to call twice; `wait()` then reports how it ended."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BrokenPipeError, OSError):
            self._process.stdin.close()

    def wait(self) -> None:
        """Wait for the child to exit and free the shared memory; RecorderError on failure."""
        self.close()
        code = self._process.wait()
        error = self._process.stderr.read().decode(errors="replace").strip()
        self._process.stdout.close()
        self._process.stderr.close()
        self._release()
        if code != 0:
            raise RecorderError(f"the encoder process failed (exit code {code}): "
                                f"{error.splitlines()[-1] if error else 'no message'}")

    def _release(self) -> None:
        del self.frames
        self._shm.close()
        self._shm.unlink()


def _attach(name: str) -> shared_memory.SharedMemory:
    """Open the parent's segment without letting this process's tracker unlink it."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    from multiprocessing import resource_tracker

    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")  # the parent owns it
    return shm


def _serve(args: list[str]) -> None:
    """The child: encode slots named on stdin until stdin closes."""
    from capture._video import VideoWriter

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    name, slots, width, height, path, fps, crf, preset = args
    shape = (int(slots), int(height), int(width), 4)
    shm = _attach(name)
    frames = np.ndarray(shape, np.uint8, shm.buf)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    parent_gone = False
    with open(path, "ab"):  # fail now, not at the first frame, if the video cannot be written
        pass
    try:
        with VideoWriter(Path(path), shape[2], shape[1], fps_hint=float(fps), crf=int(crf),
                         preset=preset) as video:
            stdout.write(_MESSAGE.pack(_READY, 0))
            stdout.flush()
            while (data := _read_exact(stdin, _MESSAGE.size)) is not None:
                slot, pts_us = _MESSAGE.unpack(data)
                stored = video.write(frames[slot], pts_us)
                if not parent_gone:
                    try:
                        stdout.write(_MESSAGE.pack(slot, stored))
                        stdout.flush()
                    except BrokenPipeError:
                        parent_gone = True  # keep encoding what was sent, then close
    finally:
        del frames
        shm.close()


if __name__ == "__main__":
    try:
        _serve(sys.argv[1:])
    except Exception as exc:  # reported to the parent on stderr, which turns it into an error
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
