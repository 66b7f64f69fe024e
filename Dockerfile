# The product's image: the official Apache Airflow image plus the project's pinned dependencies.
#
# The official (non-slim) image already has the CeleryExecutor's provider
# (apache-airflow-providers-celery), PostgreSQL and Redis clients, the Amazon provider and the
# StatsD client (metrics) among its default extras; the check at the end of the install fails the
# build if that ever changes.
# dags/, plugins/ (the asr package) and playbooks/ are mounted by docker-compose.yaml, so
# changing them needs no rebuild; changing requirements.txt or constraints.txt does.
# The tag must match the apache-airflow pin in requirements.txt (tests/test_compose.py checks).
FROM apache/airflow:3.3.2-python3.11

# Packages in requirements.txt that only develop and test the project (make test, make lint):
# left out of the image. Names not in requirements.txt are skipped. moto stays: the local-aws
# profile runs the stand-in from this image; to leave it out as well:
#   docker compose build --build-arg ASR_DEV_ONLY="pytest hypothesis ruff playwright moto"
ARG ASR_DEV_ONLY="pytest hypothesis ruff playwright"

COPY --chown=airflow:0 requirements.txt constraints.txt /tmp/asr/
RUN set -eu; \
    cd /tmp/asr; \
    cp requirements.txt runtime.txt; \
    for name in ${ASR_DEV_ONLY}; do \
        grep -viE "^${name}([^A-Za-z0-9._-]|\$)" runtime.txt > runtime.tmp || true; \
        mv runtime.tmp runtime.txt; \
    done; \
    echo "Installing:"; grep -vE '^\s*(#|$)' runtime.txt; \
    pip install --no-cache-dir -r runtime.txt -c constraints.txt; \
    python -c "import airflow.providers.celery.executors.celery_executor, airflow.providers.amazon, psycopg2, redis, statsd"; \
    cd /; \
    rm -rf /tmp/asr

# Mount points of the asr-runs and airflow-auth volumes: a new named volume takes the owner
# and mode of the folder it is mounted on, here writable by the image's group 0.
RUN mkdir -p /opt/airflow/asr-runs /opt/airflow/auth \
    && chmod g+rwx /opt/airflow/asr-runs /opt/airflow/auth

# The asr package lives in the mounted plugins folder: Airflow puts that folder on sys.path
# itself, this makes `python -m asr.cli` and `python -m asr.local.server` work too.
ENV PYTHONPATH=/opt/airflow/plugins
