"""The Prometheus exporter, a Locust plugin: ``import smload.exporter`` in a locustfile enables it
(the bundled locustfile does). The master (or a local runner) serves ``/metrics`` on
``--metrics-host``/``--metrics-port``; every worker feeds it the exact latency histograms of its
requests (:mod:`smload.exporter.latency`); ``--cloudwatch`` adds the endpoint's CloudWatch metrics.

Importing the package registers options and ``init`` listeners with Locust and starts nothing: the
server starts at Locust's ``init`` on a master or local runner only.
"""

from . import plugin as _plugin  # noqa: F401 - registers the options and the init listener
