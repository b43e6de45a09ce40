#!/usr/bin/env bash
# Runs Oxedge's test suite: formatting, lints, and every test against real servers.
#
# On a fresh Debian/Ubuntu machine it installs what the tests need (redis-server) and
# starts it on loopback; servers it started are stopped when it exits.
#
#   scripts/test.sh            fmt check, clippy, all tests
#   scripts/test.sh --quick    tests only (with the API conformance run)
#
# The API conformance run (tests/api-conformance/run.sh) drives a real `oxedge run` with
# schemathesis; it installs its pinned schemathesis into target/api-conformance/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

run_dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
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
  echo "== redis-server on $OXEDGE_TEST_REDIS_URL"
fi

if [ "$quick" -eq 0 ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

# Before the cargo tests, so that their summary stays the last thing printed (about a minute).
echo "== API conformance (schemathesis)"
cargo build -p oxedge --locked
tests/api-conformance/run.sh

echo "== tests"
if command -v cargo-nextest >/dev/null; then
  # nextest does not run doc tests; run them first so nextest's summary closes the log.
  cargo test --workspace --locked --doc --quiet
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
