"""Issue 16's fuzz acceptance, the master's part: malformed and abusive HTTP (hypothesis) against a real
Locust master's two servers, the exporter's ``/metrics`` and the web UI's ``/smload/checks`` route,
then a flood of 200,000 requests split between them; all the while a well-behaved client (its own
process) on each server. It must hold:

- no traceback in the master's output, and it stays up;
- every well-formed request of the other clients is answered 200: 99.9% within 100 ms, all within 500 ms;
- the budget: the master's RSS at most 24 MiB above what it had after its first 2,000 requests,
  after the flood and after a reset of Locust's stats (web UI ``/stats/reset``).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.rawhttp import Probe
from testkit.support import answers, free_port, http_get, locust_cmd, rss, start_emulator, wait_until

RSS_BUDGET = 24 * 1024 * 1024
FLOOD = 200_000
PROBE_LIMIT_S = 0.1  # p99.9 of the other clients' requests
PROBE_MAX_S = 0.5  # any one of them


PATHS = [
    b"/metrics",
    b"/",
    b"/smload/checks",
    b"/smload/checks?check=p95<1s",
    b"/smload/checks?check=%ff",
    b"/smload/checks?check=" + b"p" * 5000,
    b"/smload/checks?check=p95[" + b"a" * 300,
    b"/stats/requests",
    b"*",
    b"",
    b"/%00",
    b"/../../etc/passwd",
    b"http://x/metrics",
]
METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"get", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.1x", b""]
HEADERS = [
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Expect",
    b"Connection",
    b"Upgrade",
    b"Authorization",
    b"Cookie",
    b"Accept-Encoding",
]
VALUES = [
    b"chunked",
    b"100-continue",
    b"close",
    b"keep-alive",
    b"websocket",
    b"-1",
    b"0",
    b"5",
    b"9" * 30,
    b"",
    b"gzip",
    b"Basic YTpi",
]

value = st.sampled_from(VALUES) | st.binary(max_size=24) | st.integers(0, 70_000).map(lambda n: b"a" * n)
header = st.tuples(
    st.sampled_from(HEADERS) | st.binary(min_size=1, max_size=10), value, st.sampled_from([1, 1, 2, 150])
)
request = st.builds(
    lambda method, path, version, headers, body: (
        method
        + b" "
        + path
        + b" "
        + version
        + b"\r\n"
        + b"".join(b"%s: %s\r\n" % (n, v) * times for n, v, times in headers)
        + b"\r\n"
        + body
    ),
    st.sampled_from(METHODS) | st.binary(max_size=6),
    st.sampled_from(PATHS) | st.binary(max_size=20),
    st.sampled_from(VERSIONS),
    st.lists(header, max_size=6),
    st.binary(max_size=64) | st.sampled_from([b"0\r\n\r\n", b"zz\r\n", b"-1\r\n"]),
)
payload = st.lists(request, min_size=1, max_size=3).map(b"".join) | st.binary(min_size=1, max_size=200)


def send(port: int, data: bytes) -> None:
    """Send ``data``, half-close, read until the server closes (it must, within 15 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # it refused and closed before taking everything: allowed
            return
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass


def flood(port: int, paths: list[bytes], count: int, nice: bool = False) -> int:
    """``count`` cheap GETs, 100 pipelined at a time on one keep-alive connection; returns the answers.
    ``nice``: this thread yields the cores to the master (an attacker does not share its machine; here
    the flood, the master and the probes share two cores, and the probes would time the flooder)."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
    answered = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for start in range(0, count, 100):
            batch = b"".join(
                b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % paths[i % len(paths)]
                for i in range(start, min(start + 100, count))
            )
            sock.sendall(batch)
            seen, buf = 0, b""
            while seen < min(100, count - start):
                chunk = sock.recv(1 << 20)
                assert chunk, "the server closed a keep-alive connection"
                buf += chunk
                seen = buf.count(b"HTTP/1.1 ")
            answered += seen
    return answered


def test_malformed_and_abusive_http_leaves_the_master_serving(procs, tmp_path):
    emulator = start_emulator(procs, "--endpoint", "ep", "--variant", "name=v,latency_ms=5")
    payload_file = tmp_path / "body.json"
    payload_file.write_text('{"inputs": [1]}')
    web, metrics = free_port(), free_port()
    master = procs.start(
        "locust",
        locust_cmd(
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web),
            "--metrics-port",
            str(metrics),
            "--autostart",
            "-u",
            "1",
            "-r",
            "1",
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payload_file),
        ),
    )
    wait_until(
        lambda: (
            master.alive()
            and answers(f"http://127.0.0.1:{web}/")
            and answers(f"http://127.0.0.1:{metrics}/metrics")
        ),
        30,
        "the master's servers",
    )
    wait_until(lambda: emulator.stats()["requests"] > 20, 30, "some load")
    checks_path = "/smload/checks?" + urllib.parse.urlencode({"check": "p95<1s"})

    with Probe(metrics, "GET", "/metrics") as scraper, Probe(web, "GET", checks_path) as checker:
        flood(metrics, [b"/", b"/nope"], 1_000)
        flood(web, [b"/smload/checks?check=x", b"/smload/checks?check=p50<1ms"], 1_000)
        baseline = rss(master.pid)

        @settings(
            max_examples=400,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data=payload, to_web=st.booleans())
        def abuse(data: bytes, to_web: bool) -> None:
            send(web if to_web else metrics, data)

        abuse()
        results = [0, 0]
        threads = [
            threading.Thread(
                target=lambda: results.__setitem__(
                    0, flood(metrics, [b"/", b"/x", b"/metricsx"], FLOOD * 3 // 4, nice=True)
                )
            ),
            threading.Thread(
                target=lambda: results.__setitem__(
                    1,
                    flood(
                        web,
                        [b"/smload/checks?check=p95[" + str(i).encode() + b"]<1s" for i in range(50)],
                        FLOOD // 4,
                        nice=True,
                    ),
                )
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert sum(results) == FLOOD
        after_flood = rss(master.pid)
        http_get(f"http://127.0.0.1:{web}/stats/reset")
        after_reset = rss(master.pid)

    log = master.log()
    assert master.alive() and "Traceback" not in log, log[-3000:]
    for probe in (scraper, checker):
        assert probe.results and probe.statuses == {200}, probe.statuses
        times = sorted(seconds for _, seconds, _ in probe.results)
        p999, slowest = times[int(0.999 * (len(times) - 1))], times[-1]
        # Served within 100 ms: 99.9% of the ~14,000 probes (one every 5 ms); the very slowest, on two
        # cores shared with the flood, the workers and the emulator, once read 107 ms: a bound on it too.
        assert p999 < PROBE_LIMIT_S, f"p99.9 of well-formed requests {p999 * 1000:.0f} ms"
        assert slowest < PROBE_MAX_S, f"a well-formed request took {slowest * 1000:.0f} ms"
    assert after_flood - baseline < RSS_BUDGET, (baseline, after_flood)
    assert after_reset - baseline < RSS_BUDGET, (baseline, after_reset)
