"""The peer of bench_open_loop.py's "peers" section: locust-plugins' ``constant_total_ips`` pacing
Locust users (closed loop) to ``$PEER_IPS`` in total, each POSTing to the emulator's container route
(``/invocations``). Runs in its own venv (bench/.peers). Its schedule lag - when a user actually
starts a task minus when ``constant_total_ips`` said it should (the call plus the delay it returned) -
is written to ``$SMLOAD_BENCH_RECORD_DIR/<pid>.lag`` (ms, one a line) at the end."""

import os
import time

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser
from locust_plugins.wait_time import constant_total_ips

_PACE = constant_total_ips(float(os.environ["PEER_IPS"]))
_LAGS: list[float] = []


class Paced(FastHttpUser):
    intended = None

    def wait_time(self):
        delay = _PACE(self)
        self.intended = time.time() + delay
        return delay

    @task
    def invoke(self):
        if self.intended is not None:
            _LAGS.append((time.time() - self.intended) * 1000)
        self.client.post(
            "/invocations", data=b'{"inputs": [1, 2, 3]}', headers={"Content-Type": "application/json"}
        )


@events.test_stop.add_listener
def _flush(**_kwargs):
    directory = os.environ.get("SMLOAD_BENCH_RECORD_DIR")
    if directory and _LAGS:
        with open(os.path.join(directory, f"{os.getpid()}.lag"), "a") as out:
            out.write("\n".join(f"{x:.4f}" for x in _LAGS) + "\n")
