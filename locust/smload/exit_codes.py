"""The exit codes of every ``smload`` command and of Locust runs with our plugins, in one place
(README.md's table is this module's).

0 is success. 1 stays Locust's own (a failed request without checks, an error in user code; for
``smload k8s`` the cluster did not do what was asked). 2: bad usage, nothing was sent. 3: the
endpoint did not meet what was asked of it (a ``--check`` failed, calibration found no
sustainable step, ``smload compare`` found a regression). 4: the run was interrupted or lost part
of its load generator, so its verdict stands on partial data.
"""

OK = 0
FAILED = 1
USAGE = 2
CHECK_FAILED = 3
INTERRUPTED = 4
