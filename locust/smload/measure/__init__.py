"""Everything recorded per request: exact mergeable histograms per request identity and kind of
timing, failures, bytes and counters (``store``), the worker-report codec (``wire``), generator health
(``health``) and the drain at a test's end (``drain``). Knows nothing of the client. Import-light package:
the emulator uses ``histogram``."""
