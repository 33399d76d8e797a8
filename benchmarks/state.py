"""Reading a session's state log into columns: `Session.read_state` against what a user would
otherwise write, pandas (`read_json(lines=True)` and `json_normalize` of the samples), and
against the line-by-line reader `read_state` falls back to (orjson per line, then
`pa.Table.from_pylist`). Each reader runs in its own process on the same file, so its peak
memory is its own; prints seconds, peak RSS and the ratios.

    python benchmarks/state.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture import SessionWriter
from capture._synthetic import synthetic_sample

READERS = {
    "stpe read_state": """
from capture import Session
table = Session.open(PATH).read_state()
rows, columns = table.num_rows, table.num_columns
""",
    "line by line": """
from capture._arrow import state_table_from_records
from capture._store import read_jsonl
table = state_table_from_records(sorted(read_jsonl(PATH / "state.jsonl"),
                                        key=lambda r: r["seq"]))
rows, columns = table.num_rows, table.num_columns
""",
    "pandas": """
import pandas as pd
lines = pd.read_json(PATH / "state.jsonl", lines=True)
frame = pd.json_normalize(lines["sample"].tolist()).sort_values("seq")
rows, columns = frame.shape
""",
}
MEASURE = """
import resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
PATH = Path({path!r})
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rows, columns)
"""


def write_session(folder: Path, samples: int) -> Path:
    writer = SessionWriter.create(folder, "state-bench")
    lines = []
    for seq in range(samples):
        sample = synthetic_sample(seq, seq / 60)
        lines.append(b'{"arrival_mono_ns":%d,"arrival_wall_ns":%d,"seq":%d,"sample":%s}'
                     % (seq * 16_666_667, seq, seq, orjson.dumps(sample)))
        if len(lines) == 4096:
            writer.append_state(lines)
            lines = []
    writer.append_state(lines)
    writer.finalize()
    return writer.path


def measure(reader: str, path: Path) -> tuple[float, float, int, int]:
    script = MEASURE.format(root=str(Path(__file__).resolve().parents[1]), path=str(path),
                            body=READERS[reader])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), int(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="session length at 60 samples/s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_session(Path(tmp), int(args.minutes * 60 * 60))
        size = (path / "state.jsonl").stat().st_size / 1e6
        print(f"state.jsonl: {int(args.minutes * 3600)} samples, {size:.0f} MB")
        results = {name: measure(name, path) for name in READERS}
    ours = results["stpe read_state"]
    print(f"{'reader':18} {'seconds':>8} {'peak RSS MB':>12} {'rows':>8} {'columns':>8}")
    for name, (seconds, rss, rows, columns) in results.items():
        print(f"{name:18} {seconds:8.2f} {rss:12.0f} {rows:8d} {columns:8d}")
    for name, (seconds, rss, _, _) in results.items():
        if name != "stpe read_state":
            print(f"ratio vs {name}: time {ours[0] / seconds:.2f}, peak memory "
                  f"{ours[1] / rss:.2f}")


if __name__ == "__main__":
    main()
