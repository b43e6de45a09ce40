#!/usr/bin/env bash
# Runs the gateway stack of compose/docker-compose.yml for real, unchanged, with Docker and
# both Compose implementations users run: Debian 12's docker-compose 1.29 for the Mosquitto
# stack, and Docker Compose v2 (`docker compose`, from Debian 13's docker-compose package)
# for the NATS variant and a warning-free `config` of every profile. It checks what a
# gateway relies on:
#   - every container turns healthy and every service's /api/v3/health answers 200;
#   - events of device-virtual reach core-data; a command through core-command reaches a device;
#   - export reaches an MQTT subscriber (once app-mqtt-export is in the stack; PENDING before);
#   - `restart core-data` under load loses no event the broker accepted (an independent
#     QoS 1 subscriber records every event id; core-data must hold each one);
#   - services started without their dependencies (broker, Redis, core-metadata) wait for
#     them without exiting, and turn ready once they come (no start-order chain);
#   - `down` then `up` keeps metadata and events (named volumes);
#   - the NATS (JetStream) variant comes up healthy and moves events (Compose v2).
# It prints image sizes, the time from `up` to all healthy and each container's memory at
# idle and under load.
#
# Nothing can be pulled here, so it builds what it needs and keeps it as cache: dockerd
# (Debian's docker.io) is installed and started when absent, the `debian:bookworm-slim` base
# comes from debootstrap, and the infrastructure images the compose file names (.env) are
# stand-ins built on it from Debian's packages (tests/compose/standins/), and Compose v2 is
# the binary of Debian 13's docker-compose package. Service images
# use the Dockerfile's `prebuilt` target with release binaries built here.
#
#   tests/compose/run.sh          (as root, or with password-less sudo; scripts/test.sh --compose)
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

sudo_cmd=()
sudo_env=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
  sudo_env=(sudo -E)
fi
work="$(mktemp -d)"
project="oxedge-compose-test-$$"
started_dockerd=""
witness_pid=""
log() { echo "== $*"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# --- Docker engine, docker-compose, debootstrap -------------------------------------------
need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v curl >/dev/null || need_apt+=(curl)
command -v mosquitto_sub >/dev/null || need_apt+=(mosquitto-clients)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
docker=("${sudo_cmd[@]}" docker)
if ! "${docker[@]}" info >/dev/null 2>&1; then
  log "starting dockerd"
  "${sudo_cmd[@]}" sh -c "dockerd >'$work/dockerd.log' 2>&1 & echo \$! >'$work/dockerd.pid'"
  started_dockerd="$(cat "$work/dockerd.pid")"
  for _ in $(seq 1 100); do
    "${docker[@]}" info >/dev/null 2>&1 && break
    sleep 0.2
  done
  "${docker[@]}" info >/dev/null 2>&1 || {
    cat "$work/dockerd.log"
    fail "dockerd did not start"
  }
fi

# Compose, from compose/ so that it reads compose/.env; the shell's variables win over it.
export BUILD_TARGET=prebuilt
# The Compose that `dc` runs: 1.29 first, v2 for the NATS variant.
compose=(docker-compose)
dc() { (cd compose && "${sudo_env[@]}" "${compose[@]}" -p "$project" "$@"); }

cleanup() {
  local rc=$?
  [ -n "$witness_pid" ] && kill "$witness_pid" 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "---- logs of the stack" >&2
    dc logs --no-color --tail 40 >&2 2>/dev/null || true
  fi
  COMPOSE_PROFILES=nats dc down -v --remove-orphans >/dev/null 2>&1 || true
  [ -n "$started_dockerd" ] && "${sudo_cmd[@]}" kill "$started_dockerd" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

env_value() { sed -n "s/^$1=//p" compose/.env | tail -n 1; }

# --- Docker Compose v2 ----------------------------------------------------------------------
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)"
mirror="${mirror:-http://deb.debian.org/debian}"

# Docker Compose v2, the `docker compose` users run: the binary of Debian 13's docker-compose
# package (checked against the archive's index), kept in target/ as cache.
compose_v2="${CARGO_TARGET_DIR:-$root/target}/compose-v2/docker-compose"
if ! "$compose_v2" version >/dev/null 2>&1; then
  arch="$(dpkg --print-architecture)"
  log "docker compose v2 from Debian 13's docker-compose package ($mirror, $arch)"
  read -r deb sha <<<"$(curl -sf --max-time 120 "$mirror/dists/trixie/main/binary-$arch/Packages.xz" | xz -dc |
    awk '/^Package: docker-compose$/ { p = 1 } p && /^Filename:/ { f = $2 } p && /^SHA256:/ { print f, $2; exit } /^$/ { p = 0 }')"
  [ -n "${sha:-}" ] || fail "no docker-compose package in $mirror's trixie index"
  curl -sf --max-time 300 -o "$work/compose-v2.deb" "$mirror/$deb" || fail "downloading $mirror/$deb failed"
  echo "$sha  $work/compose-v2.deb" | sha256sum -c --quiet || fail "$deb does not match the archive's checksum"
  dpkg-deb -x "$work/compose-v2.deb" "$work/compose-v2"
  mkdir -p "$(dirname "$compose_v2")"
  cp "$work/compose-v2/usr/libexec/docker/cli-plugins/docker-compose" "$compose_v2"
fi
echo "-- $("$compose_v2" version)"
for profiles in "" nats ble nats,ble; do
  warnings="$(cd compose && COMPOSE_PROFILES="$profiles" "$compose_v2" config --quiet 2>&1)" ||
    fail "docker compose v2 refuses the compose file (profiles '$profiles'): $warnings"
  [ -z "$warnings" ] || fail "docker compose v2 warns about the compose file (profiles '$profiles'): $warnings"
done
echo "docker compose v2 takes the compose file without a warning, with every profile"

# --- Images: base, infrastructure stand-ins ----------------------------------------------
if ! "${docker[@]}" image inspect debian:bookworm-slim >/dev/null 2>&1; then
  log "debian:bookworm-slim from debootstrap ($mirror)"
  rootfs="$work/rootfs"
  "${sudo_cmd[@]}" debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log"
    fail "debootstrap failed"
  }
  # Trimmed as the official slim image is: no package caches, lists, docs, man pages or locales.
  "${sudo_cmd[@]}" sh -c "rm -rf '$rootfs'/var/cache/apt/archives/*.deb '$rootfs'/var/cache/apt/*.bin \
    '$rootfs'/var/lib/apt/lists/* '$rootfs'/usr/share/doc/* '$rootfs'/usr/share/man/* \
    '$rootfs'/usr/share/info/* '$rootfs'/usr/share/locale/*
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
      'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' >'$rootfs'/etc/dpkg/dpkg.cfg.d/slim
    printf '%s\n' 'Dir::Cache::pkgcache \"\";' 'Dir::Cache::srcpkgcache \"\";' >'$rootfs'/etc/apt/apt.conf.d/docker-clean"
  "${sudo_cmd[@]}" tar -C "$rootfs" -c . | "${docker[@]}" import - debian:bookworm-slim >/dev/null
  "${sudo_cmd[@]}" rm -rf "$rootfs"
fi
# A stand-in is labelled with its Dockerfile's hash and rebuilt when that changes; an image
# of that name that is no stand-in (pulled from a registry) is used as it is.
for standin in redis:REDIS_IMAGE mosquitto:MOSQUITTO_IMAGE nats:NATS_IMAGE; do
  image="$(env_value "${standin#*:}")"
  dockerfile="tests/compose/standins/${standin%%:*}.Dockerfile"
  hash="$(sha256sum "$dockerfile" | cut -c1-16)"
  label="$("${docker[@]}" image inspect -f '{{index .Config.Labels "org.oxedge.standin"}}' "$image" 2>/dev/null || echo missing)"
  if [ "$label" = missing ] || { [ -n "$label" ] && [ "$label" != "<no value>" ] && [ "$label" != "$hash" ]; }; then
    log "stand-in $image"
    "${docker[@]}" build -q --label "org.oxedge.standin=$hash" -t "$image" -f "$dockerfile" tests/compose/standins >/dev/null
  fi
done

# --- Service binaries and images ---------------------------------------------------------
# The services of the stack under the active profiles ($COMPOSE_PROFILES), one a line: the
# name, and for an Oxedge service its binary (SERVICE build argument) and port, else "- -".
# (docker-compose 1.29's `config` lists the services of every profile.)
stack() {
  dc config | python3 -c '
import os, sys, yaml
active = set(filter(None, os.environ.get("COMPOSE_PROFILES", "").split(",")))
for name, s in yaml.safe_load(sys.stdin)["services"].items():
    if s.get("profiles") and not active.intersection(s["profiles"]):
        continue
    args = s.get("build", {}).get("args", {})
    print(name, args.get("SERVICE", "-"), args.get("PORT", "-"))'
}
mapfile -t oxedge_services < <(stack | awk '$2 != "-" { print $1 }')
read -r -a binaries <<<"$(stack | awk '$2 != "-" { print $2 }' | sort -u | tr '\n' ' ')"
packages=()
for bin in "${binaries[@]}"; do packages+=(-p "oxedge-$bin"); done
# OXEDGE_COMPOSE_PROFILE=dev puts debug binaries in the images: they link against what the
# test suite already compiled, so CI spends a minute and little disk instead of a release
# build; image sizes and memory figures are only meaningful with the default, release.
case "${OXEDGE_COMPOSE_PROFILE:-release}" in
  release) profile_args=(--release) BIN_DIR=target/release ;;
  dev) profile_args=() BIN_DIR=target/debug ;;
  *) fail "OXEDGE_COMPOSE_PROFILE must be release or dev, not $OXEDGE_COMPOSE_PROFILE" ;;
esac
export BIN_DIR
log "build (${OXEDGE_COMPOSE_PROFILE:-release}) of ${binaries[*]}"
start=$(date +%s)
cargo build "${profile_args[@]}" --locked "${packages[@]}"
log "build took $(($(date +%s) - start)) s"
start=$(date +%s)
dc build --quiet "${oxedge_services[@]}"
log "images built in $(($(date +%s) - start)) s"
echo "-- image sizes"
registry="$(env_value IMAGE_REGISTRY)"
"${docker[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E "^($registry/|debian:bookworm-slim|$(env_value REDIS_IMAGE)|$(env_value MOSQUITTO_IMAGE)|$(env_value NATS_IMAGE))" | sort

# --- Helpers -----------------------------------------------------------------------------
# The containers of the services now in the stack.
containers() { dc ps -q; }
# Waits up to $1 seconds until every container is healthy; prints the seconds since $2 (a
# `date +%s.%N`; now by default).
wait_healthy() {
  local deadline=$(($(date +%s) + $1)) begin="${2:-$(date +%s.%N)}"
  while :; do
    local bad=""
    for c in $(containers); do
      status="$("${docker[@]}" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")"
      [ "$status" = healthy ] || bad+=" $("${docker[@]}" inspect -f '{{.Name}}' "$c"):$status"
    done
    if [ -z "$bad" ]; then
      python3 -c "import time; print(f'{time.time() - $begin:.1f}')"
      return 0
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after $1 s:$bad"
    sleep 0.5
  done
}
# HTTP status of a GET.
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
# A JSON field ($2, a Python expression on `j`) of a GET's body.
json_get() { curl -sf --max-time 10 "$1" | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)"; }
event_count() { json_get http://127.0.0.1:59880/api/v3/event/count 'j["count"]'; }
# The published port of each Oxedge service in the stack.
service_ports() { stack | awk '$3 != "-" { print $3 }'; }
# Waits up to 60 s until every service's /api/v3/health answers 200. A container turns
# healthy on /api/v3/ping, which a service answers while it still waits for its
# dependencies (core-metadata, the broker); readiness can follow a few seconds later.
all_ready() {
  local deadline=$(($(date +%s) + 60))
  for port in $(service_ports); do
    while code="$(status_of "http://127.0.0.1:$port/api/v3/health")" && [ "$code" != 200 ]; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "/api/v3/health on port $port answered $code after 60 s"
      sleep 0.5
    done
  done
}
# Waits up to $1 seconds for core-data to hold more than $2 events.
wait_events_above() {
  for _ in $(seq 1 "$1"); do
    [ "$(event_count 2>/dev/null || echo 0)" -gt "$2" ] && return 0
    sleep 1
  done
  fail "core-data holds no more than $2 events after $1 s"
}
# Each container's memory as `docker stats` counts it (the cgroup's, without page cache), its
# CPU, and the resident set of its main process (VmRSS, which counts the mapped binary too).
stats() {
  echo "-- memory and CPU ($1): container, docker stats memory, CPU, process RSS"
  for c in $(containers); do
    pid="$("${docker[@]}" inspect -f '{{.State.Pid}}' "$c")"
    rss="$("${sudo_cmd[@]}" sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$pid/status")"
    echo "$("${docker[@]}" stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' "$c" |
      sed -e "s/^${project}[_-]//" -e 's# / [0-9.]*[KMG]iB##') RSS $rss"
  done | sort
}

for port in 1883 4222 59880 59881 59882 59900 59901 59982 59986 59703; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && fail "port $port is taken on this host; the stack publishes it"
done

# --- The stack: up, healthy, events, a command ---------------------------------------------
log "up (Mosquitto bus)"
begin=$(date +%s.%N)
dc up -d >/dev/null 2>&1
echo "-- all healthy $(wait_healthy 120 "$begin") s after up"
all_ready
wait_events_above 30 0
echo "events of device-virtual reach core-data: $(event_count) stored"
[ "$(json_get http://127.0.0.1:59880/api/v3/event/count/device/name/Random-Integer-Device 'j["count"]')" -gt 0 ] ||
  fail "no event of Random-Integer-Device in core-data"

device=http://127.0.0.1:59882/api/v3/device/name/Random-Integer-Device
[ "$(json_get "$device/Int16" 'j["event"]["readings"][0]["resourceName"]')" = Int16 ] ||
  fail "a GET through core-command did not reach the device"
curl -sf --max-time 10 -X PUT -H 'Content-Type: application/json' \
  -d '{"Int16": "-1234", "EnableRandomization_Int16": "false"}' "$device/WriteInt16Value" >/dev/null ||
  fail "a PUT through core-command failed"
[ "$(json_get "$device/Int16" 'j["event"]["readings"][0]["value"]')" = -1234 ] ||
  fail "the value written through core-command was not read back"
echo "a GET and a PUT through core-command reach the device"

if stack | awk '{ print $1 }' | grep -qx app-mqtt-export; then
  log "export to an MQTT subscriber"
  timeout 30 mosquitto_sub -h 127.0.0.1 -p 1883 -t 'edgex-export/#' -C 1 -W 30 >/dev/null ||
    fail "no exported event reached an MQTT subscriber"
  echo "exported events reach an MQTT subscriber"
else
  echo "PENDING: export to an MQTT subscriber (app-mqtt-export is not in the stack yet)"
fi

sleep 10
stats "idle: device-virtual's example devices only"

# --- Load, and a core-data restart under it ------------------------------------------------
python="$(scripts/test-peers.sh)"
"$python" tests/compose/peers/witness.py collect 127.0.0.1 1883 "compose-witness-$$" "$work/witnessed" &
witness_pid=$!
sleep 1
load_devices=100
log "load: $load_devices Virtual-Load devices read every second"
python3 - "$load_devices" >"$work/devices.json" <<'EOF'
import json, sys
print(json.dumps([{"apiVersion": "v3", "device": {
    "name": f"compose-load-{i:04}", "serviceName": "device-virtual", "profileName": "Virtual-Load",
    "adminState": "UNLOCKED", "operatingState": "UP", "protocols": {"other": {"Address": f"load-{i:04}"}},
    "autoEvents": [{"interval": "1s", "onChange": False, "sourceName": "Load"}]}} for i in range(int(sys.argv[1]))]))
EOF
curl -sf --max-time 30 -X POST -H 'Content-Type: application/json' -d @"$work/devices.json" \
  http://127.0.0.1:59881/api/v3/device >/dev/null || fail "adding the load devices failed"
sleep 15
before=$(event_count)
sleep 10
echo "under load: $(((($(event_count) - before)) / 10)) events/s stored"
stats "under load: $load_devices devices x 5 readings every second"

log "restart core-data under load"
dc restart core-data >/dev/null 2>&1
wait_healthy 60 >/dev/null
sleep 5
dc stop device-virtual >/dev/null 2>&1
# core-data drains what the broker kept for it while it restarted.
last=-1
for _ in $(seq 1 60); do
  now=$(event_count)
  [ "$now" = "$last" ] && break
  last=$now
  sleep 2
done
kill "$witness_pid"
wait "$witness_pid" || true
witness_pid=""
"$python" tests/compose/peers/witness.py verify http://127.0.0.1:59880 "$work/witnessed" ||
  fail "core-data lost events across its restart"
dc start device-virtual >/dev/null 2>&1

# --- down, then services without their dependencies, then up --------------------------------
wait_healthy 60 >/dev/null
events_before=$(event_count)
log "down (volumes kept), then the Oxedge services alone: no broker, no Redis"
dc down >/dev/null 2>&1
# One at a time: an `up` naming several services waits for the health of those others depend on.
for service in "${oxedge_services[@]}"; do
  dc up -d --no-deps "$service" >/dev/null 2>&1
done
sleep 15
for c in $(containers); do
  read -r name running restarts <<<"$("${docker[@]}" inspect -f '{{.Name}} {{.State.Running}} {{.RestartCount}}' "$c")"
  [ "$running" = true ] && [ "$restarts" = 0 ] || fail "$name did not wait for its dependencies (running $running, restarts $restarts)"
done
for port in $(service_ports); do
  code="$(status_of "http://127.0.0.1:$port/api/v3/health")"
  [ "$code" != 200 ] || fail "port $port reports ready without broker and Redis"
done
echo "without broker and Redis every service waits (no exit, not ready)"
log "up: the dependencies join"
begin=$(date +%s.%N)
dc up -d >/dev/null 2>&1
echo "-- all healthy $(wait_healthy 120 "$begin") s after the dependencies started"
all_ready
[ "$(event_count)" -ge "$events_before" ] || fail "events lost across down/up ($events_before before, $(event_count) after)"
[ "$(status_of http://127.0.0.1:59881/api/v3/device/name/compose-load-0001)" = 200 ] ||
  fail "a device added before down is gone after up"
wait_events_above 60 "$events_before"
echo "down/up kept metadata and $events_before events; new events keep arriving"
log "down -v"
dc down -v >/dev/null 2>&1

# --- NATS with JetStream ---------------------------------------------------------------
compose=("$compose_v2")
log "up (NATS JetStream bus, $("${compose[@]}" version))"
export COMPOSE_PROFILES=nats BUS_TYPE=nats BUS_URL=nats://nats:4222
begin=$(date +%s.%N)
dc up -d >/dev/null 2>&1
echo "-- all healthy $(wait_healthy 120 "$begin") s after up (NATS)"
dc ps --services | grep -qx nats || fail "the NATS variant started no nats container"
all_ready
wait_events_above 60 0
[ "$(json_get "$device/Int16" 'j["event"]["readings"][0]["resourceName"]')" = Int16 ] ||
  fail "a GET through core-command did not reach the device on NATS"
echo "NATS: events reach core-data ($(event_count) stored), commands reach the device"
stats "NATS, idle"
log "compose test passed"
