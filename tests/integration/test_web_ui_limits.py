"""The web UI's form can choose only among what the operator allowed at start-up (hardening item 1):
a form that would have the workers send a readable file to a host of its choosing is refused, and
nothing reaches that host; a refused form changes nothing for the next start."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse

from testkit.support import (
    answers,
    distributed_args,
    free_port,
    http_get,
    http_post,
    locust_cmd,
    start_emulator,
    wait_until,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Listener:
    """An attacker's host on 127.0.0.1: records every connection it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_the_form_cannot_send_a_file_elsewhere_and_a_refused_form_changes_nothing(procs, tmp_path):
    emulator = start_emulator(
        procs,
        "--endpoint",
        "ep",
        "--variant",
        "name=v,latency_ms=5",
        "--endpoint",
        "other-ep",
        "--variant",
        "name=v,latency_ms=5",
    )
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    (payloads / "body.json").write_text('{"inputs": [1]}')
    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = not-for-anyone\n")
    listener = Listener()
    web = free_port()
    master = procs.start(
        "locust",
        locust_cmd(
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web),
            "--endpoint-name",
            "ep",
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--payload",
            str(payloads),
            *distributed_args(1),
        ),
    )
    base = f"http://127.0.0.1:{web}"
    wait_until(lambda: master.alive() and answers(f"{base}/"), 30, "the web UI")
    wait_until(
        lambda: json.loads(http_get(f"{base}/stats/requests")[1])["worker_count"] == 1, 30, "the worker"
    )

    def swarm(**fields) -> dict:
        form = urllib.parse.urlencode({"user_count": 2, "spawn_rate": 2, **fields}).encode()
        return json.loads(http_post(f"{base}/swarm", form, FORM)[1])

    exfiltrate = swarm(payload=str(secret), endpoint_url=listener.url)
    assert exfiltrate["success"] is False and exfiltrate["message"].startswith(
        "--payload: the web UI can only choose"
    )
    elsewhere = swarm(endpoint_url=listener.url)
    assert elsewhere["success"] is False and elsewhere["message"].startswith(
        "--endpoint-url: the web UI keeps"
    )
    half = swarm(endpoint_name="other-ep", user_count="abc")  # Locust would apply the name, then fail
    assert half["success"] is False and half["message"].startswith("user_count:")
    assert json.loads(http_get(f"{base}/stats/requests")[1])["state"] == "ready"  # nothing started

    assert swarm()["success"] is True  # the start-up settings, untouched by the refused forms
    wait_until(lambda: emulator.stats()["requests"] >= 20, 30, "requests")
    endpoints = emulator.stats()["endpoints"]
    assert endpoints["ep"]["requests"] >= 20 and endpoints.get("other-ep", {}).get("requests", 0) == 0
    assert listener.connections == 0
