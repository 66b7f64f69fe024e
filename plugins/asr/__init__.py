"""asr: automated remediation of AWS Security Hub findings, as Apache Airflow DAGs."""
