"""Run chosen test files against named mutants of a `mutmut run`, one fresh pytest each.

After a run, a survivor is either a missing test or an equivalent change. Once a test is
written for it, this says whether the test kills it without a new mutmut run (which would
collect its statistics again) and without mutmut's fork, so it also sees mutants that
mutmut cannot switch on (code that runs at import, such as a registry decorator).

    python scripts/check_mutants.py pipeline.export._coco.x_join__mutmut_3 ... \\
        -- tests/pipeline/test_export.py
    mutmut results | grep survived | cut -d: -f1 | \\
        python scripts/check_mutants.py - -- tests/pipeline/test_export.py

The working tree's tests/ and pyproject.toml are copied into `mutants/` and pytest runs
there, so that the mutated sources are the ones imported. A mutant is killed when pytest
fails, errors or runs over `--timeout` seconds. Prints one line per mutant and a summary;
exits 1 when any survived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path


def check(mutants: Path, names: list[str], tests: list[str], timeout: float) -> list[str]:
    """Run `tests` in `mutants` once per name; return the names no test failed on."""
    shutil.rmtree(mutants / "tests", ignore_errors=True)
    shutil.copytree("tests", mutants / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy("pyproject.toml", mutants / "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    survived = []
    for name in names:
        try:
            rc = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                env={**env, "MUTANT_UNDER_TEST": name}, cwd=mutants, capture_output=True,
                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        if rc == 0:
            survived.append(name)
        print(f"{'survived' if rc == 0 else 'killed  '} {name}", flush=True)
    return survived


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="mutant names, or - to read them from stdin")
    parser.add_argument("--mutants", type=Path, default=Path("mutants"),
                        help="the folder `mutmut run` wrote (default: mutants)")
    parser.add_argument("--timeout", type=float, default=300.0)
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("name the test files after --")
    split = argv.index("--")
    args, tests = parser.parse_args(argv[:split]), argv[split + 1:]
    names = sys.stdin.read().split() if args.names == ["-"] else args.names
    if not (args.mutants / "mutmut-stats.json").exists():
        parser.error(f"{args.mutants} holds no mutmut run; run `make mutants` first")
    survived = check(args.mutants.resolve(), names, tests, args.timeout)
    print(f"{len(names) - len(survived)} of {len(names)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
