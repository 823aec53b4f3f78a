"""A queueing model of an endpoint under closed-loop users, to drive the calibration search
without processes (unit tests, report rendering)."""

import math

from smload.calibration.search import Traffic, Window
from smload.measure.histogram import Histogram
from smload.record import Identity


class ClosedLoopEndpoint:
    """Users with no wait time against ``slots`` parallel servers of ``service_ms`` each, plus a client
    overhead: throughput = min(users / (service + overhead), slots / service); Little's law gives the
    latency. Optionally a throughput that keeps growing past the knee (GPU batching)."""

    def __init__(
        self,
        slots=8,
        service_ms=25.0,
        overhead_ms=0.0,
        overhead_per_user_ms=0.0,
        error_rate=0.0,
        batching_gain=0.0,
        endpoint="ep",
        variants=(("AllTraffic", 1.0),),
        cpu=lambda users: 10.0,
        lag=lambda users: 0.7,
    ):
        self.slots, self.service_ms, self.overhead_ms = slots, service_ms, overhead_ms
        self.overhead_per_user_ms = overhead_per_user_ms  # a client whose own cost grows with concurrency
        self.error_rate, self.batching_gain = error_rate, batching_gain
        self.endpoint, self.variants, self.cpu, self.lag = endpoint, variants, cpu, lag
        self.clock = 0.0

    def capacity(self, users):
        base = self.slots / self.service_ms * 1000
        return base * (1 + self.batching_gain * math.log2(max(1.0, users / self.slots)))

    def measure(self, users, seconds=10.0):
        client_ms = self.overhead_ms + self.overhead_per_user_ms * users
        rps = min(users / (self.service_ms + client_ms) * 1000, self.capacity(users))
        latency_ms = users / rps * 1000
        started, self.clock = self.clock, self.clock + seconds + 5
        names = {}
        for variant, share in self.variants:
            requests = round(rps * share * seconds)
            names[Identity.of("InvokeEndpoint", self.endpoint, variant)] = traffic(
                requests, round(requests * self.error_rate), rps * share, latency_ms
            )
        total = Traffic()
        for t in names.values():
            total.add(t)
        return Window(
            users,
            started,
            started + 5,
            started + 5 + seconds,
            total,
            names,
            {"ModelError(500)": total.failures} if total.failures else {},
            self.cpu(users),
            self.lag(users),
        )


def traffic(requests, failures, rps, latency_ms):
    h = Histogram()
    for i in range(requests):
        h.record(latency_ms * (0.9 + 0.2 * i / max(1, requests - 1)))  # a narrow spread around the mean
    return Traffic(requests, failures, rps, h)


def run(search, endpoint):
    while (users := search.next_users()) is not None:
        search.record(endpoint.measure(users))
    return search
