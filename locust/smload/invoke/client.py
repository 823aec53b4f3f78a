"""``self.client`` of a :class:`~smload.invoke.user.SageMakerUser`, and the per-process state it shares.

:class:`Runtime` is built once per test in each process that runs users (a worker, or the local
runner) by the TestRun, from the settings it checked and the credentials it resolved, and kept on
the Environment (:func:`attach_runtime`): the payload picker, the gate of requests in flight,
for ``--client boto3`` the shared boto3 client, and in open-loop mode the *pacer* that hands the
users their arrivals (:mod:`smload.load.open_loop`; duck-typed here: ``wait()`` blocks until the
next arrival and returns its intended start). :class:`SageMakerClient` turns each invocation into
one Locust ``request`` event named ``<endpoint>/<variant>`` with a closed-set error type, and hands
the measurements a :class:`~smload.record.Record` (its identity, the time to the first part of a
stream) in the event's context. It counts itself in and out of the gate of requests in flight
(``Runtime.gate``, :class:`smload.measure.drain.InFlight` as the TestRun hands it over): a request
that a test's end abandoned, or whose timeout the generator's own stall caused, is not reported.
In open loop, the headline response time and the time to the first part run from the arrival's
intended start; the service time (from the send) and the schedule lag (send - intended start) are
kinds of their own.
"""

from __future__ import annotations

import time
from typing import Any

from locust.exception import StopUser

from smload.errors import TIMEOUT, RequestFailure
from smload.record import PARTS, PER_PART, RECORD, SCHEDULE_LAG, SERVICE, TTFB, TTFT, Identity, Record

from . import llm as llm_requests
from .bearer import TokenSource
from .llm import OPENAI_API
from .llm_transport import LLMBoto3Transport, LLMFastTransport
from .options import Settings
from .payloads import Payload, PayloadPicker
from .transport import Boto3Transport, FastTransport, Outcome

_ATTRIBUTE = "smload_runtime"  # where an Environment keeps the current test's Runtime
_RECORDS_MAX = 4096  # records kept per client (see SageMakerClient._record)


class Runtime:
    """What the users of one process share during one test. ``gate`` counts the requests in flight
    and says when no new one may start (a test that is ending: ``smload.measure.drain``)."""

    def __init__(
        self,
        settings: Settings,
        credentials: Any,
        session: Any,
        gate: Any,
        worker_index: int = 0,
        max_users: int = 1,
        pacer: Any = None,
    ):
        self.settings = settings
        self.pacer = pacer  # open loop: what the users wait on for their arrivals (None: closed loop)
        self.credentials = credentials
        self.gate = gate
        self.picker = PayloadPicker(
            list(settings.payloads), settings.payload_order, settings.payload_seed, stream=worker_index
        )
        self.ca_bundle = session.get_config_variable("ca_bundle")
        self._shared = None
        llm = settings.llm
        self.bearer = TokenSource(credentials, settings.region) if llm and llm.api == OPENAI_API else None
        if settings.client == "boto3":
            client = Boto3Transport.create_client(session, settings, max_users)
            self._shared = (
                LLMBoto3Transport(client, llm.counter is not None) if llm else Boto3Transport(client)
            )

    def transport(self) -> FastTransport | Boto3Transport:
        if self._shared:
            return self._shared
        if self.settings.llm is not None:
            return LLMFastTransport(self.settings, self.credentials, self.ca_bundle, self.bearer)
        return FastTransport(self.settings, self.credentials, self.ca_bundle)


def attach_runtime(environment: Any, runtime: Runtime | None) -> None:
    """The current test's Runtime of this process; None when its options were refused."""
    setattr(environment, _ATTRIBUTE, runtime)


def runtime_of(environment: Any) -> Runtime | None:
    return getattr(environment, _ATTRIBUTE, None)


class SageMakerClient:
    """Invokes the endpoint and reports each invocation to Locust."""

    def __init__(self, runtime: Runtime, user: Any):
        self.settings = runtime.settings
        self._transport = runtime.transport()
        self._next_payload = runtime.picker.next
        self._gate = runtime.gate
        self._pacer = runtime.pacer
        self._fire = user.environment.events.request.fire
        self._user = user
        self._overridden: dict[tuple, Settings] = {}
        self._records: dict[tuple[int, str | None, str | None], Record] = {}

    def close(self) -> None:
        self._transport.close()

    def invoke(
        self,
        body: bytes | str | None = None,
        *,
        content_type: str | None = None,
        name: str | None = None,
        **overrides: Any,
    ) -> Outcome:
        """Send one invocation and report it; returns its :class:`~smload.invoke.transport.Outcome`.

        ``body`` defaults to the next ``--payload`` body; ``content_type`` to ``--content-type``,
        else ``application/json``. Keyword overrides for this call, checked like the options: every
        SageMaker header option by its name (``target_variant``, ``custom_attributes``, ``accept``,
        ``target_model``, ``target_container_hostname``, ``inference_component``, ``inference_id``,
        ``enable_explanations``, ``session_id``), ``endpoint_name`` and ``stream``. ``name``
        replaces the ``<endpoint>/<variant>`` name of the Locust entry.
        """
        settings = self.settings if not overrides else self._with(overrides)
        if body is None:
            payload = self._next_payload()
        else:
            payload = Payload.of(body, content_type or settings.content_type or "application/json")
        gate = self._gate
        intended = getattr(self._user, "intended_start", None)  # open loop: the first request of an arrival
        if intended is not None:
            self._user.intended_start = None
        if gate.draining:  # the test is ending: finish, do not start
            if intended is not None:
                self._pacer.forfeit()
            raise StopUser()
        gate.count += 1
        generation = gate.generation
        start_time = time.time()
        try:
            outcome = self._transport.invoke(settings, payload)
        finally:
            if gate.generation == generation:  # else a drain gave up on it: abandoned, counted there
                gate.count -= 1
        if gate.generation != generation:
            return outcome
        if outcome.error == TIMEOUT and gate.stalled_during(start_time, time.time()):
            # this process stood still: the timeout is the generator's, not the endpoint's
            gate.abandoned += 1
            return outcome
        self._report(settings, outcome, start_time, name, payload, intended)
        return outcome

    def _with(self, overrides: dict[str, Any]) -> Settings:
        key = tuple(sorted(overrides.items()))
        settings = self._overridden.get(key)
        if settings is None:
            settings = self._overridden[key] = self.settings.overridden(**overrides)
        return settings

    def _record(self, settings: Settings, variant: str | None, name: str | None) -> Record:
        """The Record of an answer without further timings, built once per (settings, variant that answered,
        custom name): the settings' header lookups and a new Identity were most of what the restructured
        request path added per request (bench/RESULTS.md). ``settings`` is ``self.settings`` or one of
        ``self._overridden``, alive as long as this client, so its id() stays its own."""
        key = (id(settings), variant, name)
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= _RECORDS_MAX:  # a custom locustfile that names every request anew
                self._records.clear()
            target = settings.inference_component or variant or settings.target_variant
            record = self._records[key] = Record(
                Identity.of(settings.api, settings.endpoint_name, target, name)
            )
        return record

    def _report(
        self,
        settings: Settings,
        outcome: Outcome,
        start_time: float,
        name: str | None,
        payload: Payload,
        intended: float | None,
    ) -> None:
        record = self._record(settings, outcome.variant, name)
        identity = record.identity
        timings: tuple[tuple[str, float], ...] = ()
        counts: tuple[tuple[str, int], ...] = ()
        response_time = outcome.response_time
        lag_ms = 0.0
        if intended is not None:  # open loop: charge the generator's own delay to the latency
            lag_ms = max(0.0, (start_time - intended) * 1000.0)
            timings = ((SERVICE, response_time), (SCHEDULE_LAG, lag_ms))
            response_time += lag_ms
            start_time = min(start_time, intended)
        if outcome.first_part_ms is not None:
            timings += ((TTFB, outcome.first_part_ms + lag_ms),)
            if outcome.parts > 1:
                timings += (
                    (PER_PART, (outcome.response_time - outcome.first_part_ms) / (outcome.parts - 1)),
                )
            counts = ((PARTS, outcome.parts),)
        if outcome.tokens is not None and settings.llm is not None:
            more_timings, more_counts = llm_requests.measured(
                settings.llm,
                outcome.tokens,
                payload,
                outcome.start,
                outcome.response_time,
                outcome.error is None,
            )
            if (
                lag_ms
            ):  # the time to the first token runs from the intended start too (goodput: from the send)
                more_timings = tuple((kind, ms + lag_ms if kind == TTFT else ms) for kind, ms in more_timings)
            timings += more_timings
            counts += more_counts
        if timings or counts:
            record = Record(identity, timings, counts)
        context = self._user.context()
        self._fire(
            request_type=identity.api,
            name=identity.name,
            response_time=response_time,
            response_length=outcome.length,
            exception=RequestFailure(outcome.error, outcome.detail) if outcome.error else None,
            context={**context, RECORD: record} if context else {RECORD: record},
            start_time=start_time,
        )


class RefusingClient:
    """The client of a user whose process has no valid options (already reported): the first
    invocation stops the user, so that nothing is sent."""

    settings = None

    def invoke(self, *args: Any, **kwargs: Any) -> Outcome:
        raise StopUser()

    def close(self) -> None:
        pass
