"""The Prometheus exporter: a Locust plugin serving ``/metrics`` from the master."""
