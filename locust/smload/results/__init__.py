"""What a test's measurements mean, as pure code: the ``--check`` grammar and its evaluation, and the
report files (report.json/html, calibration.json/html)."""
