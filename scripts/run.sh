#!/usr/bin/env bash
# `make run`: the demo. Starts the emulator with the A/B example on 127.0.0.1:8080, runs Locust
# headless (a master and 2 worker processes) for 30 s with the bundled example payloads, prints the
# summary per variant and where the HTML report is, stops the emulator, exits with Locust's code.
# Needs no AWS account: against the emulator it signs with obviously dummy credentials.
#
#   SAGEMAKER_ENDPOINT_NAME=my-endpoint [AWS_REGION=eu-west-1] [PAYLOAD=my/payloads] make run
# targets a real endpoint instead, with your own credentials (the botocore chain) and no emulator.
# Other knobs: USERS (10), RUN_TIME (30s), PAYLOAD (locust/payloads), EMULATOR_PORT (8080),
# METRICS_PORT (9646, 0 for none), REPORT_DIR (reports). Anything after `--` in ARGS goes to Locust: ARGS="--client boto3" make run.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
USERS=${USERS:-10}
RUN_TIME=${RUN_TIME:-30s}
PAYLOAD=${PAYLOAD:-locust/payloads}
REPORT_DIR=${REPORT_DIR:-reports}
EMULATOR_PORT=${EMULATOR_PORT:-8080}
METRICS_PORT=${METRICS_PORT:-${LOCUST_METRICS_PORT:-9646}}  # the Prometheus exporter's /metrics (0: off)

free_port() { "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir -p "$REPORT_DIR"
report="$REPORT_DIR/run-$(date +%Y%m%d-%H%M%S).html"
master_port=$(free_port)  # the forked workers find their master here; 5557 may belong to someone else
args=(--headless --processes 2 --master-bind-host 127.0.0.1 --master-bind-port "$master_port"
      --master-port "$master_port" -u "$USERS" -r "$USERS" -t "$RUN_TIME" --stop-timeout 10
      --payload "$PAYLOAD" --html "$report" --only-summary --metrics-port "$METRICS_PORT"
      --exit-code-on-error 0)  # injected ModelErrors are part of the demo, not a failed run

if [ -n "${SAGEMAKER_ENDPOINT_NAME:-}" ]; then
  echo "run: load-testing the real endpoint $SAGEMAKER_ENDPOINT_NAME (region ${AWS_REGION:-${AWS_DEFAULT_REGION:-from your AWS config}}) for $RUN_TIME with $USERS users"
  args+=(--endpoint-name "$SAGEMAKER_ENDPOINT_NAME")
else
  emulator_url="http://127.0.0.1:$EMULATOR_PORT"
  if "$BIN/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/ping', timeout=1)" "$emulator_url" 2>/dev/null; then
    echo "run: something already answers on $emulator_url: stop it or set EMULATOR_PORT" >&2
    exit 1
  fi
  "$BIN/smload" emulator --config emulator/examples/ab-test.yaml --host 127.0.0.1 --port "$EMULATOR_PORT" &
  emulator_pid=$!
  trap 'kill "$emulator_pid" 2>/dev/null; wait "$emulator_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    "$BIN/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/ping', timeout=1)" "$emulator_url" 2>/dev/null && break
    kill -0 "$emulator_pid" 2>/dev/null || { echo "run: the emulator did not start" >&2; exit 1; }
    sleep 0.1
  done
  # the emulator accepts any well-formed signature: sign with keys that are obviously not real ones
  export AWS_ACCESS_KEY_ID=AKIDSMLOADEMULATOR00 AWS_SECRET_ACCESS_KEY=smload-emulator-dummy-secret
  unset AWS_SESSION_TOKEN AWS_PROFILE
  args+=(--endpoint-name ab-test --endpoint-url "$emulator_url" --region us-east-1)
fi

set +e
# shellcheck disable=SC2086 # ARGS is split on purpose
"$BIN/smload" run "${args[@]}" ${ARGS:-}
code=$?
set -e
echo "run: Locust exited with $code; HTML report: $report"
exit $code
