"""sagemaker-loadtest: the load-generation library (SageMaker client, User class, options, payloads,
shapes, checks, calibration, reports, CLI). The emulator is ``smload.emulator``, the exporter
``smload.exporter``."""

__version__ = "0.1.0"
