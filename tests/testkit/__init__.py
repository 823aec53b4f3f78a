"""Helpers shared by the test suites: real processes on 127.0.0.1, free ports, polling, the chart and
endpoint models (the tests find this package through pytest's ``pythonpath``)."""
