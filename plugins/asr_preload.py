"""Airflow plugin: import the asr library once in Airflow's long-lived processes, so that
the processes they fork start warm.

With the LocalExecutor the scheduler forks the workers, which fork one process per task;
the dag-processor forks one per DAG file it parses. Each child used to import asr, boto3
and the amazon provider itself, about half a second of CPU per task: at 10,000 findings
that is tens of task processes competing with the fixes for the same cores. Imported
before the fork, the modules are inherited instead.

The price: a change to the asr code reaches tasks once the scheduler restarts (a new
release restarts it anyway). Playbooks are still read by every task.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

# What a task needs beyond Airflow itself: the DAG files' imports and what the tasks
# import when they run.
MODULES = (
    "boto3",
    "botocore.client",
    "airflow.providers.amazon.aws.hooks.base_aws",
    "asr.pipeline",
    "asr.tasks",
    "asr.notify",
    "asr.sweep",
    "asr.remediate",
    "asr.audit",
    "asr.claims",
    "asr.writeback",
    "asr.report",
    "asr.rollback",
    "asr.events",
)


class Preload:
    """Listener: imports ``MODULES`` when an Airflow component starts."""

    @hookimpl
    def on_starting(self, component: Any) -> None:
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # a task that needs it will fail with the real error
                log.warning("asr preload: could not import %s", name, exc_info=True)


class AsrPreloadPlugin(AirflowPlugin):
    name = "asr_preload"
    listeners = [Preload()]
