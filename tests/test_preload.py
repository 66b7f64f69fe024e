"""The preload plugin: Airflow finds it in the plugins folder, and a job starting (the
scheduler's) imports the library and compiles the playbooks' schemas, so that the
processes it forks inherit them; a task process starting does nothing."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from typing import Any
from unittest.mock import Mock

import pytest
from airflow.jobs.job import Job

from asr.actions import get_action
from asr.playbooks import SCHEMA, default_dir, registry

# Run in a fresh interpreter: this test process has imported asr long ago.
PROBE = textwrap.dedent(
    """
    import json, sys
    from airflow.listeners.listener import get_listener_manager

    before = "asr.remediate" in sys.modules
    if sys.argv[1] == "job":  # how the scheduler starts: its Job tells the listeners
        from airflow.jobs.job import Job

        Job()
    else:  # how a task process starts
        from airflow.sdk.execution_time.task_runner import TaskRunnerMarker

        get_listener_manager().hook.on_starting(component=TaskRunnerMarker())
    from asr import actions, aws, playbooks

    # botocore's loader caches what it parsed, keyed by call and arguments
    parsed = aws._member_session._session.get_component("data_loader")._cache if aws._member_session else {}
    print(json.dumps({
        "before": before,
        "after": [m for m in sys.argv[2:] if m in sys.modules],
        "ec2_model": any("ec2" in str(key) and "service-2" in str(key) for key in parsed),
        "schemas_compiled": len(actions._VALIDATORS),
        "playbooks_loaded": len(playbooks._loaded),
    }))
    """
)


def probe(component: str, *modules: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, component, *modules],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_starting_job_imports_the_library_its_tasks_need() -> None:
    wanted = ["asr.remediate", "asr.pipeline", "boto3", "airflow.providers.amazon.aws.hooks.base_aws"]
    seen = probe("job", *wanted)
    assert seen["before"] is False, "nothing imported asr before the job started"
    assert seen["after"] == wanted
    assert seen["ec2_model"], "the EC2 model is parsed, ready for the member clients of forked tasks"
    # the playbook schema and every distinct parameter schema of the actions the playbooks
    # use (some actions share one), and every playbook file
    schemas = {id(SCHEMA)} | {id(get_action(playbook.action).schema) for playbook in registry()}
    assert seen["schemas_compiled"] == len(schemas), (
        "the playbooks' schema validators are compiled before the fork"
    )
    files = list(default_dir().glob("*.yaml"))
    assert seen["playbooks_loaded"] == len(files), "every playbook file's parse is kept for the forked tasks"


def test_a_starting_task_process_does_no_preloading() -> None:
    nothing = {"before": False, "after": [], "ec2_model": False, "schemas_compiled": 0, "playbooks_loaded": 0}
    assert probe("task", "asr.remediate") == nothing


def test_without_the_plugins_folder_nothing_is_preloaded(tmp_path) -> None:
    seen = probe("job", "asr.remediate", env={"AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path)})
    assert seen == {
        "before": False,
        "after": [],
        "ec2_model": False,
        "schemas_compiled": 0,
        "playbooks_loaded": 0,
    }


def test_a_module_that_fails_to_import_is_logged_and_the_rest_still_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asr_preload

    scheduler = Job()  # made first: making a Job runs the listeners Airflow itself loaded
    imported: list[str] = []
    real_import = importlib.import_module

    def import_module(name: str, *args: Any) -> Any:
        imported.append(name)
        return real_import(name, *args)

    log = Mock()  # Airflow's logging setup keeps records from pytest's caplog
    monkeypatch.setattr(asr_preload, "MODULES", ("asr.no_such_module", "asr.audit"))
    monkeypatch.setattr(asr_preload, "log", log)
    monkeypatch.setattr(importlib, "import_module", import_module)
    asr_preload.Preload().on_starting(component=scheduler)
    [warning] = log.warning.call_args_list
    assert warning.args[1:] == ("asr.no_such_module",)
    ours = [name for name in imported if name in asr_preload.MODULES]
    assert ours == ["asr.no_such_module", "asr.audit"], "the failure did not stop the rest"
