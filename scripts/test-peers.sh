#!/usr/bin/env bash
# Installs the Python test peers (a pymodbus Modbus server, a paho-mqtt device simulator)
# into a venv under the target dir and prints the venv's python. Pinned versions; nothing
# is cached outside the repository except pip's own download cache. scripts/test.sh calls
# it and exports OXEDGE_TEST_PYTHON; run it by hand to run one crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-$PWD/target}/test-peers/venv"
want="pymodbus==3.16.1 paho-mqtt==2.2.0"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  echo "== installing $want into $venv" >&2
  python3 -m venv --clear "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
  echo "$want" >"$venv/.installed"
fi
echo "$venv/bin/python"
