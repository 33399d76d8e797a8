"""The session on disk: file names, the manifest schema and the record shapes of every log.

```
<session>/
  session.json      SessionManifest (written atomically: temp file + rename)
  state.jsonl       StateRecord per stored sample, append-only, flushed per batch
  sync.jsonl        SyncRecord per clock probe or (client, wall) anchor
  events.jsonl      EventRecord: start, stop, hello, bye, gap, drop, error, marker
  video.mkv         H.264 in Matroska; pts = grab start - video_start, rounded to 1 ms
  frames.jsonl      FrameRecord per captured frame, append-only
  aligned.parquet   after `stpe align`
  alignment.json    after `stpe align`
  labels.parquet    after `stpe labels`
  annotations/      after `stpe annotate`
  .reserve          space held while recording, released to close the session on a full disk
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_SCHEMA = "stpe.session/1"

MANIFEST = "session.json"
STATE = "state.jsonl"
SYNC = "sync.jsonl"
EVENTS = "events.jsonl"
VIDEO = "video.mkv"
FRAMES = "frames.jsonl"
ALIGNED = "aligned.parquet"
ALIGNMENT_REPORT = "alignment.json"
LABELS = "labels.parquet"
LABEL_EVENTS = "label_events.jsonl"
ANNOTATIONS = "annotations"
RESERVE = ".reserve"
RESERVE_BYTES = 256 * 1024

Status = Literal["recording", "complete", "failed", "recovered"]


class FileModel(BaseModel):
    """Base of every on-disk record: unknown fields kept (newer writers), NaN refused."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ClockAnchor(FileModel):
    """host_mono and host_wall read back to back, so logs relate to wall-clock files."""

    host_mono_ns: int
    host_wall_ns: int


class Region(FileModel):
    left: int
    top: int
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class CaptureSettings(FileModel):
    fps: float = Field(gt=0)
    region: Region
    monitor: int | None = None
    codec: str = "h264"
    crf: int = 18
    container: str = "matroska"
    time_base: str = Field("1/1000", description="video pts unit as stored: milliseconds")


class PluginInfo(FileModel):
    plugin_version: str
    place_id: int = 0
    place_name: str = ""
    datamodel: str
    viewport: tuple[float, float]


class SessionManifest(FileModel):
    schema_: Literal["stpe.session/1"] = Field(SESSION_SCHEMA, alias="schema")
    session_id: str
    tool_version: str
    status: Status = "recording"
    created: ClockAnchor
    stopped: ClockAnchor | None = None
    capture: CaptureSettings | None = None
    video_start: ClockAnchor | None = Field(
        None, description="host clocks at video pts 0 (the first grab's start)")
    plugin: PluginInfo | None = None
    notes: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, populate_by_name=True)


class StateRecord(FileModel):
    """One stored sample (the wire Sample as JSON) with its host arrival stamps."""

    seq: int
    arrival_mono_ns: int
    arrival_wall_ns: int
    sample: dict[str, Any]


class SyncRecord(FileModel):
    kind: Literal["probe", "anchor"]
    # probe: t0, t1_ns, t2_ns, t3; anchor: client (s), wall_ms, arrival_mono_ns, arrival_wall_ns
    t0: float | None = None
    t1_ns: int | None = None
    t2_ns: int | None = None
    t3: float | None = None
    client: float | None = None
    wall_ms: int | None = None
    arrival_mono_ns: int | None = None
    arrival_wall_ns: int | None = None


class EventRecord(FileModel):
    kind: str
    host_mono_ns: int
    host_wall_ns: int


class FrameRecord(FileModel):
    """One captured frame: its grab times and the pts it was encoded with."""

    index: int = Field(ge=0)
    pts_us: int = Field(ge=0, description="video pts as stored (microseconds, whole ms) since "
                        "video_start; the exact time is grab_start_ns")
    grab_start_ns: int = Field(description="host_mono at grab start")
    grab_end_ns: int = Field(description="host_mono at grab end")
    wall_ns: int = Field(description="host_wall at grab start")
    dropped_before: int = Field(0, ge=0, description="scheduled ticks skipped before it")


def session_paths(root: Path) -> dict[str, Path]:
    """Every file of the session at ``root``, by role."""
    return {
        "manifest": root / MANIFEST, "state": root / STATE, "sync": root / SYNC,
        "events": root / EVENTS, "video": root / VIDEO, "frames": root / FRAMES,
        "aligned": root / ALIGNED, "alignment": root / ALIGNMENT_REPORT,
        "labels": root / LABELS, "label_events": root / LABEL_EVENTS,
        "annotations": root / ANNOTATIONS,
    }
