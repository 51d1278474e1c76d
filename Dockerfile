# Yiwang server image: one image, one CLI; docker-compose.yml picks the service with `command`
# (ingest, alerts, cases, api, db init). Build: docker build -t yiwang:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, so editing the source does not reinstall them. setuptools discovers the packages
# from the source tree, so the project itself cannot be installed from pyproject.toml alone; instead the
# pinned requirements (core + server + edge) are read from it with the standard library's tomllib.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; print('\n'.join(dict.fromkeys(p['dependencies'] + x['server'] + x['edge'])))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# The packages of [tool.setuptools.packages.find] include; add a line here when a package is added.
COPY common ./common
COPY contract ./contract
COPY edge ./edge
COPY broker ./broker
COPY series ./series
COPY ingest ./ingest
COPY cases ./cases
COPY registry ./registry
COPY alerts ./alerts
COPY api ./api
COPY yiwang ./yiwang

# Build the wheel, then install it with its extras: the dependencies are already there, so this only
# adds Yiwang itself, and it fails if the requirements read above ever disagree with pyproject.toml.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && wheel="$(echo /tmp/wheels/yiwang-*.whl)" \
    && pip install --no-cache-dir "${wheel}[server,edge]" \
    && pip check \
    && python -c "import alerts.service, api.app, ingest.service, yiwang.schema" \
    && yiwang --help > /dev/null

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="yiwang" \
      org.opencontainers.image.description="Yiwang smart-community IoT platform: ingest, alerts, API" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# WeasyPrint (the monthly report as PDF) draws text with pango; the Noto CJK fonts print its Chinese.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 yiwang \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin yiwang

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Sensor types, rules, categories and communities; YIWANG_CONFIG_DIR points here (relative default
# "config" resolves here too). Read-only for the service user.
COPY config/ ./config/
# The only writable place in /app, for the SQLite defaults (var/demo) when run without PostgreSQL.
RUN mkdir -p /app/var && chown 10001:10001 /app/var

USER 10001:10001

# No HEALTHCHECK here: what "healthy" means differs per service (HTTP for the API, a fresh heartbeat
# for ingest and alerts, nothing for the one-shot `db init`), so docker-compose.yml defines it per service.
ENTRYPOINT ["yiwang"]
CMD ["--help"]
