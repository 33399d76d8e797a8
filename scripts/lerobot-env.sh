#!/usr/bin/env bash
# Build, once per machine, an isolated Python 3.12 environment with the real `lerobot`, so the
# interop tests load the LeRobot export with LeRobot itself (lerobot needs Python >= 3.12 and
# its own torch, which must never enter the project's venv). Prints the environment's python.
# The folder is keyed by the pinned versions, so a pin change builds a new one and a rerun
# reuses it. Usage: export STPE_LEROBOT_PYTHON="$(bash scripts/lerobot-env.sh)"
set -euo pipefail
LEROBOT=0.6.1 TORCH=2.10.0 TORCHVISION=0.25.0 TORCHCODEC=0.10.0 DATASETS=4.8.4 RERUN=0.26.2
root="${STPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stpe}"
env="$root/lerobot-$LEROBOT-torch-$TORCH-torchcodec-$TORCHCODEC-datasets-$DATASETS-rerun-$RERUN-py312"
if [ -f "$env/.complete" ]; then
  echo "$env/bin/python"
  exit 0
fi
mkdir -p "$root"
if command -v flock >/dev/null; then  # one build at a time; a waiting run reuses it
  exec 9>"$root/.build.lock"
  flock 9
fi
if [ -f "$env/.complete" ]; then
  echo "$env/bin/python"
  exit 0
fi
py="${PYTHON312:-}"
if [ -z "$py" ]; then
  for c in "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null \
             | tail -1)" python3.12; do
    if [ -n "$c" ] && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null
    then py="$c"; break; fi
  done
fi
[ -n "$py" ] || { echo "lerobot-env: no Python 3.12 found (set PYTHON312)" >&2; exit 1; }
rm -rf "$env"
start=$(date +%s)
"$py" -m venv "$env"
"$env/bin/python" -m pip install -q --upgrade pip >&2
"$env/bin/python" -m pip install -q "lerobot[dataset,viz]==$LEROBOT" "torch==$TORCH" \
  "torchvision==$TORCHVISION" "torchcodec==$TORCHCODEC" "datasets==$DATASETS" \
  "rerun-sdk==$RERUN" >&2
"$env/bin/python" -c "import lerobot.datasets, torchcodec, rerun" >&2
touch "$env/.complete"
echo "lerobot-env: built $env in $(( $(date +%s) - start )) s, $(du -sh "$env" | cut -f1)" >&2
echo "$env/bin/python"
