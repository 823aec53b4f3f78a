"""The emulator runs asyncio: importing it must never import Locust or gevent (Locust's import
monkey-patches the process), directly or through ``smload``'s shared modules (``smload.invoke.bearer``, which
the emulator's tests and the load generator share, included)."""

import subprocess
import sys


def test_emulator_imports_neither_locust_nor_gevent():
    code = (
        "import sys, smload.cli, smload.emulator.cli, smload.emulator.server, smload.emulator.sigv4, smload.invoke.bearer; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent', 'geventhttpclient')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"the emulator imported: {result.stdout.strip()} {result.stderr}"
