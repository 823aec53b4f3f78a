"""sagemaker-loadtest: the load-generation library (SageMaker client, User class, options, payloads,
shapes, checks, calibration, reports, CLI). The emulator is ``smload.emulator``, the exporter
``smload.exporter``."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # PEP 562: ``from smload import SageMakerUser`` imports Locust (and so gevent's monkey patching)
    # only when asked for; the emulator imports smload.* without ever touching Locust.
    if name == "SageMakerUser":
        from .user import SageMakerUser

        return SageMakerUser
    raise AttributeError(f"module 'smload' has no attribute {name!r}")
