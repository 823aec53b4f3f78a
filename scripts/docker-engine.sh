#!/usr/bin/env bash
# A Docker engine owned by its caller, for image builds and container tests (ENVIRONMENT.md):
# no bridge, no iptables changes, its own socket, data-root, exec-root and pidfile, so that it
# never touches an engine someone else runs on this machine. Containers use --network host.
#
#   scripts/docker-engine.sh start    # installs docker.io when missing, starts dockerd, waits until it answers
#   scripts/docker-engine.sh stop     # stops the daemon by the pid in its pidfile
#   scripts/docker-engine.sh status   # exit 0 when it answers
#   eval "$(scripts/docker-engine.sh env)"   # DOCKER_HOST for this engine
#
# SMLOAD_DOCKER_NAME (default smload-docker) names the instance: socket /run/NAME.sock, data-root
# /var/lib/NAME (images persist there: the base image is built once), exec-root /run/NAME,
# pidfile /run/NAME.pid, log /var/log/NAME.log. Two suites that must not share an engine use two names.
set -euo pipefail

name=${SMLOAD_DOCKER_NAME:-smload-docker}
socket=/run/$name.sock
pidfile=/run/$name.pid
data_root=/var/lib/$name
exec_root=/run/$name
log=/var/log/$name.log
host=unix://$socket

die() { echo "docker-engine: $*" >&2; exit 1; }

# The pid in our pidfile, only if that process is a dockerd serving our socket (never another engine).
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "dockerd.*$socket" || return 1
  echo "$pid"
}

answers() { DOCKER_HOST=$host docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_missing() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
    die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})"
  # The package must not start the system's own docker service (bridge, iptables): policy-rc.d
  # answers "not now" to every service start during the install, unless the machine has its own.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && ours=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || { [ $ours = 1 ] && rm -f $policy; exit 1; }
  [ $ours = 1 ] && rm -f $policy
  return 0
}

start() {
  if our_pid >/dev/null && answers; then
    echo "docker-engine: $name already running (pid $(our_pid)), $host"
    return 0
  fi
  install_missing
  [ "$(id -u)" = 0 ] || die "dockerd needs root: run this as root"
  mkdir -p "$data_root" "$exec_root"
  # setsid: the daemon outlives this script and is not in the caller's process group
  setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --host "$host" --data-root "$data_root" --exec-root "$exec_root" --pidfile "$pidfile" \
    >>"$log" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + 90))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2
      die "dockerd exited while starting (log: $log)"
    fi
    if [ $SECONDS -gt $deadline ]; then
      tail -n 30 "$log" >&2
      kill "$pid" 2>/dev/null || true
      die "dockerd did not answer on $socket within 90 s (log: $log)"
    fi
    sleep 0.2
  done
  echo "docker-engine: $name started (pid $pid), $host"
}

# Two callers starting the same instance at once: the second waits and then finds it running.
start_locked() {
  exec 9>"/run/$name.lock"
  flock 9
  start
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    echo "docker-engine: $name is not running"
    return 0
  fi
  kill -TERM "$pid"
  # dockerd stops its containers (up to their stop timeout) and its containerd before it exits
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -gt $deadline ]; then
      echo "docker-engine: dockerd $pid still running after 60 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  echo "docker-engine: $name stopped (pid $pid)"
}

case "${1:-}" in
  start) start_locked ;;
  stop) stop ;;
  status) our_pid >/dev/null && answers ;;
  env) echo "export DOCKER_HOST=$host" ;;
  *) die "usage: $0 start|stop|status|env" ;;
esac
