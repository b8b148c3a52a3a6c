# Fraudrail images, built from the repository root:
#
#   docker build -t fraudrail:<tag> .                                  # control plane (API and worker)
#   docker build --target inference -t fraudrail-inference:<tag> .     # SageMaker inference container
#
# The control plane image runs the API (`serve --no-worker`, the default command) or the job
# worker (`worker`): the command selects, as ECS does with one task definition per service.
# The inference image answers SageMaker's contract on 8080 (`docker run <image> serve`).
# Both install exactly the versions of constraints.txt; compilers stay in the build stages.
# Pin the bases by digest in CI (`--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${PYTHON_IMAGE} AS python-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ---------------------------------------------------------------- build: dependencies only
FROM python-base AS deps
# A compiler only for the rare dependency without a wheel for this platform; never in a final stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt ./
# The runtime dependencies of pyproject.toml at the versions of constraints.txt; this layer is
# rebuilt only when one of the two files changes, not on every source edit.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies']))" > requirements.txt \
    && pip install -c constraints.txt -r requirements.txt

FROM deps AS deps-cdk
# The worker synthesizes tenant stacks in-process (aws-cdk-lib through jsii and node).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['optional-dependencies']['cdk']))" > requirements-cdk.txt \
    && pip install -c constraints.txt -r requirements-cdk.txt

FROM deps-cdk AS build-control-plane
WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY control_plane ./control_plane
COPY providers ./providers
COPY guardrails ./guardrails
COPY fraud_model ./fraud_model
COPY lambdas ./lambdas
COPY cdk ./cdk
COPY inference ./inference
COPY policies ./policies
COPY tenant_templates ./tenant_templates
COPY dashboards ./dashboards
# Editable, so the code's repository-relative paths (policies/, tenant_templates/, dashboards/)
# resolve under /app; --no-deps: every dependency is already pinned above.
RUN pip install --no-deps -c constraints.txt -e . \
    && python -m compileall -q /app

# ---------------------------------------------------------------- SageMaker inference image
FROM python-base AS inference
LABEL org.opencontainers.image.title="fraudrail-inference" \
      com.amazonaws.sagemaker.capabilities.multi-models="true" \
      com.amazonaws.sagemaker.capabilities.accept-bind-to-port="true"
RUN groupadd --system --gid 10001 fraudrail \
    && useradd --system --uid 10001 --gid fraudrail --no-create-home --shell /usr/sbin/nologin fraudrail
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# Only the scorer and the server: no control plane code in the image SageMaker runs.
COPY --chown=root:root fraud_model ./fraud_model
COPY --chown=root:root inference ./inference
ENV PYTHONPATH=/app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('SAGEMAKER_BIND_TO_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["python", "-m", "inference"]
CMD ["serve"]

# ---------------------------------------------------------------- control plane (default target)
FROM python-base AS control-plane
LABEL org.opencontainers.image.title="fraudrail"
# node (22: jsii supports 22 and 24 since Node 20 reached end of life) runs the CDK's jsii kernel;
# libstdc++ is the one library it needs that the slim Python base lacks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fraudrail \
    && useradd --system --uid 10001 --gid fraudrail --home-dir /var/lib/fraudrail --create-home \
       --shell /usr/sbin/nologin fraudrail
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=build-control-plane /opt/venv /opt/venv
COPY --from=build-control-plane /app /app
WORKDIR /app
ENV FRAUDRAIL_ENV=production \
    FRAUDRAIL_HOME=/var/lib/fraudrail \
    FRAUDRAIL_HOST=0.0.0.0 \
    FRAUDRAIL_PORT=8000 \
    JSII_RUNTIME_PACKAGE_CACHE_ROOT=/var/lib/fraudrail/jsii-cache
USER 10001:10001
EXPOSE 8000
# The API answers /healthz; the worker (`worker`) serves no HTTP, so for it the check is that
# PID 1 is alive, which is what reaching this command already proves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; cmd = open('/proc/1/cmdline', 'rb').read().split(b'\\0'); 'serve' in [c.decode() for c in cmd] and urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FRAUDRAIL_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["fraudrail"]
CMD ["serve", "--no-worker"]
