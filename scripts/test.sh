#!/usr/bin/env bash
# Runs Oxedge's test suite: formatting, lints, and every test against real servers.
#
# On a fresh Debian/Ubuntu machine it installs what the tests need (redis-server,
# mosquitto, nats-server, libdbus for BLE) and the Python test peers (scripts/test-peers.sh),
# and starts the servers on loopback; servers it started are stopped when
# it exits.
#
#   scripts/test.sh            fmt check, clippy, all tests
#   scripts/test.sh --quick    tests only (with the API conformance run)
#   scripts/test.sh --soak     also the slow measurements marked #[ignore] (CI passes it)
#   scripts/test.sh --compose  also the deployment: k8s/ validated offline, the compose stack run with Docker
#                              (debug binaries in the images unless OXEDGE_COMPOSE_PROFILE=release; CI passes it)
#
# The API conformance run (tests/api-conformance/run.sh) drives a real `oxedge run` with
# schemathesis; it installs its pinned schemathesis into target/api-conformance/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
soak=0
compose=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --soak) soak=1 ;;
    --compose) compose=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

# No incremental compilation data: a run builds each crate once, and the data would double
# target/'s size on CI's small disks.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The compose stack runs debug binaries, linked from what the tests compiled (see
# tests/compose/run.sh); OXEDGE_COMPOSE_PROFILE=release tests the release images.
export OXEDGE_COMPOSE_PROFILE="${OXEDGE_COMPOSE_PROFILE:-dev}"

# Each phase's heading says how far into the run it starts.
phase() { echo "== $* [${SECONDS}s]"; }

run_dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null || need_apt+=(mosquitto-clients)
command -v nats-server >/dev/null || need_apt+=(nats-server)
# device-modbus's RTU test joins a serial pty to the pymodbus server with socat.
command -v socat >/dev/null || need_apt+=(socat)
# device-ble's BlueZ backend (btleplug) links libdbus.
pkg-config --exists dbus-1 2>/dev/null || need_apt+=(pkg-config libdbus-1-dev)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  phase "installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Redis on a free loopback port, unless the caller points the tests at one.
if [ -z "${OXEDGE_TEST_REDIS_URL:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$run_dir" \
    --daemonize no >"$run_dir/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null || { cat "$run_dir/redis.log"; echo "redis-server did not start" >&2; exit 1; }
  export OXEDGE_TEST_REDIS_URL="redis://127.0.0.1:$port"
  phase "redis-server on $OXEDGE_TEST_REDIS_URL"
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Waits until something accepts connections on 127.0.0.1:$1, or fails showing log $2.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$2"; echo "nothing listens on port $1" >&2; exit 1
}

# Mosquitto on a free loopback port, unless the caller points the tests at one.
if [ -z "${OXEDGE_TEST_MQTT_URL:-}" ]; then
  port=$(free_port)
  printf '%s\n' "listener $port 127.0.0.1" "allow_anonymous true" "max_queued_messages 100000" \
    "max_inflight_messages 1000" "persistence false" >"$run_dir/mosquitto.conf"
  mosquitto -c "$run_dir/mosquitto.conf" >"$run_dir/mosquitto.log" 2>&1 &
  pids+=($!)
  wait_port "$port" "$run_dir/mosquitto.log"
  export OXEDGE_TEST_MQTT_URL="mqtt://127.0.0.1:$port"
  phase "mosquitto on $OXEDGE_TEST_MQTT_URL"
fi

# nats-server with JetStream on a free loopback port, unless the caller points the tests at one.
# 8 MiB messages: the bus tests send 2 MB payloads (the default limit is 1 MiB).
if [ -z "${OXEDGE_TEST_NATS_URL:-}" ]; then
  port=$(free_port)
  mkdir -p "$run_dir/nats"
  echo "max_payload: 8388608" >"$run_dir/nats.conf"
  nats-server -c "$run_dir/nats.conf" -a 127.0.0.1 -p "$port" -js -sd "$run_dir/nats" >"$run_dir/nats.log" 2>&1 &
  pids+=($!)
  wait_port "$port" "$run_dir/nats.log"
  export OXEDGE_TEST_NATS_URL="nats://127.0.0.1:$port"
  phase "nats-server on $OXEDGE_TEST_NATS_URL"
fi

# Python test peers (pymodbus, paho-mqtt), unless the caller provides an interpreter with them.
if [ -z "${OXEDGE_TEST_PYTHON:-}" ]; then
  OXEDGE_TEST_PYTHON="$(scripts/test-peers.sh)"
  export OXEDGE_TEST_PYTHON
fi

if [ "$quick" -eq 0 ]; then
  phase "cargo fmt --check"
  cargo fmt --all -- --check
  phase "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # device-ble's BlueZ backend is opt-in (it links libdbus, which a fresh machine lacks).
  cargo clippy -p oxedge-device-ble --features bluez --all-targets --locked -- -D warnings
fi

# Before the cargo tests, so that their summary stays the last thing printed (about a minute).
phase "API conformance (schemathesis)"
cargo build -p oxedge --locked
tests/api-conformance/run.sh

if [ "$compose" -eq 1 ]; then
  phase "deployment: k8s manifests (tests/compose/k8s.sh), compose stack (tests/compose/run.sh)"
  tests/compose/k8s.sh
  tests/compose/run.sh
fi

phase "tests"
if command -v cargo-nextest >/dev/null; then
  # nextest does not run doc tests; run them first so nextest's summary closes the log.
  cargo test --workspace --locked --doc --quiet
  cargo nextest run --workspace --locked --no-fail-fast
  # device-ble once more with its BlueZ backend against a D-Bus where nothing listens.
  cargo nextest run -p oxedge-device-ble --features bluez --locked --no-fail-fast
  # The runtime as services on their own build it: without the embedded broker.
  cargo nextest run -p oxedge-runtime --lib --locked --no-fail-fast
  if [ "$soak" -eq 1 ]; then
    phase "slow measurements (#[ignore])"
    cargo nextest run --workspace --locked --no-fail-fast --run-ignored only --no-capture
  fi
else
  cargo test --workspace --locked --no-fail-fast
  if [ "$soak" -eq 1 ]; then
    phase "slow measurements (#[ignore])"
    cargo test --workspace --locked --no-fail-fast -- --ignored --nocapture
  fi
fi
