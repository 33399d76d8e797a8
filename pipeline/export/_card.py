"""The dataset card (README.md) written into every export: counts, timing, the label
definitions and each session's alignment and label summaries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.export._hf import hub_metadata
from pipeline.export._source import ExportOptions, SessionData
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

LABELS = (
    ("t", "s", "frame time since the session's first frame, from real grab times"),
    ("K", "px", "3x3 intrinsics of the captured frame, row-major"),
    ("T_cam_world", "studs", "4x4 world-to-camera transform, OpenCV axes (x right, y down, "
     "z forward)"),
    ("root_px", "px", "projection of the character's root part"),
    ("objects[].box_xyxy", "px", "2D box of a 3D box, clipped to the frame"),
    ("objects[].camera_caused_motion", "px/s", "image motion the camera caused"),
    ("move_dir_cam", "", "movement direction in the camera's yaw frame"),
    ("caption", "", "deterministic description of frames N-1 and N"),
)


CITATION = """@misc{stpe_dataset,
  title = {STPE: Roblox play sessions with exact per-frame game state},
  note = {Recorded and labelled with STPE},
  howpublished = {dataset card README.md}
}"""


def _alignment(data: SessionData) -> dict[str, Any]:
    path = data.session.file("alignment")
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def write_card(root: Path, fmt: str, sessions: Sequence[SessionData], counts: dict[str, Any],
               options: ExportOptions, sent: dict[str, int]) -> None:
    """Write `root/README.md`; `sent` lists files already uploaded (path -> bytes)."""
    frames = sum(s.count for s in sessions)
    duration = sum(float(s.t[-1] - s.t[0]) for s in sessions)
    files = {p.relative_to(root).as_posix(): p.stat().st_size
             for p in root.rglob("*") if p.is_file()} | sent
    header = hub_metadata(fmt, root, sessions, options.license, files)
    timing = ("Rows are at a constant rate (info.json `fps`): each is the captured frame "
              "nearest its time, with its true capture time `capture_t` and its "
              "`source_frame_index`." if fmt == "lerobot" else
              "Times are real capture times (never frame index / fps).")
    lines = [
        # JSON is YAML: one key per line, so the header needs no YAML writer
        "---", *(f"{k}: {json.dumps(v)}" for k, v in header.items()), "---", "",
        f"# STPE dataset ({fmt})", "",
        f"- sessions: {len(sessions)}", f"- frames: {frames}",
        f"- duration: {duration:.3f} s",
        f"- mean frame rate: {(frames - len(sessions)) / duration:.3f} frames/s"
        if duration > 0 else "- mean frame rate: n/a",
        f"- timecode strip: {options.timecode}",
        f"- frame rate cap: {options.fps_cap or 'none'}",
        "- splits (by session): " + ", ".join(
            f"{name} {sum(s.split == name for s in sessions)}"
            for name in dict.fromkeys(s.split for s in sessions)), "",
        "Frames are the captured frames that have matched game state. " + timing,
        "Every label is derived exactly from the recorded state; see docs/labels.md and",
        "docs/conventions.md of STPE for the full definitions.",
        "", "## Labels", "", "| field | unit | meaning |", "|---|---|---|",
        *(f"| `{n}` | {u} | {m} |" for n, u, m in LABELS), "",
        f"`observation.state` ({len(STATE_NAMES)}): {', '.join(STATE_NAMES)}", "",
        f"`action` ({len(ACTION_NAMES)}): {', '.join(ACTION_NAMES)}", "",
        "## Sessions", "",
    ]
    for s in sessions:
        report = _alignment(s)
        lines += [f"### {s.name}", "", f"- frames exported: {s.count}",
                  "- label summary: `" + json.dumps(s.summary, sort_keys=True) + "`"]
        if report:
            short = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
            lines.append("- alignment: `" + json.dumps(short, sort_keys=True) + "`")
        lines.append("")
    lines += ["## Counts", "", "```json", json.dumps(counts, indent=2, sort_keys=True), "```", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    (root / "README.md").write_text("\n".join(lines))
