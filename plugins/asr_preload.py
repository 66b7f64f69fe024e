"""Airflow plugin: import the asr library once in Airflow's long-lived processes, so that
the processes they fork start warm.

With the LocalExecutor the scheduler forks the workers, which fork one process per task;
the dag-processor forks one per DAG file it parses. Each child used to import asr, boto3
and the amazon provider itself and parse the AWS service models its clients need (the
EC2 one is large), most of a second of CPU per task: at 10,000 findings that is tens of
task processes competing with the fixes for the same cores. Done before the fork, the
work is inherited instead. It costs the scheduler about 60 MiB.

The price: a change to the asr code reaches tasks once the scheduler restarts (a new
release restarts it anyway). Playbooks are still read by every task, so an edited one
counts from the next task on; what is inherited is the compiled validators of their
schemas and what each unchanged file parsed to (``asr.playbooks`` checks again only a file
whose text changed). The CeleryExecutor's workers start no listeners: there each task
still does this work itself.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from airflow.jobs.job import Job
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
    """Listener: imports ``MODULES``, parses the botocore models of the services the
    actions call (``asr.aws.warm``) and loads the playbooks (compiling their schemas) when an
    Airflow job (scheduler, dag-processor, triggerer) starts. A task process is told too,
    but does nothing: it forked from a warm parent or, under Celery, would only parse
    models its batch never uses."""

    @hookimpl
    def on_starting(self, component: Any) -> None:
        if not isinstance(component, Job):
            return
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # a task that needs it will fail with the real error
                log.warning("asr preload: could not import %s", name, exc_info=True)
        try:
            from asr import aws
            from asr.actions import REGISTRY

            aws.warm(sorted({action.service for action in REGISTRY.values()} | {"sts"}))
        except Exception:
            log.warning("asr preload: could not load the AWS service models", exc_info=True)
        try:
            from asr.playbooks import load_playbooks

            load_playbooks()  # compiles the schemas' validators, keeps what each file gave
        except Exception:  # a broken playbook is reported where it is used, by name
            log.warning("asr preload: could not load the playbooks", exc_info=True)


class AsrPreloadPlugin(AirflowPlugin):
    name = "asr_preload"
    listeners = [Preload()]
