"""Alignment: clock model, timecode decoding, frame <-> state matching, alignment report."""

from alignment._align import align_session, read_aligned
from alignment._clock import ClockModel, ClockSegment, fit_clock
from alignment._errors import AlignmentError, ImportFormatError
from alignment._external import align_external, read_state_log
from alignment._match import Matching, match_frames, unwrap_payload
from alignment._report import AlignmentReport
from alignment._seed import SeedImport, import_seed
from alignment._seed_source import SeedRecord, ZipLimits
from alignment._simulate import SimulatedCapture, simulate_capture
from alignment._timecode import StripGeometry, TimecodeResult, decode_video, locate, read_cells

__all__ = [
    "AlignmentError",
    "AlignmentReport",
    "ClockModel",
    "ClockSegment",
    "ImportFormatError",
    "Matching",
    "SeedImport",
    "SeedRecord",
    "SimulatedCapture",
    "StripGeometry",
    "TimecodeResult",
    "ZipLimits",
    "align_external",
    "align_session",
    "decode_video",
    "fit_clock",
    "import_seed",
    "locate",
    "match_frames",
    "read_aligned",
    "read_cells",
    "read_state_log",
    "simulate_capture",
    "unwrap_payload",
]
