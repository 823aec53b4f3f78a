# One image for every role: Locust master and workers (the bundled locustfile), the emulator,
# calibration and the k8s helper. See docs/docker.md.
#
#   docker build -t sagemaker-loadtest:dev .                       # python:3.12-slim
#   docker build --network host --build-arg BASE_IMAGE=smload/base:bookworm -t sagemaker-loadtest:dev .
#
# Works on any Debian-based Python >= 3.11 image with `venv` (python:3.12-slim, or the debootstrap
# base of scripts/base-image.sh): nothing here relies on what only python:*-slim has.
ARG BASE_IMAGE=python:3.12-slim

# ---- build: the project's wheel and a venv with it and its dependencies (pip compiles the .pyc;
# the runtime needs no pip) ------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/smload/venv
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/smload/venv/bin/pip install -r requirements.txt dumb-init==1.2.5.post1
COPY README.md ./
COPY locust/smload locust/smload
COPY emulator emulator
COPY exporter exporter
RUN /opt/smload/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/smload/venv/bin/pip install --no-deps /wheels/*.whl \
    && /opt/smload/venv/bin/pip uninstall -y -q pip setuptools \
    && /opt/smload/venv/bin/python -c "import smload.cli, smload.emulator, smload.exporter"

# ---- runtime ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# A fixed non-root UID/GID, so that volumes and Kubernetes securityContext can name it.
RUN groupadd --gid 10001 smload \
    && useradd --uid 10001 --gid 10001 --home-dir /home/smload --create-home --shell /usr/sbin/nologin smload \
    && mkdir -p /var/lib/smload /mnt/payloads /mnt/locust \
    && chown 10001:10001 /var/lib/smload

COPY --from=build /opt/smload/venv /opt/smload/venv
COPY locust/locustfile.py /opt/smload/locustfile.py
COPY locust/payloads/ /opt/smload/payloads/
COPY emulator/examples/ /opt/smload/emulator/
COPY docker/entrypoint.sh /opt/smload/entrypoint.sh

# Read-only root filesystem friendly: no bytecode writes (the venv is precompiled), output unbuffered
# for `docker logs`; the only writable places are /tmp and the volume below (reports). In its own
# network namespace the exporter listens on every interface, like Locust's web UI (-p publishes it).
ENV PATH=/opt/smload/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOCUST_LOCUSTFILE=/opt/smload/locustfile.py \
    LOCUST_METRICS_HOST=0.0.0.0 \
    HOME=/home/smload
USER 10001:10001
WORKDIR /var/lib/smload
VOLUME ["/var/lib/smload"]
# web UI, master (workers connect), exporter /metrics, emulator
EXPOSE 8089 5557 9646 8080
# No HEALTHCHECK: what "healthy" means depends on the role (a worker serves nothing); compose and
# the Helm chart probe each role. PID 1 is dumb-init: it forwards SIGTERM to the process group
# (Locust and the emulator stop cleanly on it) and reaps what Locust's --processes forks.
ENTRYPOINT ["dumb-init", "--", "/opt/smload/entrypoint.sh"]

# Last: build arguments that change with every build (CREATED) must not invalidate the layers above.
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="sagemaker-loadtest" \
      org.opencontainers.image.description="Load testing and capacity calibration for Amazon SageMaker real-time endpoints, built on Locust" \
      org.opencontainers.image.source="https://github.com/sagemaker-loadtest/sagemaker-loadtest" \
      org.opencontainers.image.url="https://github.com/sagemaker-loadtest/sagemaker-loadtest" \
      org.opencontainers.image.documentation="https://github.com/sagemaker-loadtest/sagemaker-loadtest#run-it-locally-docker" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

