"""The open-loop options, declared once (:mod:`smload.flags`): offer an arrival rate instead of a
number of users. Web UI form fields too (a test started there runs open loop when a rate is given).

With ``--arrival-rate`` (or ``--rate-profile``) every Locust user is an idle *executor* that waits
for the scheduler to hand it an arrival, and ``--max-in-flight`` is how many executors there are in
total (``-u`` is ignored): an arrival that finds none idle is dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from smload import flags
from smload.usage import UsageError

from . import arrivals, profile

DEFAULT_MAX_IN_FLIGHT = 1000
KEY = "arrivals"


@dataclass(frozen=True)
class OpenLoop:
    rate: float | None  # --arrival-rate: the total, over all workers
    process: arrivals.Process
    max_in_flight: int
    profile: profile.Profile | None
    profile_path: str | None
    seed: int | None

    @property
    def enabled(self) -> bool:
        return self.rate is not None or self.profile is not None

    def rate_at(self, t: float) -> float | None:
        """The total rate ``t`` seconds into the test (None: the profile has ended)."""
        return self.profile.rate(t) if self.profile is not None else self.rate


def _process(value: object) -> arrivals.Process:
    return arrivals.parse(str(value))


def _profile(value: object) -> str:
    return str(value)


OPTIONS = (
    flags.Option(
        "--arrival-rate",
        "open loop: offer this many requests per second in total, over all workers, "
        "whatever the endpoint's latency; latency runs from each request's intended start",
        flags.number(0.001, 10_000_000, unit="requests per second"),
        metavar="R",
    ),
    flags.Option(
        "--arrival",
        f"open loop: the arrival process, {arrivals.EXAMPLES}",
        _process,
        default=arrivals.POISSON,
        metavar="PROCESS",
    ),
    flags.Option(
        "--max-in-flight",
        "open loop: at most this many requests in flight in total (the executors); "
        "an arrival that finds them all busy is dropped and counted",
        flags.number(1, 1_000_000, integer=True),
        default=DEFAULT_MAX_IN_FLIGHT,
        metavar="N",
    ),
    flags.Option(
        "--rate-profile",
        "open loop: the total rate over time from a YAML/JSON file (stages with step "
        "or linear ramps, or a per-minute series with a time scale); the test ends with it",
        _profile,
        metavar="FILE",
    ),
    flags.Option(
        "--arrival-seed",
        "open loop: seed of the arrival process (each worker derives its own stream)",
        flags.number(integer=True),
        metavar="N",
    ),
)


def build(values: flags.Values) -> OpenLoop:
    path = values["rate_profile"]
    loaded = None
    if path:
        if values["arrival_rate"] is not None:
            raise UsageError("--rate-profile", "give either --arrival-rate or --rate-profile, not both")
        try:
            loaded = profile.load(path)
        except ValueError as err:
            raise UsageError("--rate-profile", str(err)) from None
    process = values["arrival"]
    if not isinstance(process, arrivals.Process):
        process = arrivals.parse(process)
    return OpenLoop(
        values["arrival_rate"], process, values["max_in_flight"], loaded, path, values["arrival_seed"]
    )


GROUP = flags.register(
    flags.Group(
        KEY,
        "Open loop (arrival rate)",
        "Offer requests at a rate instead of a number of users (sagemaker-loadtest; docs/open-loop.md). "
        "Each option is also a LOCUST_* variable.",
        OPTIONS,
        build,
        rank=20,
    )
)
