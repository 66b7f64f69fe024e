"""Playbooks load from YAML, and a broken one stops loading with an error naming file and field."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from asr import playbooks as playbooks_module
from asr.actions import validate_params
from asr.playbooks import PlaybookError, default_dir, load_playbooks

SEED_CONTROLS = {"EC2.13", "EC2.2", "EC2.7", "IAM.7", "RDS.5", "S3.1"}
# The ports Security Hub's EC2.19 calls high-risk (its documentation's list).
EC2_19_PORTS = [20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000]
EC2_19_PORTS += [5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300]


def test_project_playbooks_load_and_route() -> None:
    playbooks = load_playbooks()
    assert set(playbooks.playbooks) >= SEED_CONTROLS
    assert playbooks.for_control("IAM.14").control_id == "IAM.7"
    assert playbooks.for_control("EC2.14").control_id == "EC2.13"
    assert playbooks.playbooks["EC2.13"].parameters == {"ports": [22, 3389]}


def test_the_port_lists_are_the_controls_own() -> None:
    """A port dropped from a list leaves it open to the world, and the fix tests exercise
    only some of the ports: the lists themselves are checked, the playbooks' and the
    actions' defaults."""
    playbooks = load_playbooks().playbooks
    assert playbooks["EC2.19"].parameters == {"ports": EC2_19_PORTS}
    assert validate_params("ec2.revoke-public-high-risk-ingress", {}) == {"ports": EC2_19_PORTS}
    assert validate_params("ec2.revoke-public-admin-ingress", {}) == {"ports": [22, 3389]}


@pytest.fixture
def playbook_dir(tmp_path: Path) -> Path:
    shutil.copytree(default_dir(), tmp_path / "playbooks")
    return tmp_path / "playbooks"


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        (
            "action: ec2.revoke-public-admin-ingress",
            "action: ec2.revoke-public-admin-ingres",
            "remediation",
            "unknown action 'ec2.revoke-public-admin-ingres'",
        ),
        ("ports: [22, 3389]", "ports: [22, 70000]", "remediation", "ports.1"),
        ("ports: [22, 3389]", "port: 22", "remediation", "'port' was unexpected"),
        ("severity: HIGH", "severity: SEVERE", "severity", "'SEVERE' is not one of"),
        ("scope: regional", "scop: regional", "(top level)", "'scop' was unexpected"),
        ("(sg-[0-9a-f]{8,17})$", "sg-[0-9a-f]{8,17}$", "resource.id.pattern", "exactly one capture group"),
        ("also_fixes: [EC2.14]", "also_fixes: [EC2.14, EC2.2]", "", "already routed by"),
        ("risk: >-", "riskk: >-", "(top level)", "'riskk' was unexpected"),
    ],
)
def test_broken_playbook_names_file_field_and_problem(
    playbook_dir: Path, old: str, new: str, field: str, problem: str
) -> None:
    path = playbook_dir / "EC2.13.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(PlaybookError) as raised:
        load_playbooks(playbook_dir)
    message = str(raised.value)
    assert "EC2.13.yaml" in message
    assert field in message
    assert problem in message


def test_a_disruptive_playbook_must_say_what_its_fix_may_break(playbook_dir: Path) -> None:
    """The approval request shows it: a person asked to approve needs to know what may stop working."""
    path = playbook_dir / "EC2.7.yaml"
    path.write_text(path.read_text().replace("disruptive: false", "disruptive: true"))
    with pytest.raises(
        PlaybookError, match=r"EC2\.7\.yaml: risk: a disruptive playbook says what its fix may break"
    ):
        load_playbooks(playbook_dir)


def test_a_load_checks_again_only_the_files_that_changed(
    playbook_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_playbooks(playbook_dir)
    parsed: list[str] = []
    parse = playbooks_module.parse_playbook
    monkeypatch.setattr(
        playbooks_module, "parse_playbook", lambda data, source: parsed.append(source) or parse(data, source)
    )
    again = load_playbooks(playbook_dir)
    assert parsed == []
    assert again.playbooks["EC2.13"] is first.playbooks["EC2.13"]

    path = playbook_dir / "EC2.13.yaml"
    path.write_text(path.read_text().replace("ports: [22, 3389]", "ports: [22]"))
    edited = load_playbooks(playbook_dir)
    assert parsed == [str(path)]
    assert edited.playbooks["EC2.13"].parameters == {"ports": [22]}
    assert edited.playbooks["S3.1"] is first.playbooks["S3.1"]

    path.write_text(path.read_text().replace("severity: HIGH", "severity: SEVERE"))
    with pytest.raises(PlaybookError, match=r"EC2\.13\.yaml: severity: 'SEVERE' is not one of"):
        load_playbooks(playbook_dir)


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (
            lambda d: (d / "EC2.13.yaml").rename(d / "EC2.99.yaml"),
            r"EC2\.99\.yaml: control_id: EC2\.13 must match the file name",
        ),
        (lambda d: (d / "S3.1.yaml").write_text("control_id: [S3.1\n"), r"S3\.1\.yaml: not valid YAML"),
        (lambda d: (d / "EC2.2.yaml").rename(d / "EC2.2.yml"), r"end in \.yaml, not \.yml: EC2\.2\.yml"),
    ],
    ids=["renamed", "not-yaml", "yml"],
)
def test_a_broken_file_is_named(playbook_dir: Path, break_it: Callable[[Path], object], problem: str) -> None:
    """A file asr cannot take is an error naming it, never a playbook silently skipped."""
    break_it(playbook_dir)
    with pytest.raises(PlaybookError, match=problem):
        load_playbooks(playbook_dir)


@pytest.mark.parametrize(
    ("control", "old", "new", "problem"),
    [
        (
            "CloudWatch.16",
            "minRetentionTime:",
            "minRetentionTIme:",
            r"control_parameters\.minRetentionTIme: not a Security Hub parameter of CloudWatch\.16; "
            r"it has \['minRetentionTime'\]",
        ),
        (
            "IAM.7",
            "  RequireSymbols:",
            "  RequireSymbol:",
            r"control_parameters\.RequireSymbol: not a Security Hub parameter of IAM\.10, IAM\.11,",
        ),
        (
            "EC2.13",
            "disruptive:",
            "control_parameters:\n  authorizedTcpPorts: ports\ndisruptive:",
            r"control_parameters\.authorizedTcpPorts: not a Security Hub parameter of EC2\.13, EC2\.14; "
            r"asr knows none",
        ),
    ],
)
def test_a_misspelt_control_parameter_is_refused(
    playbook_dir: Path, control: str, old: str, new: str, problem: str
) -> None:
    """A name Security Hub never sends would load and then silently never apply."""
    path = playbook_dir / f"{control}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PlaybookError, match=rf"{re.escape(control)}\.yaml: {problem}"):
        load_playbooks(playbook_dir)


@pytest.mark.parametrize(
    "repeated", ["disruptive: false\n", "standards:\n  EC2.13:\n    pci-dss/v/3.2.1: [PCI.EC2.5]\n"]
)
def test_a_key_given_twice_names_the_file(playbook_dir: Path, repeated: str) -> None:
    """YAML keeps the last of two keys: a second `disruptive: false` would drop the approval."""
    path = playbook_dir / "EC2.13.yaml"
    path.write_text(path.read_text() + repeated)
    with pytest.raises(PlaybookError, match=r"EC2\.13\.yaml: not valid YAML: .* given twice"):
        load_playbooks(playbook_dir)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d.mkdir(), "holds no playbooks (*.yaml files)"),
        (lambda d: d.mkdir() or (d / "EC2.13.yaml.bak").write_text("x"), "holds no playbooks"),
        (lambda d: None, "is not a folder"),
        (lambda d: d.write_text("control_id: EC2.13\n"), "is not a folder"),
    ],
    ids=["empty", "no-yaml", "missing", "a-file"],
)
def test_a_playbook_folder_setting_that_gives_no_playbooks_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], object], problem: str
) -> None:
    """Loaded as no playbooks, it left every finding "no playbook fixes control ...", and nothing said why."""
    from asr.config import ConfigError

    folder = tmp_path / "playbooks"
    make(folder)
    monkeypatch.setenv("ASR_PLAYBOOK_DIR", str(folder))
    with pytest.raises(ConfigError) as raised:
        load_playbooks()
    assert str(raised.value).startswith(f"ASR_PLAYBOOK_DIR {str(folder)!r} {problem}")


def test_a_folder_given_by_name_may_hold_no_playbooks(tmp_path: Path) -> None:
    """Not through the setting: a caller that asks for a folder's playbooks gets what is there."""
    assert len(load_playbooks(tmp_path)) == 0
    with pytest.raises(PlaybookError, match="playbook directory not found"):
        load_playbooks(tmp_path / "missing")


def test_the_project_folder_is_used_when_the_setting_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_PLAYBOOK_DIR", " ")  # a line of .env left blank
    assert default_dir() == playbooks_module.PROJECT_DIR
    assert set(load_playbooks().playbooks) >= SEED_CONTROLS
