"""Open loop on the master (or a local runner): a Locust load shape that keeps the executor pool
(``--max-in-flight`` users, spread over the workers by Locust) and says, once a second, what the
total arrival rate is now. The TestRun splits that rate over the workers (:func:`.open_loop.split`)
and sends each its share; Locust itself re-spreads the executors when a worker joins or leaves.

A custom profile is a Python class in the locustfile::

    from smload import RateShape

    class Diurnal(RateShape):
        def rate(self, run_time):            # seconds since the test started
            if run_time > 600:
                return None                  # the end of the test
            return 200 + 150 * math.sin(run_time / 600 * math.pi)

``--arrival-rate`` and ``--rate-profile`` use the same class with a rate from the options. Locust
ignores ``--run-time`` while a shape runs, so the shape honours it: the test ends at the first tick
past it (ticks are a second apart).
"""

from __future__ import annotations

from collections.abc import Callable

from locust import LoadTestShape

from .options import OpenLoop


class RateShape(LoadTestShape):
    """Subclass it and define :meth:`rate`; ``--max-in-flight`` still sets the executor pool."""

    abstract = True
    executors = 0  # the pool (users); set from --max-in-flight when the test is set up
    on_rate: Callable[[float], None] | None = None  # the TestRun's: split and send (set at init)

    def rate(self, run_time: float) -> float | None:
        """The total arrival rate (req/s) ``run_time`` seconds into the test; None ends it."""
        raise NotImplementedError

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        options = getattr(getattr(getattr(self, "runner", None), "environment", None), "parsed_options", None)
        limit = getattr(options, "run_time", None)
        rate = None if limit and run_time >= limit else self.rate(run_time)
        if rate is None:
            return None
        if self.on_rate is not None:
            self.on_rate(max(0.0, float(rate)))
        return self.executors, float(self.executors)  # the whole pool at once


class OptionsShape(RateShape):
    """The rate of ``--arrival-rate`` (constant) or ``--rate-profile``."""

    abstract = False
    use_common_options = False  # the web UI's user count means nothing here: --max-in-flight is the pool

    def __init__(self, settings: OpenLoop):
        super().__init__()
        self.settings = settings

    def rate(self, run_time: float) -> float | None:
        return self.settings.rate_at(run_time)
