# The Airflow image with the product's pinned dependencies; DAGs, plugins and
# playbooks are mounted by docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /tmp/asr/
RUN pip install --no-cache-dir -r /tmp/asr/requirements.txt -c /tmp/asr/constraints.txt
