"""``self.client`` of a :class:`~smload.user.SageMakerUser`, and the per-process state it shares.

:class:`Runtime` is built once per test in each process that runs users (a worker, or the local
runner), from checked options: settings, credentials, the payload picker and, for ``--client
boto3``, the shared boto3 client. :class:`SageMakerClient` turns each invocation into one Locust
``request`` event named ``<endpoint>/<variant>`` with a closed-set error type.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from locust.exception import StopUser

from . import aws
from .drain import in_flight
from .errors import RequestFailure
from .options import Settings, settings_from
from .payloads import Payload, PayloadPicker
from .transport import Boto3Transport, FastTransport, Outcome

TTFB_SUFFIX = " TTFB"  # stream entries: time to the first PayloadPart
PER_PART_SUFFIX = " per-part"  # stream entries: mean time between PayloadParts (1000/x = parts per second)
AUXILIARY_SUFFIXES = (TTFB_SUFFIX, PER_PART_SUFFIX)

# invoke() keyword -> Settings field, for per-call overrides in custom locustfiles
_OVERRIDES = ("endpoint_name", "accept", "custom_attributes", "target_variant", "target_model",
              "target_container_hostname", "inference_component", "stream")


def request_name(endpoint: str, variant: str) -> str:
    return f"{endpoint}/{variant}"


def is_invocation_entry(name: str) -> bool:
    """False for the extra stream entries (TTFB, per-part), which are not requests of their own."""
    return not name.endswith(AUXILIARY_SUFFIXES)


class Runtime:
    """What the users of one process share during one test."""

    def __init__(self, settings: Settings, credentials: Any, session: Any, worker_index: int = 0, max_users: int = 1):
        self.settings = settings
        self.credentials = credentials
        self.picker = PayloadPicker(list(settings.payloads), settings.payload_order, settings.payload_seed,
                                    stream=worker_index)
        self.ca_bundle = session.get_config_variable("ca_bundle")
        self._shared = None
        if settings.client == "boto3":
            self._shared = Boto3Transport(Boto3Transport.create_client(session, settings, max_users))

    @classmethod
    def from_options(cls, options: Any, worker_index: int = 0) -> Runtime:
        settings = settings_from(options)
        session = aws.session()
        credentials = aws.credentials(session, settings.region, settings.role_arn)
        return cls(settings, credentials, session, worker_index, int(getattr(options, "num_users", None) or 1))

    def transport(self) -> FastTransport | Boto3Transport:
        return self._shared or FastTransport(self.settings, self.credentials, self.ca_bundle)


class SageMakerClient:
    """Invokes the endpoint and reports each invocation to Locust."""

    def __init__(self, runtime: Runtime, user: Any):
        self.settings = runtime.settings
        self._transport = runtime.transport()
        self._next_payload = runtime.picker.next
        self._fire = user.environment.events.request.fire
        self._user = user
        self._variants: dict[tuple, Settings] = {}

    def close(self) -> None:
        self._transport.close()

    def invoke(self, body: bytes | str | None = None, *, content_type: str | None = None, name: str | None = None,
               **overrides: Any) -> Outcome:
        """Send one invocation and report it; returns its :class:`~smload.transport.Outcome`.

        ``body`` defaults to the next ``--payload`` body; ``content_type`` to ``--content-type``,
        else ``application/json``. Keyword overrides for this call: ``target_variant``,
        ``custom_attributes``, ``accept``, ``target_model``, ``target_container_hostname``,
        ``inference_component``, ``endpoint_name``, ``stream``. ``name`` replaces the
        ``<endpoint>/<variant>`` name of the Locust entry.
        """
        settings = self.settings if not overrides else self._with(overrides)
        if body is None:
            payload = self._next_payload()
        else:
            payload = Payload.of(body, content_type or settings.content_type or "application/json")
        if in_flight.draining:  # the test is ending: finish, do not start (smload.drain)
            raise StopUser()
        in_flight.count += 1
        try:
            start_time = time.time()
            outcome = self._transport.invoke(settings, payload)
            self._report(settings, outcome, start_time, name)
        finally:
            in_flight.count -= 1
        return outcome

    def _with(self, overrides: dict[str, Any]) -> Settings:
        key = tuple(sorted(overrides.items()))
        try:
            return self._variants[key]
        except KeyError:
            unknown = set(overrides) - set(_OVERRIDES)
            if unknown:
                raise TypeError(f"invoke() got unexpected keyword arguments {sorted(unknown)}") from None
            settings = self._variants[key] = dataclasses.replace(self.settings, **overrides)
            return settings

    def _report(self, settings: Settings, outcome: Outcome, start_time: float, name: str | None) -> None:
        if name is None:
            name = request_name(settings.endpoint_name, outcome.variant or settings.target_variant or "unknown")
        operation = settings.operation
        context = self._user.context()
        self._fire(
            request_type=operation,
            name=name,
            response_time=outcome.response_time,
            response_length=outcome.length,
            exception=RequestFailure(outcome.error, outcome.detail) if outcome.error else None,
            context=context,
            start_time=start_time,
        )
        if outcome.first_part_ms is not None:
            self._fire(request_type=operation, name=name + TTFB_SUFFIX, response_time=outcome.first_part_ms,
                       response_length=0, exception=None, context=context, start_time=start_time)
            if outcome.parts > 1:
                per_part = (outcome.response_time - outcome.first_part_ms) / (outcome.parts - 1)
                self._fire(request_type=operation, name=name + PER_PART_SUFFIX, response_time=per_part,
                           response_length=outcome.length // outcome.parts, exception=None, context=context,
                           start_time=start_time)


class RefusingClient:
    """The client of a user whose process has no valid options (already reported): the first
    invocation stops the user, so that nothing is sent."""

    settings = None

    def invoke(self, *args: Any, **kwargs: Any) -> Outcome:
        raise StopUser()

    def close(self) -> None:
        pass
