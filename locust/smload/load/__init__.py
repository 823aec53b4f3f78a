"""How load is offered: closed-loop users (Locust's own), open-loop arrivals at a rate (``arrivals``,
the worker's ``open_loop`` scheduler, the master's ``shape`` that splits the rate over the workers)
and rate profiles (``profile``). Uses ``smload.invoke`` (the users it paces), never the measurements:
the TestRun hands it callbacks that count."""
