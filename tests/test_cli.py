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
