"""The bundled locustfile, for ``locust -f locust/locustfile.py`` in a checkout: zero code,
configured by options alone. It is the package's own (``smload/locustfile.py``), which ``smload
run`` and ``smload calibrate`` use where the package is installed from a wheel.

    locust -f locust/locustfile.py --endpoint-name my-endpoint --region us-east-1 --payload payloads/
"""

from smload.locustfile import *  # noqa: F403 - Locust finds the User classes it imports
