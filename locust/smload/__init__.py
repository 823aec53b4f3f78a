"""sagemaker-loadtest: load testing and capacity calibration for SageMaker endpoints, on Locust.

Grouped by job (docs/architecture.md): ``invoke`` (options, payloads, AWS, SigV4, transports, the
client and ``SageMakerUser``), ``load`` (open-loop arrivals, rate profiles, ``RateShape``), ``measure`` (everything recorded per request), ``run`` (the TestRun,
the Locust hooks, the end of a test), ``results`` (checks and report files), ``calibration``,
``k8s``; the emulator is ``smload.emulator``, the Prometheus exporter ``smload.exporter``."""

from .version import VERSION as __version__  # noqa: F401


def __getattr__(name: str):
    # PEP 562: ``from smload import SageMakerUser`` imports Locust (and so gevent's monkey patching)
    # only when asked for; the emulator imports smload.* without ever touching Locust.
    if name == "SageMakerUser":
        from .invoke.user import SageMakerUser
        from .run import hooks  # noqa: F401 - the plugin: options, checks, measurements, the end of a test

        return SageMakerUser
    if name == "RateShape":
        from .load.shape import RateShape
        from .run import hooks  # noqa: F401

        return RateShape
    raise AttributeError(f"module 'smload' has no attribute {name!r}")
