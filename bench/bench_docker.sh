#!/usr/bin/env bash
# The image: its size (total, base, what we add, the largest Python packages), how long it takes to
# build (cold, no cache; warm, nothing changed) and how fast each role is ready after `docker run`.
# Runs on our own engine (scripts/docker-engine.sh) on the local Debian base. Prints a Markdown
# table for bench/RESULTS.md and exits non-zero when the image exceeds its budget.
#
#   flock /tmp/smload-bench.lock env BENCH_BASE=1 bench/bench_docker.sh
#
# BENCH_BASE=1 also times building the base image from scratch (debootstrap).
# BUDGET_MB (default 300) is the target on python:3.12-slim; here the check is on what we add to
# the base (the image minus the base), against BUDGET_MB minus SLIM_MB (python:3.12-slim's own size,
# 125 MB by default: registries are out of reach here, so it cannot be measured on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."

export SMLOAD_DOCKER_NAME=${SMLOAD_DOCKER_NAME:-smload-docker}
budget_mb=${BUDGET_MB:-300}
slim_mb=${SLIM_MB:-125}
base=smload/base:bookworm
image=sagemaker-loadtest:bench

started_engine=0
scripts/docker-engine.sh status || { scripts/docker-engine.sh start >&2; started_engine=1; }
eval "$(scripts/docker-engine.sh env)"
label=smload.bench=$$  # the containers of this run (ready() runs in subshells)
cleanup() {
  docker ps -aq --filter "label=$label" | xargs -r docker rm -f -v >/dev/null 2>&1 || true
  [ $started_engine = 1 ] && scripts/docker-engine.sh stop >&2 || true
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
mb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.0f}')" "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

scripts/base-image.sh >&2
base_note="not measured (BENCH_BASE=1 measures it)"
if [ "${BENCH_BASE:-0}" = 1 ]; then  # debootstrap from scratch, into a throwaway tag
  t0=$(now); SMLOAD_BASE_IMAGE=smload/base:bench scripts/base-image.sh >&2; t1=$(now)
  docker rmi smload/base:bench >/dev/null
  base_note="$(secs "$t0" "$t1") s"
fi
build() { docker build -q --network host --build-arg BASE_IMAGE=$base "$@" -t $image . >/dev/null; }
t0=$(now); build --no-cache; t1=$(now); build; t2=$(now)
cold=$(secs "$t0" "$t1"); warm=$(secs "$t1" "$t2")

size=$(docker image inspect -f '{{.Size}}' $image)
base_size=$(docker image inspect -f '{{.Size}}' $base)
added=$((size - base_size))
venv=$(docker history --no-trunc --human=false --format '{{.Size}} {{.CreatedBy}}' $image | grep -m1 ' /opt/smload/venv' | cut -d' ' -f1)
top=$(docker run --rm --network host --entrypoint sh $image -c 'cd /opt/smload/venv/lib/python3*/site-packages && du -sm -- */' |
  sort -rn | head -6 | python3 -c 'import sys; print(", ".join(d.rstrip(chr(47)) + f" {mb} MB" for mb, d in (l.split() for l in sys.stdin)))')

# Ready after `docker run`: the emulator answers /ping, the master's web UI answers.
ready() {  # ready NAME URL ARGS...: seconds from `docker run` until URL answers 200
  local name=$1 url=$2; shift 2
  local t0 c
  t0=$(now)
  c=$(docker run -d --label "$label" --network host --read-only --tmpfs /tmp -e AWS_ACCESS_KEY_ID=AKIDBENCH \
    -e AWS_SECRET_ACCESS_KEY=bench -e AWS_DEFAULT_REGION=us-east-1 $image "$@")
  until python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null; do
    [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ] || { docker logs "$c" >&2; echo "bench: $name exited" >&2; exit 1; }
    sleep 0.05
  done
  secs "$t0" "$(now)"
}
port=$(free_port)
emulator_ready=$(ready emulator "http://127.0.0.1:$port/ping" emulator --host 127.0.0.1 --port "$port")
web=$(free_port)
master_ready=$(ready master "http://127.0.0.1:$web/" --master --web-host 127.0.0.1 --web-port "$web" \
  --master-bind-host 127.0.0.1 --master-bind-port "$(free_port)" --metrics-host 127.0.0.1 --metrics-port "$(free_port)" \
  --endpoint-name ab-test --endpoint-url "http://127.0.0.1:$port" --payload /opt/smload/payloads/small.json)

cat <<EOF
| measure | value |
|---|---|
| image on the local base ($base), \`docker image inspect .Size\` | $(mb "$size") MB |
| the base alone | $(mb "$base_size") MB |
| what we add (image - base) | $(mb "$added") MB, of which the venv layer $(mb "$venv") MB |
| largest packages in the venv | $top |
| expected on python:3.12-slim (${slim_mb} MB + what we add) | $((slim_mb + added / 1000000)) MB (budget $budget_mb MB) |
| base image build (debootstrap from Debian's archive) | $base_note |
| image build, cold (--no-cache, PyPI downloads included) | $cold s |
| image build, warm (nothing changed) | $warm s |
| \`docker run\` -> emulator answers /ping | $emulator_ready s |
| \`docker run\` -> master's web UI answers | $master_ready s |
EOF

if [ $((slim_mb + added / 1000000)) -gt "$budget_mb" ]; then
  echo "bench: over budget: $((slim_mb + added / 1000000)) MB expected on python:3.12-slim > $budget_mb MB" >&2
  exit 1
fi
