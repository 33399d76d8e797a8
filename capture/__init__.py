"""Capture: the wire protocol, the receiver, the screen recorder and the session store."""

from capture._errors import (
    CaptureError,
    PluginError,
    ReceiverError,
    RecorderError,
    SessionError,
    StorageError,
)
from capture._layout import (
    CaptureSettings,
    ClockAnchor,
    FrameRecord,
    PluginInfo,
    Region,
    SessionManifest,
)
from capture._limits import Limits
from capture._receiver import DEFAULT_PORT, Receiver, ReceiverStats, ReceiverThread
from capture._recorder import RecorderStats, ScreenRecorder
from capture._recording import Recording, RecordingStatus
from capture._repair import RepairReport, repair_session
from capture._simplugin import ClientClock, SimulatedPlugin
from capture._store import (
    Session,
    SessionWriter,
    VideoFrame,
    new_session_id,
    now_anchor,
    read_jsonl,
    tool_version,
)
from capture._synthetic import synthetic_sample
from capture._wire import PROTOCOL_VERSION, SAMPLE_SCHEMA, Sample, SampleBatch

__all__ = [
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "SAMPLE_SCHEMA",
    "CaptureError",
    "CaptureSettings",
    "ClientClock",
    "ClockAnchor",
    "FrameRecord",
    "Limits",
    "PluginError",
    "PluginInfo",
    "Receiver",
    "ReceiverError",
    "ReceiverStats",
    "ReceiverThread",
    "RecorderError",
    "RecorderStats",
    "Recording",
    "RecordingStatus",
    "Region",
    "RepairReport",
    "Sample",
    "SampleBatch",
    "ScreenRecorder",
    "Session",
    "SessionError",
    "SessionManifest",
    "SessionWriter",
    "SimulatedPlugin",
    "StorageError",
    "VideoFrame",
    "new_session_id",
    "now_anchor",
    "read_jsonl",
    "repair_session",
    "synthetic_sample",
    "tool_version",
]
