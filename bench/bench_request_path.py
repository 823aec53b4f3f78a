#!/usr/bin/env python3
"""The load generator's request path without the network, in one process: ``SageMakerClient.invoke``
of the ``fast`` client with a transport that answers at once (status 200, variant ``v``), the request
event with Locust's own stats listener (a local runner's) and ours; microseconds per request, best of
7 runs of 200,000 requests, pinned to core 0. What the client and the measurements add to each
request beyond the HTTP exchange, steadier than req per CPU-second on a shared machine.

``--tree PATH`` runs it in another checkout (with its own .venv): this layout, or the one before
issue 10 (``smload.client`` and ``smload.exporter.latency``, e.g. 0dcd5de), side by side:

    flock /tmp/smload-bench.lock .venv/bin/python bench/bench_request_path.py --tree ../base --runs 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

MEASURE = r"""
import time
from locust.env import Environment
try:  # the restructured package (issue 10)
    from smload.invoke.client import SageMakerClient
    from smload.invoke.options import Settings
    from smload.invoke.payloads import Payload, PayloadPicker
    from smload.invoke.transport import Outcome
    from smload.measure.drain import InFlight
    from smload.measure.store import Measurements
    before_issue_10 = False
except ImportError:  # the package before it
    from smload.client import SageMakerClient
    from smload.options import Settings
    from smload.payloads import Payload, PayloadPicker
    from smload.transport import Outcome
    from smload.exporter.latency import LatencyPlumbing
    before_issue_10 = True

env = Environment(user_classes=[], events=None)
env.create_local_runner()  # Locust's own request listener (its stats)
payload = Payload.of(b'{"inputs": [1]}', "application/json")
fields = dict(endpoint_name="bench", region="us-east-1", endpoint_url="http://127.0.0.1:9", scheme="http",
              host="127.0.0.1", port=9, path_prefix="", payloads=(payload,), payload_order="random",
              payload_seed=None, content_type=None, request_timeout=60.0, connect_timeout=5.0, client="fast",
              role_arn=None, stream=False)
if before_issue_10:
    fields.update(accept=None, custom_attributes=None, target_variant=None, target_model=None,
                  target_container_hostname=None, inference_component=None)
    env.events.request.add_listener(LatencyPlumbing(env).on_request)
else:
    env.events.request.add_listener(Measurements(sends=False, aggregates=False).on_request)
settings = Settings(**fields)
outcome = Outcome(200, "v", b"{}", 38, None, "", 1.5)


class Answer:  # the transport: answers at once
    def invoke(self, settings, payload):
        return outcome


class User:
    environment = env

    def context(self):
        return {}


class Runtime:  # what SageMakerClient takes from a Runtime, without credentials or connections
    settings = settings
    picker = PayloadPicker([payload], "random", None)
    gate = None if before_issue_10 else InFlight()
    pacer = None  # closed loop

    def transport(self):
        return Answer()


client = SageMakerClient(Runtime(), User())
best = float("inf")
for _ in range(7):
    start = time.process_time()
    for _ in range(200_000):
        client.invoke()
    best = min(best, time.process_time() - start)
print(f"{best / 200_000 * 1e6:.3f}")
"""


def measure(tree: Path) -> float:
    out = subprocess.run(
        ["taskset", "-c", "0", str(tree / ".venv" / "bin" / "python"), "-c", MEASURE],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tree,
    )
    if out.returncode != 0:
        sys.exit(f"bench_request_path: {tree}: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree", type=Path, help="another checkout (with its .venv), measured in turn with this one"
    )
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (default 3)")
    args = parser.parse_args()
    trees = {"this": HERE} | ({"other": args.tree.resolve()} if args.tree else {})
    results: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, tree in trees.items():
            results[name].append(measure(tree))
    print("| checkout | µs per request (each run) | best |")
    print("|---|---|---|")
    for name, tree in trees.items():
        print(
            f"| {name} ({tree.name}) | {', '.join(f'{v:.2f}' for v in results[name])} | {min(results[name]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
