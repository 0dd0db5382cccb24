#!/usr/bin/env bash
# A fresh clone's first `make preview`, the install included (docs/benchmarks.md, "First preview").
# Clones this checkout's HEAD (or REF) into a temporary directory and times the install
# (`make setup-preview`, SETUP to change it) and the preview apart: wall, user and system seconds.
# The pip cache is PIP_CACHE_DIR: an empty directory for a machine that has none (cold), the
# same one again for a warm run. Usage: PIP_CACHE_DIR=$(mktemp -d) bash benchmarks/first_preview.sh
set -euo pipefail
unset PYTHONPATH VIRTUAL_ENV
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
setup=${SETUP:-setup-preview}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
git -C "$work/clone" checkout -q "$(git -C "$repo" rev-parse "$ref")"
cd "$work/clone"
load=$(cut -d' ' -f1 /proc/loadavg)
TIMEFORMAT="%R %U %S"
install=$({ time make "$setup" >"$work/setup.log" 2>&1; } 2>&1) || { tail -20 "$work/setup.log"; exit 1; }
preview=$({ time make preview STACK="${STACK:-us}" >"$work/preview.log" 2>&1; } 2>&1) || { tail -20 "$work/preview.log"; exit 1; }
grep -q "deploy preflight" "$work/preview.log"
echo "ref=$(git rev-parse --short HEAD) setup=$setup install(wall user sys)=$install preview(wall user sys)=$preview" \
  "venv=$(du -sm .venv | cut -f1) MB load=$load->$(cut -d' ' -f1 /proc/loadavg)"
