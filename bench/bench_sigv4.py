"""Micro-benchmark of the fast client's signer: microseconds per ``Signer.sign()`` call, the way
FastTransport calls it (InvokeEndpoint, a target-variant header, JSON bodies), in three cases:

* ``new body``: a body not signed before in this second (the whole work: canonical request,
  SHA-256, HMAC, head), long-term credentials;
* ``new body + token``: the same with temporary credentials (a session token);
* ``same body``: a body signed earlier in the same second (the memoized head).

Best of ``--repeat`` runs of ``--calls`` calls each, on one core (``taskset -c 0``, niced as root):

    flock /tmp/smload-bench.lock taskset -c 0 .venv/bin/python bench/bench_sigv4.py
"""

from __future__ import annotations

import argparse
import hashlib
import time

from smload.invoke.sigv4 import Signer

NOW = 1_772_409_599.0  # a fixed second: the memo of signed heads is per second
KEY, SECRET, TOKEN = (
    "AKIDBENCHMARK0000000",
    "bench/secret/key/000000000000000000000000",
    "FwoGZXIvYXdz" + "T" * 300,
)


def signer() -> Signer:
    return Signer(
        "us-east-1",
        "POST",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "/endpoints/bench/invocations",
        [("X-Amzn-SageMaker-Target-Variant", "v1")],
        user_agent="sagemaker-loadtest/bench",
    )


def per_call_us(calls: int, token: str | None, same_body: bool) -> float:
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1 if same_body else calls)]
    s = signer()
    s.sign(KEY, SECRET, token, "application/json", hashes[0], 100, now=NOW)  # templates and key built
    sign = s.sign
    start = time.perf_counter()
    if same_body:
        digest = hashes[0]
        for _ in range(calls):
            sign(KEY, SECRET, token, "application/json", digest, 100, now=NOW)
    else:
        for digest in hashes:
            sign(KEY, SECRET, token, "application/json", digest, 100, now=NOW)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print("| case | µs per sign() (best of runs) |")
    print("|---|---|")
    for name, token, same in [
        ("new body", None, False),
        ("new body + token", TOKEN, False),
        ("same body", None, True),
    ]:
        best = min(per_call_us(args.calls, token, same) for _ in range(args.repeat))
        print(f"| {name} | {best:.2f} |")


if __name__ == "__main__":
    main()
