#!/usr/bin/env bash
# A fresh clone's first `make preview`, the install included, beside its floor (docs/benchmarks.md,
# "First preview"). Clones this checkout's HEAD (or REF) into a temporary directory, then times, in
# wall, user and system seconds (children included), one after the other:
#   floor pip  a new venv and `pip install` of the five Pulumi SDKs alone (pulumi, pulumi-aws,
#              pulumi-kubernetes, pulumi-random, pulumi-policy), pinned by constraints.txt: the floor
#   floor uv   the same five with the installer `make preview` uses (pip installs uv, uv the SDKs)
#   install    `make setup-preview` in the clone (SETUP to change it): a new .venv and the base set
#   preview    `make preview`, then `make preview` again (the second run of a day)
# Caches: each step starts from empty pip and uv caches (a fresh CI machine has none), unless
# CACHE=<dir> names one that all steps share (run twice with the same dir for warm figures).
# Usage: bash benchmarks/first_preview.sh    REF=<commit> SETUP=setup CACHE=<dir> STACK=eu
set -euo pipefail
unset PYTHONPATH VIRTUAL_ENV
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
git -C "$work/clone" checkout -q "$(git -C "$repo" rev-parse "${REF:-HEAD}")"
pins="$repo/constraints.txt" # the floors always use this checkout's pins
sdks=(pulumi pulumi-aws pulumi-kubernetes pulumi-random pulumi-policy)
TIMEFORMAT="%R %U %S"

caches() { # $1: the step; PIP_CACHE_DIR and UV_CACHE_DIR for it
  local dir=${CACHE:-$work/cache-$1}
  export PIP_CACHE_DIR=$dir/pip UV_CACHE_DIR=$dir/uv
}

step() { # $1: name; the rest: the command; prints "name wall user sys load"
  local name=$1 load times
  shift
  caches "$name"
  load=$(cut -d' ' -f1 /proc/loadavg)
  times=$({ time "$@" >"$work/$name.log" 2>&1; } 2>&1) || {
    tail -20 "$work/$name.log" >&2
    exit 1
  }
  printf '%-14s %s load %s->%s\n' "$name" "$times" "$load" "$(cut -d' ' -f1 /proc/loadavg)"
}

floor_pip() {
  "$python" -m venv "$work/floor-pip"
  "$work/floor-pip/bin/python" -m pip install -q --disable-pip-version-check -c "$pins" "${sdks[@]}"
}
floor_uv() {
  "$python" -m venv "$work/floor-uv"
  "$work/floor-uv/bin/python" -m pip install -q --disable-pip-version-check -c "$pins" uv
  "$work/floor-uv/bin/uv" pip install -q --python "$work/floor-uv/bin/python" -c "$pins" "${sdks[@]}"
}

cd "$work/clone"
echo "ref=$(git rev-parse --short HEAD) setup=${SETUP:-setup-preview} cache=${CACHE:-empty per step} $(nproc) cores"
echo "step           wall user sys (s)"
{
  step "floor-pip" floor_pip
  step "floor-uv" floor_uv
  step "install" make "${SETUP:-setup-preview}"
  step "preview" make preview STACK="${STACK:-us}"
  step "preview-again" make preview STACK="${STACK:-us}"
} | tee "$work/times"
grep -q "deploy preflight" "$work/preview.log"
echo "venv: $(du -sm .venv | cut -f1) MB; floor venvs: pip $(du -sm "$work/floor-pip" | cut -f1) MB, uv $(du -sm "$work/floor-uv" | cut -f1) MB"
awk '{ wall[$1] = $2; cpu[$1] = $3 + $4 }
  END {
    first = wall["install"] + wall["preview"]; first_cpu = cpu["install"] + cpu["preview"]
    printf "first preview (install + preview): %.1f s wall, %.1f s CPU\n", first, first_cpu
    printf "vs floor pip (%.1f s wall, %.1f s CPU): %.2fx wall, %.2fx CPU\n", wall["floor-pip"], cpu["floor-pip"], first / wall["floor-pip"], first_cpu / cpu["floor-pip"]
    printf "install vs floor uv (%.1f s wall, %.1f s CPU): %.2fx wall, %.2fx CPU\n", wall["floor-uv"], cpu["floor-uv"], wall["install"] / wall["floor-uv"], cpu["install"] / cpu["floor-uv"]
  }' "$work/times"
