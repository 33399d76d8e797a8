"""The encoder process: H.264 encoding in a child interpreter, fed through shared memory.

An encoder thread holds the recording process's GIL often enough to delay grabs by a few
milliseconds at 1920x1080 (see `capture._recorder`), so the recorder can encode in a child
instead. Frames travel through a ring of shared-memory slots: the parent copies a grab into
a free slot and sends `(slot, pts_us)` on the child's stdin; the child encodes it with
`VideoWriter` and answers `(slot, stored pts_us)` on its stdout, which frees the slot.

Cleanup holds on every path: the parent unlinks the segment as soon as the child has
mapped it (nothing stays in /dev/shm, even after a crash), and the child stops when its
stdin closes, which happens on `finish()` and when the parent dies; it flushes the video
first, so every frame it was given is kept. The child starts from a bootstrap that loads
only this module, `capture._errors` and `capture._video` (numpy and PyAV), not the package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from multiprocessing import shared_memory
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

import numpy as np

from capture._errors import RecorderError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MESSAGE = struct.Struct("<iq")  # slot, pts_us: parent -> child, and child -> parent
_READY = -1  # child -> parent once the video is open
_SHM_SHARE = 0.5  # at most this share of the free shared memory is used for the ring
_BOOTSTRAP = (  # the `capture` package without its __init__ (receiver, pydantic, aiohttp)
    "import sys, types; package = types.ModuleType('capture'); "
    "package.__path__ = [sys.argv[1]]; sys.modules['capture'] = package; "
    "from capture._encoder_process import main; main(sys.argv[2:])")


def _read_message(stream: BinaryIO) -> tuple[int, int] | None:
    data = stream.read(_MESSAGE.size)
    return _MESSAGE.unpack(data) if data and len(data) == _MESSAGE.size else None


class EncoderProcess(Generic[T]):
    """A child process encoding `width` x `height` BGRA frames into `path`.

    `offer(image, pts_us, tag)` copies a frame into a free slot (False when none is free);
    `results()` yields `(tag, stored_pts_us)` per encoded frame, in order, until the child
    exits; `finish()` ends the input; `close()` waits for the child and raises
    RecorderError if it failed.
    """

    def __init__(self, path: Path, width: int, height: int, *, slots: int, fps_hint: float,
                 crf: int, preset: str) -> None:
        frame_bytes = width * height * 4
        self.slots = _fit(slots, frame_bytes)
        self._shm = shared_memory.SharedMemory(create=True, size=self.slots * frame_bytes)
        self._frames = np.ndarray((self.slots, height, width, 4), np.uint8, self._shm.buf)
        self._free: deque[int] = deque(range(self.slots))
        self._pending: deque[tuple[int, T]] = deque()
        self._finished = self._closed = False
        self._ring_lock = threading.Lock()  # offer() (grab thread) vs _release() (closer)
        command = [sys.executable, "-c", _BOOTSTRAP, str(Path(__file__).parent), self._shm.name,
                   str(self.slots), str(width), str(height), str(path), repr(fps_hint),
                   str(crf), preset]
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)  # Ctrl-C reaches the parent, which decides to stop
        except OSError as exc:
            self._release()
            raise RecorderError(f"cannot start the encoder process ({exc}); use "
                                "encoder='thread'") from None
        ready = _read_message(self._process.stdout)
        self._shm.unlink()  # both sides have it mapped (or the child is gone): drop the name
        if ready is None or ready[0] != _READY:
            self.close()  # raises the child's own error
            raise RecorderError("the encoder process exited before it opened the video, "
                                "without a message")

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def depth(self) -> int:
        """Frames handed over and not yet encoded."""
        return len(self._pending)

    def offer(self, image: np.ndarray, pts_us: int, tag: T) -> bool:
        """Copy `image` into a free slot and hand it to the child; False if none is free."""
        with self._ring_lock:
            if self._closed:
                raise RecorderError("the encoder process is gone; its error is reported when "
                                    "the recorder stops")
            try:
                slot = self._free.popleft()
            except IndexError:
                return False
            np.copyto(self._frames[slot], image.reshape(self._frames.shape[1:]))
            self._pending.append((slot, tag))
        try:
            self._process.stdin.write(_MESSAGE.pack(slot, pts_us))
            self._process.stdin.flush()
        except (OSError, ValueError):
            raise RecorderError("the encoder process is gone; its error is reported when "
                                "the recorder stops") from None
        return True

    def results(self) -> Iterator[tuple[T, int]]:
        """`(tag, stored pts_us)` per encoded frame, in order, until the child exits."""
        while (message := _read_message(self._process.stdout)) is not None:
            slot, tag = self._pending.popleft()
            self._free.append(slot)
            yield tag, message[1]

    def drain(self) -> None:
        """Discard results until the child exits (after a failure on the parent's side)."""
        for _ in self.results():
            pass

    def finish(self) -> None:
        """No more frames: the child encodes what it has, closes the video and exits."""
        if not self._finished:
            self._finished = True
            with contextlib.suppress(OSError, ValueError):
                self._process.stdin.close()

    def close(self) -> None:
        """Wait for the child, close the pipes and the shared memory. Safe to call twice;
        RecorderError if the child failed."""
        if self._closed:
            return
        self._closed = True
        self.finish()
        self.drain()
        code = self._process.wait()
        error = self._process.stderr.read().decode(errors="replace").strip()
        self._process.stdout.close()
        self._process.stderr.close()
        self._release()
        if code != 0:
            message = error.splitlines()[-1] if error else f"exit code {code}"
            raise RecorderError(f"the encoder process failed: {message}")

    def _release(self) -> None:
        with self._ring_lock:
            del self._frames
            self._shm.close()
        with contextlib.suppress(FileNotFoundError):
            self._shm.unlink()


def _fit(slots: int, frame_bytes: int) -> int:
    """Shrink the ring to what the shared-memory filesystem can hold."""
    if not os.path.isdir("/dev/shm"):
        return slots
    stat = os.statvfs("/dev/shm")
    fits = int(stat.f_bavail * stat.f_frsize * _SHM_SHARE) // frame_bytes
    if fits < 2:
        raise RecorderError(f"/dev/shm has room for {fits} frame(s) of {frame_bytes} bytes; "
                            "the encoder process needs at least 2: free space there, mount a "
                            "larger one (docker --shm-size=1g) or use encoder='thread'")
    if fits < slots:
        logger.warning("/dev/shm is small: the encoder queue holds %d frames, not %d",
                       fits, slots)
    return min(slots, fits)


def _attach(name: str) -> shared_memory.SharedMemory:
    """Map the parent's segment without letting this process's tracker unlink it."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    from multiprocessing import resource_tracker

    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")  # the parent owns it
    return shm


def _serve(args: list[str]) -> None:
    """The child: encode the slots named on stdin until stdin closes."""
    from capture._video import VideoWriter

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    name, slots, width, height, path, fps, crf, preset = args
    shm = _attach(name)
    frames = np.ndarray((int(slots), int(height), int(width), 4), np.uint8, shm.buf)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    parent_gone = False
    try:
        with open(path, "ab"):  # fail now, not at the first frame
            pass
        with VideoWriter(Path(path), int(width), int(height), fps_hint=float(fps),
                         crf=int(crf), preset=preset) as video:
            stdout.write(_MESSAGE.pack(_READY, 0))
            stdout.flush()
            while (message := _read_message(stdin)) is not None:
                stored = video.write(frames[message[0]], message[1])
                if not parent_gone:
                    try:
                        stdout.write(_MESSAGE.pack(message[0], stored))
                        stdout.flush()
                    except BrokenPipeError:
                        parent_gone = True  # keep encoding what was sent, then close
    finally:
        del frames
        shm.close()


def main(args: list[str]) -> None:
    """Entry point of the child (see `_BOOTSTRAP`): errors go to stderr for the parent."""
    try:
        _serve(args)
    except OSError as exc:
        print(f"cannot write the video {args[4]} ({exc.strerror}); check the session "
              "folder's permissions and free space", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
