"""A well-behaved client next to an abusive one (tests only): ``probe.py PORT ENDPOINT`` or
``probe.py PORT GET /PATH``.

Invokes ``POST /endpoints/ENDPOINT/invocations`` (a well-formed, unverified signature), or GETs
``/PATH`` (any 200 answer is right), on one keep-alive connection every 5 ms until its standard
input closes, then prints one line per request:
``STATUS SECONDS STARTED`` (status -1: the body was not the echo; STARTED: time.monotonic(), the
system's monotonic clock, which the caller shares). Its own process, so that the test's work
(generating and sending the abuse) cannot delay it: what it measures is the server.
"""

import http.client
import sys
import threading
import time

AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=00"
)


def main(port: int, endpoint: str, path: str | None = None) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    results = []
    deadline = time.monotonic() + 600  # bounded, whatever the caller does
    while not stop.is_set() and time.monotonic() < deadline:
        started, monotonic = time.perf_counter(), time.monotonic()
        if path is None:
            conn.request(
                "POST", f"/endpoints/{endpoint}/invocations", b"probe", {"Authorization": AUTHORIZATION}
            )
        else:
            conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        ok = body == b"probe" if path is None else response.status == 200
        results.append((response.status if ok else -1, time.perf_counter() - started, monotonic))
        stop.wait(0.005)
    conn.close()
    sys.stdout.write("".join(f"{status} {seconds:.6f} {at:.6f}\n" for status, seconds, at in results))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], *sys.argv[3:4])
