#!/usr/bin/env bash
# The import contracts of pyproject.toml, checked on the package as a wheel installs it: in a checkout
# smload.emulator and smload.exporter live in their own top-level folders (package-dir), which
# import-linter cannot see through an editable install. About 3 s.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN/pip" wheel --quiet --no-deps --wheel-dir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
"$BIN/pip" install --quiet --no-deps --target "$work/site" "$work"/dist/*.whl
config=$(pwd)/pyproject.toml
cd "$work" && PYTHONPATH="$work/site" "$OLDPWD/$BIN/lint-imports" --no-cache "$config"
