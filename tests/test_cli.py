"""The ``asr`` command line refuses what it cannot do, or would ignore, before it touches
anything, and says why in one line rather than a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from asr import cli


@pytest.fixture
def no_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A port nothing answers on, and a state dir of the test's own: whatever a command
    checks first, it must refuse before it looks for the stand-in."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    monkeypatch.setenv("ASR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("ASR_LOCAL_PORT", str(free))
    return free


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What the command said when it refused these options (argparse, or a SystemExit)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code not in (0, None)
    message = exited.value.code if isinstance(exited.value.code, str) else capsys.readouterr().err
    return " ".join(message.split())


def test_local_up_on_a_port_something_else_holds_says_so_without_a_traceback(
    no_stand_in: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        monkeypatch.setenv("ASR_LOCAL_PORT", str(holder.getsockname()[1]))
        assert cli.main(["local", "up"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("asr local up: port ") and "not the stand-in" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["local", "up", "--count", "3"], "unrecognized arguments: --count 3"),
        (["local", "down", "--reset"], "unrecognized arguments: --reset"),
        (["local", "seed", "--count", "0"], "argument --count: 0 is not a whole number of at least 1"),
        (["local", "seed", "--findings", "0"], "argument --findings: 0 is not a whole number of at least 1"),
        (["local", "seed", "--findings", "9", "--threads", "0"], "argument --threads: 0 is not"),
        (["local", "seed", "--findings", "9", "--account-count", "-1"], "argument --account-count: -1"),
        (
            ["local", "seed", "--accounts", "abc,12345"],
            "argument --accounts: 'abc' is not a 12-digit account id",
        ),
        (["local", "seed", "--regions", "us-east-1,xx-bogus-1"], "argument --regions: 'xx-bogus-1' is not"),
        # Findings name the aws partition; Macie (Macie.1) is not served in every EC2 region.
        (["local", "seed", "--regions", "us-gov-west-1"], "argument --regions: 'us-gov-west-1' is not"),
        (["local", "seed", "--regions", "mx-central-1"], "argument --regions: 'mx-central-1' is not"),
        (["local", "seed", "--securityhub-region", "mars-1"], "argument --securityhub-region: 'mars-1'"),
        (["local", "seed", "--account-count", "3"], "--account-count goes with --findings"),
        (["local", "seed", "--count", "2", "--account-count", "3"], "--account-count goes with --findings"),
        (["local", "seed", "--seed", "7"], "--seed and --threads shape a fleet"),
        (["local", "seed", "--reset", "--threads", "8"], "--seed and --threads shape a fleet"),
        (["local", "seed", "--findings", "9", "--count", "2"], "--findings takes no --count"),
        (
            ["local", "seed", "--findings", "9", "--accounts", "222222222222", "--account-count", "1"],
            "no --account-count",
        ),
        (
            ["setup", "--local", "--endpoint-url", "http://x"],
            "--local takes no --endpoint-url or --admin-role-arn",
        ),
        (
            ["setup", "--local", "--admin-role-arn", "arn:aws:iam::1:role/x"],
            "--local takes no --endpoint-url",
        ),
    ],
)
def test_options_the_command_would_ignore_or_cannot_use_are_refused_before_anything_happens(
    no_stand_in: int, capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    assert problem in refused(argv, capsys)


def test_setup_refuses_a_region_name_that_is_no_region_before_anything_happens(
    no_stand_in: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "argument --region: 'us east 1' is not an AWS region name" in refused(
        ["setup", "--region", "us east 1"], capsys
    )


@pytest.mark.parametrize("how", ["--region", "ASR_SECURITYHUB_REGION"])
def test_setup_local_refuses_a_region_the_stand_in_does_not_serve_before_anything_happens(
    no_stand_in: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """The stand-in answers 500 (an HTML page, after a minute of retries) in such a region."""
    argv = ["setup", "--local"]
    if how == "--region":
        argv += ["--region", "us-eest-1"]
    else:
        monkeypatch.setenv("ASR_SECURITYHUB_REGION", "us-eest-1")
    message = refused(argv, capsys)
    assert "'us-eest-1'" in message and "is not a region the stand-in serves" in message and how in message


@pytest.mark.parametrize("how", ["--region", "ASR_SECURITYHUB_REGION"])
def test_setup_warns_of_a_region_botocore_does_not_know_and_goes_on(
    no_stand_in: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """As a sweep does with ASR_REGIONS: a region newer than botocore is real, a typo is likelier."""
    from asr import setup as installer

    reached: list[str] = []

    def stub(aws: object, region: str, *args: object) -> None:
        reached.append(region)
        raise RuntimeError("stopped here by the test")

    monkeypatch.setattr(installer, "setup", stub)
    argv = ["setup", "--endpoint-url", f"http://127.0.0.1:{no_stand_in}"]
    if how == "--region":
        argv += ["--region", "us-eest-1"]
    else:
        monkeypatch.setenv("ASR_SECURITYHUB_REGION", "us-eest-1")
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    warning = error.splitlines()[0]
    assert warning.startswith("asr setup: warning: region 'us-eest-1'") and how in warning
    assert "no region botocore knows" in warning
    assert reached == ["us-eest-1"] and "stopped here by the test" in error


def test_setup_says_nothing_of_a_region_botocore_knows(
    no_stand_in: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from asr import setup as installer

    def stub(*args: object) -> None:
        raise RuntimeError("stopped here by the test")

    monkeypatch.setattr(installer, "setup", stub)
    endpoint = f"http://127.0.0.1:{no_stand_in}"
    assert cli.main(["setup", "--endpoint-url", endpoint, "--region", "eu-west-1"]) == 1
    assert capsys.readouterr().err == "asr setup: stopped here by the test\n"


def test_local_seed_reset_imports_the_findings_as_the_security_hub_administrator(
    aws: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """--reset forgets the stand-in's STS sessions too: the administrator's role must be assumed
    after it, or the findings go to moto's default account, and a sweep reads none."""
    from asr.local import ADMIN_ACCOUNT
    from asr.securityhub import iter_findings

    assert cli.main(["local", "seed", "--controls", "EC2.19,EC2.13", "--count", "2"]) == 0
    assert cli.main(["local", "seed", "--reset", "--controls", "EC2.19", "--count", "3"]) == 0
    assert "imported 3 findings" in capsys.readouterr().out
    admin = cli.local_context()  # the sessions of the test's own context went with the reset
    caller = admin.admin_client("sts", "us-east-1").get_caller_identity()
    assert caller["Account"] == ADMIN_ACCOUNT
    found = list(iter_findings(admin.admin_client("securityhub", "us-east-1"), [{}]))
    assert len(found) == 3  # what the second seed imported, and nothing of the first
    assert {f["Compliance"]["SecurityControlId"] for f in found} == {"EC2.19"}


SG = "arn:aws:ec2:us-east-1:222222222222:security-group/sg-0123456789abcdef0"


@pytest.fixture
def findings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One EC2.13 finding, in 222222222222 and us-east-1, and settings of the test's own."""
    import json
    import os

    from asr.local.seed import Seeded, finding

    for name in [
        n for n in os.environ if n.startswith("ASR_") and n not in ("ASR_STATE_DIR", "ASR_LOCAL_PORT")
    ]:
        monkeypatch.delenv(name)
    path = tmp_path / "findings.json"
    path.write_text(
        json.dumps([finding(Seeded("EC2.13", "222222222222", "us-east-1", "AwsEc2SecurityGroup", SG))])
    )
    return path


def explained(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]], str]:
    import json

    code = cli.main(["explain", str(path)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ASR_REGIONS", "us east 1"),
        ("ASR_ACCOUNTS", "2222"),
        ("ASR_BATCH_SIZE", "0"),
        ("ASR_EXCLUDE_CONTROLS", "ec2.13"),
    ],
)
def test_explain_says_a_setting_is_broken_on_stderr_and_prints_no_line(
    findings_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    value: str,
) -> None:
    monkeypatch.setenv(setting, value)
    code, lines, error = explained(findings_file, capsys)
    assert (code, lines) == (1, [])
    assert error.startswith("asr: ") and setting in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("settings", "said", "reason"),
    [
        ({"ASR_ACCOUNTS": "333333333333"}, "error", "account 222222222222 is not one asr may act in"),
        (
            {"ASR_REGIONS": "eu-west-1,us-west-2"},
            "error",
            "region us-east-1 is not one asr may act in (ASR_REGIONS)",
        ),
        (
            {"ASR_EXCLUDE_ACCOUNTS": "222222222222"},
            "excluded",
            "the account is excluded (ASR_EXCLUDE_ACCOUNTS)",
        ),
        ({"ASR_EXCLUDE_CONTROLS": "EC2.13"}, "excluded", "control EC2.13 is excluded (ASR_EXCLUDE_CONTROLS)"),
    ],
)
def test_explain_judges_a_finding_by_the_scope_as_the_sweep_does(
    findings_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, str],
    said: str,
    reason: str,
) -> None:
    """Outside what asr may act on: rejected with the sweep's reason (exit 1). Excluded:
    routed, as the sweep routes it, but marked excluded, which is no rejection (exit 0)."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    code, [line], _ = explained(findings_file, capsys)
    assert (code, line[said]) == (1 if said == "error" else 0, reason)
    prefix = "arn:aws:securityhub:us-east-1:222222222222:security-control/EC2.13/finding/"
    assert str(line["finding_id"]).startswith(prefix)
    assert said == "error" or (line["playbook"] == "EC2.13" and "error" not in line)


def test_explain_routes_a_finding_within_the_settings_and_names_what_it_cannot_check_offline(
    findings_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ASR_ACCOUNTS", "222222222222")
    monkeypatch.setenv("ASR_REGIONS", "us-east-1,us-eest-1")
    code, lines, error = explained(findings_file, capsys)
    assert code == 0 and len(lines) == 1
    assert "error" not in lines[0] and "excluded" not in lines[0] and lines[0]["playbook"] == "EC2.13"
    assert "'us-eest-1'" in error and "no region botocore knows" in error  # as a sweep's log says
    # The organization's members may include the account: explain reads no AWS, so it cannot tell.
    monkeypatch.setenv("ASR_ACCOUNTS", "333333333333")
    monkeypatch.setenv("ASR_ACCOUNTS_FROM_ORGANIZATION", "on")
    code, lines, error = explained(findings_file, capsys)
    assert code == 0 and "error" not in lines[0]
    assert "ASR_ACCOUNTS_FROM_ORGANIZATION" in error and "not read" in error


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_explain_into_a_pipe_closed_early_exits_without_a_traceback(tmp_path: Path, unbuffered: str) -> None:
    """`asr explain findings.json | head -3`: head closes the pipe while asr still writes (its
    output buffered, as in a shell, or not, as PYTHONUNBUFFERED makes it)."""
    import json
    import os
    import subprocess
    import sys

    path = tmp_path / "findings.json"
    path.write_text(json.dumps([{"Id": f"finding-{n}"} for n in range(20000)]))  # ~2 MB of lines
    asr = Path(sys.executable).with_name("asr")
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    with subprocess.Popen(
        [str(asr), "explain", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as run:
        assert run.stdout is not None and run.stderr is not None
        first = [run.stdout.readline() for _ in range(3)]
        run.stdout.close()
        error = run.stderr.read().decode()
        code = run.wait(timeout=60)
    assert all(json.loads(line)["error"] for line in first)
    assert error == ""
    assert code == 1


def test_explain_says_a_finding_a_person_decided_about_is_left_alone_by_sweeps(
    findings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollback's mark or a rejection's hold: routed, but a sweep leaves it alone (IGNORED)."""
    import json

    [finding] = json.loads(findings_file.read_text())
    rolled_back = finding | {"UserDefinedFields": {"asr:reverted": "asr_rollback/manual__1"}}
    held = finding | {
        "Workflow": {"Status": "NOTIFIED"},
        "UserDefinedFields": {"asr:rejected-until": "2999-01-01T00:00:00+00:00"},
    }
    findings_file.write_text(json.dumps([rolled_back, held, finding]))
    code, lines, _ = explained(findings_file, capsys)
    assert code == 0 and all(line["playbook"] == "EC2.13" for line in lines)
    assert "rolled back" in lines[0]["left_alone"] and "asr_rollback/manual__1" in lines[0]["left_alone"]
    assert "rejected its fix" in lines[1]["left_alone"] and "2999-01-01" in lines[1]["left_alone"]
    assert "left_alone" not in lines[2]
