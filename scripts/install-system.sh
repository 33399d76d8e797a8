#!/usr/bin/env bash
# System packages STPE needs on Debian: a virtual X screen for recording without a display,
# ffmpeg (the peer in the recorder benchmark), the libraries OpenCV's window needs and
# chromium (the browser the `stpe serve` tests drive through Playwright; never downloaded).
set -euo pipefail
need=()
for pkg in xvfb xdotool ffmpeg libgl1 libglib2.0-0 x11-utils python3-venv chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
