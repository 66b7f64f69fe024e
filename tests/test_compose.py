"""The Docker Compose deployment, checked without Docker.

``docker-compose.yaml``, ``Dockerfile`` and ``.env.example`` against the Compose
Specification's JSON schema (vendored in ``tests/data/``, see its README) and against the
project: the Airflow services share one definition, dependencies and health checks hold
together, mounts point at this repository's folders, the image's Airflow is the pinned one,
and every ``ASR_*`` setting the product reads reaches the containers. Each check is a
function returning its problems, and each is also shown to catch a broken copy.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from asr import local
from asr.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
SCHEMA_FILE = Path(__file__).with_name("data") / "compose-spec.json"

# Airflow's reference layout for CeleryExecutor, plus the product's local-aws demo.
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "flower",
    "aws-local-connection",
}
BACKING_SERVICES = {"postgres", "redis"}
STANDIN = "aws-local"
LOCAL_AWS_PROFILE = "local-aws"
MUST_HAVE_HEALTHCHECK = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    STANDIN,
}
# Variables a service may add to the common Airflow environment, and why.
EXTRA_ENV = {
    "DUMB_INIT_SETSID",  # the worker's warm shutdown
    "CONNECTION_CHECK_MAX_COUNT",  # airflow-cli: no wait for the database
    "LOCAL_AWS_CONNECTION",  # aws-local-connection: the stand-in's connection JSON
}
READ_ONLY_MOUNTS = {"./dags", "./plugins", "./playbooks"}
# Settings of the developer tooling (the stand-in on the host, `make demo`), not of a deployment.
DEV_ONLY_SETTINGS = {"ASR_LOCAL_PORT", "ASR_STATE_DIR", "ASR_AIRFLOW_PORT"}
# Settings whose compose default is a path inside the containers rather than the code's default.
CONTAINER_PATH_SETTINGS = {"ASR_DATA_DIR", "ASR_PLAYBOOK_DIR"}
TEST_SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret_1",
    "AIRFLOW_FERNET_KEY": "a" * 43 + "=",
    "AIRFLOW_API_SECRET_KEY": "api-secret",
    "AIRFLOW_JWT_SECRET": "jwt-secret",
}


# --- Reading the files -----------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; Compose refuses the file: so do we."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [
            key.value
            for key, _ in node.value
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"
        ]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {duplicates}", node.start_mark
            )
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def read_env_file(text: str) -> dict[str, str]:
    """KEY=value lines as Compose reads a .env file (comments, blank lines, quoted values)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"line {number} is not KEY=value: {line!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE.read_text())


# --- Compose's interpolation -----------------------------------------------------------------


class MissingVariable(ValueError):
    """A ${NAME:?message} whose variable is unset or empty: Compose stops with the message."""


INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<name>[A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


def interpolate(text: str, env: dict[str, str]) -> str:
    """``$$``, ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``,
    ``${NAME:?error}``, ``${NAME?error}``, ``${NAME:+alt}``, as the Compose Specification has them."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match["name"]:
            return env.get(match["name"], "")
        braced = BRACED.fullmatch(match["braced"])
        if not braced:
            raise ValueError(f"invalid interpolation {match.group(0)!r}")
        value = env.get(braced["name"])
        op = braced["op"]
        if op is None:
            return value or ""
        missing = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return braced["arg"] if missing else str(value)
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{braced['name']}: {braced['arg']}")
            return str(value)
        return "" if missing else braced["arg"]

    return INTERPOLATION.sub(replace, text)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    return node


def variables_used(node: Any) -> set[str]:
    """Every variable the file interpolates."""
    if isinstance(node, dict):
        return set().union(*(variables_used(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(variables_used(v) for v in node)) if node else set()
    if not isinstance(node, str):
        return set()
    names = set()
    for match in INTERPOLATION.finditer(node):
        if match["name"]:
            names.add(match["name"])
        elif match["braced"] is not None:
            names.add(BRACED.fullmatch(match["braced"])["name"])
    return names


def deployed_env(env_example: dict[str, str]) -> dict[str, str]:
    """.env as an operator writes it from the example: the secrets filled in, the rest as shipped."""
    return {**env_example, **TEST_SECRETS}


def unshared(compose: dict[str, Any]) -> dict[str, Any]:
    """A copy to break: YAML anchors make services share one environment (and more), which a
    deep copy would keep shared; a broken copy must change one service only."""
    return json.loads(json.dumps(compose))


# --- The checks ------------------------------------------------------------------------------


def schema_errors(document: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def common(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["x-airflow-common"]


def shared_definition_problems(compose: dict[str, Any]) -> list[str]:
    """Every service but PostgreSQL and Redis runs the product's image; every Airflow service
    has the common environment, mounts and user, and adds only the allowed variables."""
    base = common(compose)
    base_env = base["environment"]
    problems = []
    services = compose["services"]
    for name in sorted((AIRFLOW_SERVICES | BACKING_SERVICES | {STANDIN}) - services.keys()):
        problems.append(f"{name}: missing")
    for name, service in services.items():
        if name in BACKING_SERVICES:
            continue
        for key in ("build", "image"):
            if service.get(key) != base[key]:
                problems.append(f"{name}: {key} {service.get(key)!r} is not the common {base[key]!r}")
        if name not in AIRFLOW_SERVICES:
            if name != STANDIN:
                problems.append(f"{name}: neither an Airflow service, a backing service nor the stand-in")
            continue
        env = service.get("environment", {})
        for key, value in base_env.items():
            if env.get(key) != value:
                problems.append(f"{name}: {key}={env.get(key)!r}, not the common {value!r}")
        for key in sorted(env.keys() - base_env.keys() - EXTRA_ENV):
            problems.append(f"{name}: {key} is not in the common environment")
        if service.get("volumes") != base["volumes"]:
            problems.append(f"{name}: volumes differ from the common ones")
        if service.get("user") != base["user"] and name != "airflow-init":
            problems.append(f"{name}: user {service.get('user')!r} is not {base['user']!r}")
    return problems


def profiles_of(service: dict[str, Any]) -> set[str]:
    return set(service.get("profiles", []))


def dependency_problems(compose: dict[str, Any]) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {target: {"condition": "service_started"} for target in depends_on}
        for target, spec in depends_on.items():
            if target not in services:
                problems.append(f"{name}: depends on {target}, which is not a service")
                continue
            condition = spec.get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name}: waits for {target} to be healthy, which has no healthcheck")
            if condition == "service_completed_successfully" and services[target].get("restart") != "no":
                problems.append(f"{name}: waits for {target} to complete, which restarts")
            # A service that runs without a profile (or in another) cannot need one that runs only in it.
            needed = profiles_of(services[target])
            if needed and not (profiles_of(service) and profiles_of(service) <= needed):
                problems.append(f"{name}: depends on {target}, which only runs in its profiles")
            if target == name:
                problems.append(f"{name}: depends on itself")
    return problems


def healthcheck_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name in sorted(MUST_HAVE_HEALTHCHECK):
        test = compose["services"].get(name, {}).get("healthcheck", {}).get("test")
        if not test or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
            problems.append(f"{name}: no healthcheck command")
    return problems


def mount_problems(compose: dict[str, Any], root: Path) -> list[str]:
    """Bind mounts name folders of this repository; named volumes are declared."""
    declared = set(compose.get("volumes") or {})
    problems = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target, *options = volume.split(":")
            if source.startswith((".", "/", "~")):
                if not source.startswith("./"):
                    problems.append(f"{name}: {source} is not a path relative to the project")
                elif not (root / source).is_dir():
                    problems.append(f"{name}: {source} is not a folder of this repository")
                if source in READ_ONLY_MOUNTS and options != ["ro"]:
                    problems.append(f"{name}: {source} is not mounted read-only")
            elif source not in declared:
                problems.append(f"{name}: volume {source} is not declared")
            if not target.startswith("/"):
                problems.append(f"{name}: {target} is not an absolute path in the container")
    return problems


def requirement_pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def python_version(pyproject: dict[str, Any]) -> str:
    match = re.search(r">=\s*(\d+\.\d+)", pyproject["project"]["requires-python"])
    assert match, "requires-python has no lower bound"
    return match[1]


def dockerfile_problems(dockerfile: str, requirements: str, python: str) -> list[str]:
    """One FROM, the official image at the pinned Airflow and the project's Python, and an
    install of requirements.txt with constraints.txt."""
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE | re.IGNORECASE)
    if len(bases) != 1:
        return [f"expected one FROM, found {bases}"]
    image, _, tag = bases[0].partition(":")
    pinned = requirement_pins(requirements).get("apache-airflow")
    problems = []
    if image != "apache/airflow":
        problems.append(f"FROM {image}: not the official apache/airflow image")
    if tag != f"{pinned}-python{python}":
        problems.append(f"FROM tag {tag!r}: requirements.txt pins apache-airflow=={pinned}, Python {python}")
    if not re.search(r"pip install [^\n]*-r \S*runtime\.txt -c \S*constraints\.txt", dockerfile):
        problems.append("no pip install of the requirements with constraints.txt")
    return problems


def dev_only_names(dockerfile: str) -> list[str]:
    match = re.search(r'^ARG ASR_DEV_ONLY="([^"]*)"', dockerfile, flags=re.MULTILINE)
    assert match, "the Dockerfile declares no ASR_DEV_ONLY"
    return match[1].split()


def runtime_requirements(requirements: str, dev_only: list[str]) -> list[str]:
    """What the Dockerfile installs: requirements.txt less the ASR_DEV_ONLY lines (its grep)."""
    lines = requirements.splitlines()
    for name in dev_only:
        pattern = re.compile(rf"^{re.escape(name)}([^A-Za-z0-9._-]|$)", re.IGNORECASE)
        lines = [line for line in lines if not pattern.match(line)]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def imported_modules(paths: list[Path]) -> set[str]:
    modules = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules


def modules_of(distribution: str) -> set[str]:
    """Top-level modules a distribution installs (its own name when it is not installed here)."""
    wanted = re.sub(r"[-_.]+", "-", distribution).lower()
    found = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() == wanted for d in dists)
    }
    return found or {distribution.replace("-", "_")}


def runtime_sources() -> list[Path]:
    return [*sorted((ROOT / "plugins" / "asr").rglob("*.py")), *sorted((ROOT / "dags").glob("*.py"))]


def library_sources() -> list[Path]:
    """The DAGs and the library, without the local AWS stand-in."""
    return [p for p in runtime_sources() if "local" not in p.relative_to(ROOT).parts]


def settings_read_by_config() -> set[str]:
    """The variables ``Settings.from_env`` looks up."""

    class Recorder(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.looked_up: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.looked_up.add(key)
            return default

    recorder = Recorder()
    Settings.from_env(recorder)
    return recorder.looked_up


def asr_literals(paths: list[Path]) -> dict[str, Any]:
    """``ASR_*`` names in string literals, with the default when read as
    ``os.environ.get(NAME, default)``, else None."""
    found: dict[str, Any] = {}
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"ASR_[A-Z0-9_]+", node.value)
            ):
                found.setdefault(node.value, None)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and ast.unparse(node.func.value) == "os.environ"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[1], ast.Constant)
            ):
                found[node.args[0].value] = node.args[1].value
    return found


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(ASR_[A-Z0-9_]+)`", section))


def product_settings() -> set[str]:
    """The settings a deployment must be able to set: what config.py reads, what the README
    documents, and what the DAGs and library (not the developer tooling) read."""
    library = [p for p in library_sources() if p.name != "demo.py"]
    return (settings_read_by_config() | readme_settings() | set(asr_literals(library))) - DEV_ONLY_SETTINGS


def settings_problems(compose: dict[str, Any], required: set[str], known: set[str]) -> list[str]:
    env = common(compose)["environment"]
    problems = [f"{name} does not reach the containers" for name in sorted(required - env.keys())]
    for name, value in env.items():
        if not name.startswith("ASR_"):
            continue
        if name not in known:
            problems.append(f"{name}: no such setting in the product")
        if not re.fullmatch(rf"\$\{{{name}(:-[^}}]*)?\}}", str(value)):
            problems.append(f"{name}: {value!r} is not taken from the variable {name} (${{{name}:-default}})")
    return problems


def compose_default(value: str) -> str:
    match = re.fullmatch(r"\$\{[A-Z0-9_]+:-([^}]*)\}", value)
    return match[1] if match else ""


# --- Tests: the file and the schema ----------------------------------------------------------


def test_compose_file_is_yaml_with_services(compose: dict[str, Any]) -> None:
    assert isinstance(compose, dict)
    assert AIRFLOW_SERVICES | BACKING_SERVICES | {STANDIN} <= compose["services"].keys()


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate keys"):
        load_yaml("services:\n  a:\n    image: x\n    image: y\n")
    # Keys that override a merged anchor are not duplicates.
    assert load_yaml("x: &x {image: a}\ns:\n  <<: *x\n  image: b\n")["s"] == {"image": "b"}


def test_vendored_schema_is_a_draft7_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"] == "Compose Specification"


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any], schema: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert schema_errors(compose, schema) == []
    assert schema_errors(resolve(compose, deployed_env(env_example)), schema) == []


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("services", "redis", "restart"), False, "is not of type 'string'"),  # an unquoted `no`
        (("services", "postgres", "healthcheck", "tset"), ["CMD", "true"], "'tset' does not match"),
        (("services", "airflow-worker", "depends_on", "redis", "condition"), "service_ready", "not valid"),
        (("services", "airflow-apiserver", "ports"), "8080:8080", "is not of type 'array'"),
        (("servcies",), {}, "'servcies' does not match"),
    ],
)
def test_the_schema_catches_a_broken_file(
    compose: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...], value: Any, complaint: str
) -> None:
    broken = unshared(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(broken, schema)
    assert errors and any(complaint in error for error in errors), errors


def compose_cli() -> list[str] | None:
    """A Docker Compose command line, if this machine has one (no Docker engine needed)."""
    if shutil.which("docker"):
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if version.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(compose_cli() is None, reason="no Docker Compose command line on this machine")
def test_docker_compose_itself_accepts_the_file(tmp_path: Path, env_example: dict[str, str]) -> None:
    """Compose's own parser and interpolation, with and without the local-aws profile."""
    cli = compose_cli()
    assert cli

    def config(env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
        env_file = tmp_path / ".env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        command = [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
        return subprocess.run(
            [*command, "--env-file", str(env_file), *options, "config", "--quiet"],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
            timeout=120,
        )

    for profile in ((), ("--profile", LOCAL_AWS_PROFILE)):
        done = config(deployed_env(env_example), *profile)
        assert done.returncode == 0, done.stderr
    refused = config({**deployed_env(env_example), "AIRFLOW_JWT_SECRET": ""})
    assert refused.returncode != 0 and "AIRFLOW_JWT_SECRET" in refused.stderr


# --- Tests: services -------------------------------------------------------------------------


def test_airflow_services_share_the_common_image_environment_and_mounts(compose: dict[str, Any]) -> None:
    assert shared_definition_problems(compose) == []


def test_a_service_off_the_common_definition_is_caught(compose: dict[str, Any]) -> None:
    broken = unshared(compose)
    broken["services"]["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    broken["services"]["airflow-triggerer"]["image"] = "apache/airflow:3.3.2"
    broken["services"]["airflow-scheduler"]["environment"]["ASR_EXTRA"] = "x"
    broken["services"]["airflow-dag-processor"]["volumes"] = ["./dags:/opt/airflow/dags:ro"]
    broken["services"]["webserver"] = {"image": "apache/airflow:3.3.2"}
    del broken["services"]["airflow-init"]
    problems = "\n".join(shared_definition_problems(broken))
    for expected in (
        "airflow-worker: AIRFLOW__CORE__EXECUTOR='LocalExecutor'",
        "airflow-triggerer: image",
        "airflow-scheduler: ASR_EXTRA is not in the common environment",
        "airflow-dag-processor: volumes differ",
        "webserver: neither",
        "airflow-init: missing",
    ):
        assert expected in problems


def test_every_dependency_exists_and_can_be_met(compose: dict[str, Any]) -> None:
    assert dependency_problems(compose) == []
    # The Airflow components start only after airflow-init migrated the database.
    for name in AIRFLOW_SERVICES - {"airflow-init", "airflow-cli"}:
        assert compose["services"][name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }, name
    assert compose["services"]["airflow-worker"]["depends_on"]["airflow-apiserver"] == {
        "condition": "service_healthy"
    }


def test_a_broken_dependency_is_caught(compose: dict[str, Any]) -> None:
    broken = unshared(compose)
    services = broken["services"]
    services["airflow-worker"]["depends_on"]["rabbitmq"] = {"condition": "service_started"}
    services["airflow-scheduler"]["depends_on"]["airflow-cli"] = {"condition": "service_healthy"}
    services["airflow-triggerer"]["depends_on"]["airflow-scheduler"] = {
        "condition": "service_completed_successfully"
    }
    services["airflow-apiserver"]["depends_on"][STANDIN] = {"condition": "service_healthy"}
    problems = "\n".join(dependency_problems(broken))
    for expected in (
        "airflow-worker: depends on rabbitmq, which is not a service",
        "airflow-scheduler: waits for airflow-cli to be healthy",
        "airflow-triggerer: waits for airflow-scheduler to complete",
        f"airflow-apiserver: depends on {STANDIN}, which only runs in its profiles",
    ):
        assert expected in problems


def test_backing_services_and_airflow_components_have_healthchecks(compose: dict[str, Any]) -> None:
    assert healthcheck_problems(compose) == []
    api_check = " ".join(compose["services"]["airflow-apiserver"]["healthcheck"]["test"])
    assert "localhost:8080/api/v2/monitor/health" in api_check
    broken = unshared(compose)
    del broken["services"]["redis"]["healthcheck"]
    assert healthcheck_problems(broken) == ["redis: no healthcheck command"]


def test_mounts_are_repository_folders_read_only_and_declared_volumes(compose: dict[str, Any]) -> None:
    assert mount_problems(compose, ROOT) == []
    mounted = {volume.split(":")[0] for volume in common(compose)["volumes"]}
    assert mounted >= READ_ONLY_MOUNTS


def test_a_bad_mount_is_caught(compose: dict[str, Any]) -> None:
    broken = unshared(compose)
    broken["services"]["airflow-worker"]["volumes"] = [
        "./no-such-folder:/opt/airflow/x",
        "./dags:/opt/airflow/dags",
        "undeclared:/opt/airflow/y",
        "/etc:/host-etc:ro",
    ]
    problems = "\n".join(mount_problems(broken, ROOT))
    for expected in (
        "./no-such-folder is not a folder of this repository",
        "./dags is not mounted read-only",
        "volume undeclared is not declared",
        "/etc is not a path relative to the project",
    ):
        assert expected in problems


def test_the_executor_is_celery_on_redis_with_postgres(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    env = resolve(common(compose)["environment"], deployed_env(env_example))
    services = compose["services"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname) == ("redis", "redis")
    for key, scheme in (
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql"),
    ):
        url = urlsplit(env[key])
        assert (url.scheme, url.hostname, url.path) == (scheme, "postgres", "/airflow"), key
        assert (url.username, url.password) == ("airflow", TEST_SECRETS["POSTGRES_PASSWORD"]), key
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "airflow"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "airflow"
    # Tasks reach the Execution API of the API server service, on its container port.
    api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (api.hostname, api.path) == ("airflow-apiserver", "/execution/")
    assert any(port.endswith(f":{api.port}") for port in services["airflow-apiserver"]["ports"])
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == TEST_SECRETS["AIRFLOW_JWT_SECRET"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["flower"]["command"] == "celery flower"
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_FILE.read_text()


def test_the_local_airflow_runs_with_the_deployments_scheduling_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Tests and benchmarks measure what is deployed: the settings that shorten the hops
    between a run's tasks, and the one that keeps the dag-processor from re-parsing every
    30 s, are the same in both."""
    from asr.local.airflow import LocalAirflow

    deployed = common(compose)["environment"]
    local_env = LocalAirflow(tmp_path, 8080).env
    prefixes = (
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE",
        "AIRFLOW__WORKERS__",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE",
    )
    keys = [k for k in deployed if k.startswith(prefixes)]
    assert sorted(keys) == [
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
    ]
    assert {k: local_env[k] for k in keys} == {k: deployed[k] for k in keys}


def test_airflow_init_migrates_the_database_and_fails_when_it_fails(compose: dict[str, Any]) -> None:
    init = compose["services"]["airflow-init"]
    script = init["command"][-1]
    assert init["entrypoint"] == "/bin/bash"
    assert script.startswith("set -euo pipefail")
    assert "/entrypoint airflow db migrate" in script
    assert init["restart"] == "no"


@pytest.mark.parametrize(
    ("pool", "exists", "made"),
    [
        ("asr_fix", False, ["airflow pools set asr_fix 8 asr fix tasks (ASR_FIX_POOL)"]),
        ("asr_fix", True, []),
        ("default_pool", False, []),
    ],
)
def test_airflow_init_makes_the_fix_pool_the_settings_name(
    compose: dict[str, Any], tmp_path: Path, pool: str, exists: bool, made: list[str]
) -> None:
    """A pool the scheduler cannot find leaves every fix task queued for ever: airflow-init
    makes ASR_FIX_POOL's pool when it is missing (the script run with Airflow stubbed)."""
    script = compose["services"]["airflow-init"]["command"][-1].replace("$$", "$")  # as Compose passes it
    calls = tmp_path / "calls"
    answer = "true" if exists else "false"  # what ``airflow pools get`` says
    stubs = f"""
function /entrypoint {{ echo "$*" >> {calls}; [ "${{2-}} ${{3-}}" != "pools get" ] || {answer}; }}
function mkdir {{ :; }}
function chown {{ :; }}
"""
    env = {"PATH": os.environ["PATH"], "ASR_FIX_POOL": pool}
    subprocess.run(["bash", "-c", stubs + script], env=env, check=True)
    said = calls.read_text().splitlines()
    assert [line for line in said if line.startswith("airflow pools set")] == made


# --- Tests: secrets and settings -------------------------------------------------------------


def test_the_secrets_are_required_and_none_is_shipped(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    required = {match[1] for match in re.finditer(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text())}
    assert required == TEST_SECRETS.keys()
    for name in required:
        assert env_example[name] == "", f".env.example ships a value for the secret {name}"
        with pytest.raises(MissingVariable, match=name):
            resolve(compose, {**deployed_env(env_example), name: ""})
    resolve(compose, deployed_env(env_example))


def test_every_variable_compose_reads_is_documented_in_env_example(compose: dict[str, Any]) -> None:
    used = variables_used(compose)
    lines = ENV_EXAMPLE.read_text().splitlines()
    defined = {line.split("=", 1)[0]: i for i, line in enumerate(lines) if re.match(r"^[A-Z_0-9]+=", line)}
    assert used - defined.keys() == set(), "interpolated but not in .env.example"
    assert defined.keys() - used == set(), "in .env.example but docker-compose.yaml ignores it"
    for name, index in defined.items():
        # A comment right above the variable (or above the group of variables it belongs to).
        above = index - 1
        while above >= 0 and re.match(r"^[A-Z_0-9]+=", lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("# ") and len(lines[above]) > 3, name


def test_every_product_setting_reaches_the_containers(compose: dict[str, Any]) -> None:
    required = product_settings()
    assert {"ASR_SECURITYHUB_REGION", "ASR_BATCH_SIZE", "ASR_EVENTS_QUEUE_URL"} <= required
    assert settings_read_by_config() <= required
    known = set(asr_literals(runtime_sources())) | readme_settings()
    assert settings_problems(compose, required, known) == []


def test_a_missing_or_unknown_setting_is_caught(compose: dict[str, Any]) -> None:
    broken = unshared(compose)
    env = common(broken)["environment"]
    del env["ASR_MEMBER_ROLE_NAME"]
    env["ASR_BACH_SIZE"] = "${ASR_BACH_SIZE:-50}"
    env["ASR_REGIONS"] = "us-east-1"
    required = product_settings()
    known = set(asr_literals(runtime_sources())) | readme_settings()
    problems = "\n".join(settings_problems(broken, required, known))
    for expected in (
        "ASR_MEMBER_ROLE_NAME does not reach the containers",
        "ASR_BACH_SIZE: no such setting",
        "ASR_REGIONS: 'us-east-1' is not taken from the variable",
    ):
        assert expected in problems


def test_the_containers_settings_are_valid_and_the_products_defaults(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    raw = common(compose)["environment"]
    env = resolve(raw, deployed_env(env_example))
    settings = Settings.from_env(env)
    assert settings == Settings(data_dir="/opt/airflow/asr-runs")
    # Defaults the DAGs and library read themselves (os.environ.get(NAME, default)).
    library = library_sources()
    for name, default in asr_literals(library).items():
        if default is not None and name not in CONTAINER_PATH_SETTINGS and name in raw:
            assert compose_default(raw[name]) == str(default), name
    # The container paths are the mounts: playbooks from the repository, runs on a shared volume.
    targets = {v.split(":")[1]: v.split(":")[0] for v in common(compose)["volumes"]}
    assert targets[env["ASR_PLAYBOOK_DIR"]] == "./playbooks"
    assert targets[env["ASR_DATA_DIR"]] in (compose.get("volumes") or {})


# --- Tests: the image ------------------------------------------------------------------------


def test_the_image_is_the_pinned_airflow_and_python() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = (ROOT / "requirements.txt").read_text()
    assert dockerfile_problems(DOCKERFILE.read_text(), requirements, python_version(pyproject)) == []


def test_a_mismatched_base_image_is_caught() -> None:
    requirements = "apache-airflow==3.3.2\n"
    good = "FROM apache/airflow:3.3.2-python3.11\nRUN pip install -r /t/runtime.txt -c /t/constraints.txt\n"
    assert dockerfile_problems(good, requirements, "3.11") == []
    assert "FROM tag '3.3.2-python3.11'" in dockerfile_problems(good, "apache-airflow==3.3.3\n", "3.11")[0]
    assert dockerfile_problems(good, requirements, "3.12")
    assert dockerfile_problems(good.replace("apache/airflow", "python"), requirements, "3.11")
    assert dockerfile_problems(good + "FROM scratch\n", requirements, "3.11")
    assert dockerfile_problems(good.replace(" -c /t/constraints.txt", ""), requirements, "3.11")


def test_the_image_leaves_out_test_tools_and_keeps_what_runs() -> None:
    dockerfile = DOCKERFILE.read_text()
    requirements = (ROOT / "requirements.txt").read_text()
    dev_only = dev_only_names(dockerfile)
    assert {"pytest", "hypothesis", "ruff"} <= set(dev_only)
    installed = runtime_requirements(requirements, dev_only)
    installed_names = set(requirement_pins("\n".join(installed)))
    for line in requirements.splitlines():
        name = next(iter(requirement_pins(line)), None)
        if name is None:
            continue
        assert (name in installed_names) != (name in dev_only), name
    assert {"apache-airflow", "apache-airflow-providers-amazon", "boto3", "moto"} <= installed_names
    # What the product runs never imports what the image leaves out.
    runtime_imports = imported_modules(runtime_sources())
    for name in dev_only:
        assert not modules_of(name) & runtime_imports, f"{name} is left out of the image but imported"


def test_leaving_out_a_package_the_product_imports_is_caught() -> None:
    runtime_imports = imported_modules(runtime_sources())
    assert modules_of("boto3") & runtime_imports
    assert modules_of("moto") & runtime_imports  # the stand-in, run from the image by local-aws
    assert "boto3==1.0" not in runtime_requirements("boto3==1.0\npytest==9\n", ["boto3"])


# --- Tests: the local-aws profile ------------------------------------------------------------


def test_the_local_aws_profile_runs_the_stand_in_and_points_the_connection_at_it(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    standin = services[STANDIN]
    assert profiles_of(standin) == {LOCAL_AWS_PROFILE}
    assert standin["command"] == ["python", "-m", "asr.local.server", "--host", "0.0.0.0", "--port", "5000"]
    assert "5000" in " ".join(standin["healthcheck"]["test"])
    connection_service = services["aws-local-connection"]
    assert profiles_of(connection_service) == {LOCAL_AWS_PROFILE}
    assert connection_service["depends_on"][STANDIN] == {"condition": "service_healthy"}
    # The connection `make demo` uses, with the stand-in's host name for 127.0.0.1.
    stored = json.loads(connection_service["environment"]["LOCAL_AWS_CONNECTION"])
    expected = json.loads(
        local.airflow_connection(5000).replace(local.endpoint_url(5000), f"http://{STANDIN}:5000")
    )
    assert stored == expected
    assert stored["extra"]["service_config"]["sts"]["endpoint_url"] == stored["extra"]["endpoint_url"]
    script = connection_service["command"][-1]
    assert '/entrypoint airflow connections add "$${ASR_AWS_CONN_ID}"' in script
    assert '"$${LOCAL_AWS_CONNECTION}"' in script
    # Nothing outside the profile is touched by it.
    for name, service in services.items():
        if name not in (STANDIN, "aws-local-connection"):
            assert LOCAL_AWS_PROFILE not in profiles_of(service), name


# Compose options that take a value, and subcommands whose first operand is the service.
VALUE_OPTIONS = {"--profile", "--file", "--env-file", "-e", "--env", "--index", "-u", "--user", "-w"}
ONE_SERVICE = {"exec", "run"}
SERVICES = {"logs", "restart", "stop", "start", "rm", "up", "build", "pull", "ps", "kill"}


def services_in_commands(text: str) -> set[str]:
    """The services the `docker compose ...` commands in a text name."""
    named = set()
    for line in re.findall(r"docker compose ([^\n`#|>]*)", text):
        words = line.replace("\\", " ").split()
        subcommand = None
        skip = scale = False
        for word in words:
            if skip:
                skip = False
            elif scale:
                named.add(word.split("=", 1)[0])
                scale = False
            elif word == "--scale":
                scale = True
            elif word in VALUE_OPTIONS:
                skip = True
            elif word.startswith("-"):
                continue
            elif subcommand is None:
                subcommand = word
            elif subcommand == "cp":
                if ":" in word:
                    named.add(word.split(":", 1)[0])
            elif subcommand in ONE_SERVICE:
                named.add(word)
                break
            elif subcommand in SERVICES:
                named.add(word)
    return named


# --- Tests: the operations guide -------------------------------------------------------------


def test_the_operations_guide_names_only_existing_services(compose: dict[str, Any]) -> None:
    text = OPERATIONS_DOC.read_text()
    for command in (
        "docker compose up",
        "--profile local-aws",
        "--scale airflow-worker=3",
        "docs/deploy-roles.md",
    ):
        assert command in text, command
    named = services_in_commands(text)
    assert services_in_commands("docker compose logs -f webserver | less") == {"webserver"}
    assert named - compose["services"].keys() == set()
