"""A test from start to verdict: the TestRun (one per Locust Environment), the one module that
registers Locust listeners (``hooks``), and the end of a test: checks, summary, report, exit code."""
