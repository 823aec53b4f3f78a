"""The Prometheus exporter, a Locust plugin: loaded with the load generator wherever the package is
installed (the ``smload.plugins`` entry point, :mod:`.plugin`), for the bundled locustfile and
custom ones alike. The master (or a local runner) serves ``/metrics`` on
``--metrics-host``/``--metrics-port`` what the measurements (:mod:`smload.measure.store`) merged
from every worker; ``--cloudwatch`` adds the endpoint's CloudWatch metrics. Nothing in the core
imports this package: it is a plugin that reads the measurements' public views.

Importing the package registers nothing; :mod:`.plugin` registers its options and ``init``
listener and starts nothing: the server starts at Locust's ``init`` on a master or local runner only.
"""
