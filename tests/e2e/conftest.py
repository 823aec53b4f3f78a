"""Fixtures for the container tests (``make e2e``): our own Docker engine, the image, containers.

Every test in this directory carries the ``e2e`` marker; ``make test`` does not collect it.
A missing Docker engine is a failure with the reason, never a skip.
"""

import os
import sys
from pathlib import Path

import pytest
from testkit.docker_support import Containers, build_image, start_engine, stop_engine


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def docker():
    """The session's Docker engine (``DOCKER_HOST`` in ``docker.host``); stopped by its pid at the end
    if this session started it."""
    engine, started = start_engine()
    yield engine
    if started:
        stop_engine(engine)


@pytest.fixture(scope="session")
def image(docker):
    """``sagemaker-loadtest:e2e`` built from this checkout on the local Debian base, or the image
    named by ``SMLOAD_E2E_IMAGE`` (already in the engine, e.g. one built on python:3.12-slim)."""
    given = os.environ.get("SMLOAD_E2E_IMAGE")
    if given:
        docker("image", "inspect", given)
        return given
    return build_image(docker)


@pytest.fixture
def containers(request, docker, image):
    """Start containers for this test; all are removed at its end, their logs shown on failure."""
    group = Containers(docker, image)
    yield group
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write(group.dump_logs())
    group.remove_all()
