"""asr, the command line of ASR on Airflow: how findings would be routed, what the playbooks
cover, the IAM policies they need, the Security Hub events set-up, and the local stand-in and
demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from asr import local
from asr.config import ACCOUNT_RE, REGION_RE

if TYPE_CHECKING:
    from asr.guard import Scope
    from asr.local.seed import FleetSpec
    from asr.setup import SetupResult


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _at_least_one(text: str) -> int:
    """A count of 1 or more: 0 would ask for no fleet at all."""
    if not (text.isascii() and text.isdecimal()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return int(text)


def _accounts(text: str) -> list[str]:
    """Account ids as asr reads them: a finding in any other account would be refused."""
    accounts = _csv(text)
    for account in accounts:
        if not ACCOUNT_RE.fullmatch(account):
            raise argparse.ArgumentTypeError(f"{account!r} is not a 12-digit account id")
    return accounts


def _region(text: str) -> str:
    """Checked before anything is reset: in a region it does not serve, the stand-in fails."""
    from asr.local.seed import stand_in_regions

    if text not in stand_in_regions():
        raise argparse.ArgumentTypeError(f"{text!r} is not a region the stand-in serves (e.g. us-east-1)")
    return text


def _regions(text: str) -> list[str]:
    return [_region(region) for region in _csv(text)]


def _region_name(text: str) -> str:
    """A region's name as ASR_REGIONS must write it; whether it is one AWS has is checked later."""
    if not REGION_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region name (e.g. us-east-1)")
    return text


def local_context(region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    """An AWS context against the running stand-in, as its Security Hub administrator."""
    from asr.aws import AwsContext
    from asr.config import Settings

    local.use_test_credentials()
    role = Settings.from_env().member_role_name
    return AwsContext.from_endpoint(local.endpoint_url(), role, region, admin_role_arn=local.ADMIN_ROLE_ARN)


def cmd_local(args: argparse.Namespace) -> int:
    if args.action == "up":
        try:
            endpoint = local.up()
        except RuntimeError as exc:
            print(f"asr local up: {exc}", file=sys.stderr)
            return 1
        print(f"local AWS stand-in at {endpoint}")
    elif args.action == "down":
        if local.down():
            print("stopped")
        elif local.is_up():  # started from another folder: its pid file is in that ASR_STATE_DIR
            print(
                f"asr local down: a stand-in answers at {local.endpoint_url()}, but {local.state_dir()} "
                "(ASR_STATE_DIR) names none this project started: run it where the stand-in was "
                "started, or with that ASR_STATE_DIR",
                file=sys.stderr,
            )
            return 1
        else:
            print("was not running")
    elif args.action == "seed":
        return seed(args)
    return 0


DEFAULT_RNG_SEED = 1
DEFAULT_THREADS = 4


def seed(args: argparse.Namespace) -> int:
    """Seed the stand-in; a refusal or an AWS error is one line naming it, and exit 1."""
    import requests
    from botocore.exceptions import BotoCoreError, ClientError

    from asr.config import ConfigError, Settings
    from asr.remediate import describe_error

    spec = fleet(args)  # a fleet that cannot be made changes nothing
    if not local.is_up():
        raise SystemExit(f"the stand-in does not answer at {local.endpoint_url()}: run 'asr local up'")
    try:
        Settings.from_env()  # a bad setting stops it before the reset
        if args.reset:  # before the administrator's role is assumed: it forgets the stand-in's sessions too
            local.reset()
        aws = local_context(args.securityhub_region)
        _seed(args, spec, aws)
    except (ConfigError, ClientError, BotoCoreError, RuntimeError, requests.RequestException) as exc:
        print(f"asr local seed: {describe_error(exc)}", file=sys.stderr)
        return 1
    return 0


def _seed(args: argparse.Namespace, spec: FleetSpec | None, aws: Any) -> None:
    from asr.local import seed as seeding

    securityhub = aws.admin_client("securityhub", args.securityhub_region)
    if spec is None:
        findings = [seeding.finding(s) for s in seeding.seed_scenarios(aws)]
        imported = seeding.import_findings(securityhub, findings)
        print(f"seeded {len(findings)} misconfigured resources; imported {imported} findings")
        return
    rng_seed = DEFAULT_RNG_SEED if args.seed is None else args.seed
    findings = seeding.seed_spec(aws, spec, rng_seed, args.threads or DEFAULT_THREADS)
    imported = seeding.import_findings(securityhub, findings)
    made = [f"{c} {n}" for c, n in spec.regional.items()]
    made += [f"{c} one per account-region" for c in spec.account_regional]
    made += [f"{c} one per account" for c in spec.account_wide]
    print(
        f"seeded {spec.total} misconfigured resources over {len(spec.accounts)} accounts x "
        f"{len(spec.regions)} regions ({', '.join(made)}); imported {imported} findings"
    )


def fleet(args: argparse.Namespace) -> FleetSpec | None:
    """The fleet the options ask for (None: the README's scenarios), or a clear refusal of an
    option that fleet would ignore: ``--findings`` mixed and spread over ``--accounts`` or
    ``--account-count`` generated ones, or ``--count`` of each control per account-region."""
    from asr.local import seed as seeding

    try:
        if args.findings is not None:
            if args.count is not None or (args.accounts and args.account_count is not None):
                raise SystemExit(
                    "asr local seed: --findings takes no --count, and --accounts no --account-count"
                )
            return seeding.fleet_spec(
                args.findings,
                args.accounts or seeding.account_ids(args.account_count or 1),
                args.regions or seeding.FLEET_REGIONS[:1],
                seeding.parse_mix(args.controls),
            )
        if args.account_count is not None:
            raise SystemExit("asr local seed: --account-count goes with --findings (else name --accounts)")
        if args.accounts or args.regions or args.controls or args.count is not None:
            return seeding.count_spec(
                args.accounts or [local.MEMBER_ACCOUNT],
                args.regions or [seeding.DEFAULT_REGION],
                args.controls or [c for c, _ in seeding.SCENARIOS],
                args.count or 1,
            )
    except ValueError as exc:
        raise SystemExit(f"asr local seed: {exc}") from None
    if args.seed is not None or args.threads is not None:
        raise SystemExit(
            "asr local seed: --seed and --threads shape a fleet (--findings, or --accounts, --regions, "
            "--controls, --count); the README's scenarios take neither"
        )
    return None


def cmd_explain(args: argparse.Namespace) -> int:
    """One JSON line per finding, in input order; non-zero when any finding is rejected.

    Judged as a sweep's ingest judges it, by the ``ASR_*`` settings (a broken one: main says so,
    and no line is printed) and the scope they give, offline: what needs AWS (the organization's
    members and OUs, exclusion tags) is not read, and standard error says so."""
    import json

    from asr.config import Settings
    from asr.findings import explain, findings_in
    from asr.guard import Scope
    from asr.playbooks import registry
    from asr.sweep import held

    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
        document = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"asr explain: cannot read findings from {args.file}: {exc}", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    playbooks = registry()
    scope = Scope.of_settings(settings)
    for warning in settings.warnings():
        print(f"asr explain: warning: {warning}", file=sys.stderr)
    unread = [
        name
        for name, needs_aws in (
            ("ASR_ACCOUNTS_FROM_ORGANIZATION", settings.accounts_from_organization),
            ("ASR_EXCLUDE_OUS", settings.exclude_ous),
            ("ASR_EXCLUDE_TAG", settings.exclude_tag),
        )
        if needs_aws
    ]
    if unread:
        print(
            f"asr explain: note: {', '.join(unread)} need AWS, which explain does not read: "
            "findings are not checked against them",
            file=sys.stderr,
        )
    rejected = 0
    for finding in findings_in(document):
        line = _in_scope(explain(finding, playbooks), scope)
        why = None if "error" in line or not isinstance(finding, dict) else held(finding)
        line |= {"left_alone": why} if why else {}
        rejected += "error" in line
        print(json.dumps(line))
    return 1 if rejected else 0


def _in_scope(line: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """An explained finding as ingest leaves it: outside what asr may act on, rejected with
    the sweep's reason; excluded, routed with ``excluded`` and why (a sweep marks it NOTIFIED)."""
    import dataclasses

    from asr.findings import RoutingRecord
    from asr.remediate import Status

    if "error" in line:
        return line
    record = RoutingRecord.from_dict({f.name: line[f.name] for f in dataclasses.fields(RoutingRecord)})
    verdict = scope.check(record)
    if verdict is None:
        return line
    if verdict[0] == Status.REJECTED:
        return {"finding_id": record.finding_id, "error": verdict[1]}
    return line | {"excluded": verdict[1]}


def cmd_coverage(args: argparse.Namespace) -> int:
    """Print the coverage table, or write it to docs/coverage.md."""
    from asr import coverage
    from asr.playbooks import registry

    table = coverage.render(registry())
    if args.write:
        coverage.TABLE.write_text(table)
        print(f"wrote {coverage.TABLE}")
    else:
        print(table, end="")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    """Print the IAM policies or the member-role template for this deployment's settings, or write
    the reference copy under deploy/ (from the product's defaults, whatever the environment says)."""
    import os

    from asr import iam_policy
    from asr.config import ConfigError, Settings
    from asr.playbooks import PlaybookError, registry

    try:
        if args.write:
            print(f"wrote {iam_policy.write(args.kind, registry())}")
        else:
            print(iam_policy.generate(args.kind, registry(), Settings.from_env(), os.environ), end="")
    except (ConfigError, PlaybookError, iam_policy.PolicyError) as exc:
        print(f"asr policy: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_setup_steps(result: SetupResult, file: TextIO) -> None:
    """What a run of ``asr setup`` did: printed when it ends, and when a step fails, so the
    person knows what is already in place."""
    for label, items in (
        ("created", result.created),
        ("updated", result.updated),
        ("removed", result.removed),
        ("already in place", result.found),
        ("note", result.notes),
    ):
        for item in items:
            print(f"{label}: {item}", file=file)


def cmd_setup(args: argparse.Namespace) -> int:
    """Create or find the custom action, queue and rules that feed asr_events; print what changed,
    also when a step fails, with what to do."""
    import dataclasses
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    from asr import setup as installer
    from asr.aws import AwsContext
    from asr.config import Settings, unknown_regions

    if args.local and (args.endpoint_url or args.admin_role_arn):
        raise SystemExit(
            "asr setup: --local takes no --endpoint-url or --admin-role-arn: "
            "it reaches the stand-in as its Security Hub administrator"
        )
    failed: installer.SetupIncomplete | None = None
    try:
        settings = Settings.from_env()
        region = args.region or settings.securityhub_region
        named_by = "--region" if args.region else "ASR_SECURITYHUB_REGION"
        if args.local:
            from asr.local.seed import stand_in_regions

            if region not in stand_in_regions():  # it would answer 500, after a minute of retries
                raise SystemExit(
                    f"asr setup: {region!r} ({named_by}) is not a region the stand-in serves (e.g. us-east-1)"
                )
            if not local.is_up():
                raise SystemExit(
                    f"the stand-in does not answer at {local.endpoint_url()}: run 'asr local up'"
                )
        for unknown in unknown_regions([region]):  # as a sweep says of ASR_REGIONS, and goes on
            print(
                f"asr setup: warning: region {unknown!r} ({named_by}) is no region botocore knows: "
                "a typo? (A region newer than botocore is used as named.)",
                file=sys.stderr,
            )
        if args.local:
            aws = local_context(region)
        else:
            aws = AwsContext.from_endpoint(
                args.endpoint_url, settings.member_role_name, region, admin_role_arn=args.admin_role_arn
            )
        queue_name = args.queue_name or installer.DEFAULT_QUEUE_NAME
        result = installer.setup(aws, region, queue_name, args.auto_controls)
    except installer.SetupIncomplete as exc:
        failed, result = exc, exc.result
    except (ClientError, BotoCoreError, ValueError, RuntimeError) as exc:
        print(f"asr setup: {exc}", file=sys.stderr)
        return 1
    if args.json:
        failure = {"error": str(failed.error), "failed_step": failed.step} if failed else {}
        print(json.dumps({**dataclasses.asdict(result), "changed": result.changed, **failure}, indent=2))
        return 1 if failed else 0
    if failed:
        print(f"asr setup: {failed}", file=sys.stderr)
        _print_setup_steps(result, sys.stderr)
        print(
            "mend the cause above and run 'asr setup' again: it keeps what is in place, "
            "makes nothing twice and does the rest",
            file=sys.stderr,
        )
        return 1
    _print_setup_steps(result, sys.stdout)
    print(f"custom action: {result.action_target_arn}")
    print(f"rules: {', '.join(result.rule_names)}")
    print(f"queue ARN: {result.queue_arn}")
    print(f"dead-letter queue: {result.dead_letter_queue_url}")
    print(f"ASR_EVENTS_QUEUE_URL={result.queue_url}")
    if result.changed:
        print(f"{len(result.created)} created, {len(result.updated)} updated, {len(result.removed)} removed")
    else:
        print("nothing to change: everything was already in place")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from asr import demo

    return demo.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local_parser = commands.add_parser("local", help="the local AWS stand-in (moto server)")
    local_parser.set_defaults(func=cmd_local)
    actions = local_parser.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="start it on 127.0.0.1, port ASR_LOCAL_PORT, unless it answers there")
    actions.add_parser("down", help="stop the stand-in 'asr local up' started")
    seed_parser = actions.add_parser(
        "seed", help="misconfigured resources and their findings (default: the README's scenarios)"
    )
    seed_parser.add_argument("--accounts", type=_accounts, default=[], help="comma-separated account ids")
    seed_parser.add_argument("--regions", type=_regions, default=[], help="comma-separated regions")
    seed_parser.add_argument(
        "--controls",
        type=_csv,
        default=[],
        help="comma-separated control ids; with --findings, CONTROL[:WEIGHT] (default: a realistic mix)",
    )
    seed_parser.add_argument(
        "--count", type=_at_least_one, help="resources per control, account, region (default: 1)"
    )
    seed_parser.add_argument(
        "--findings", type=_at_least_one, help="a fleet of exactly this many, mixed and spread (e.g. 10000)"
    )
    seed_parser.add_argument(
        "--account-count",
        type=_at_least_one,
        help="with --findings and no --accounts: this many generated accounts (default: 1)",
    )
    seed_parser.add_argument(
        "--seed",
        type=int,
        help=(
            f"the order a fleet's findings are imported in (default: {DEFAULT_RNG_SEED}); the mix "
            "and order repeat, resource names and ids are new each time"
        ),
    )
    seed_parser.add_argument(
        "--threads",
        type=_at_least_one,
        help=f"a fleet's accounts seeded at once (default: {DEFAULT_THREADS})",
    )
    seed_parser.add_argument("--securityhub-region", type=_region, default="us-east-1")
    seed_parser.add_argument("--reset", action="store_true", help="forget everything first")

    explain_parser = commands.add_parser(
        "explain", help="how findings would be routed: one JSON line each, or why not"
    )
    explain_parser.add_argument("file", help="a JSON file of findings, or - for standard input")
    explain_parser.set_defaults(func=cmd_explain)

    coverage_parser = commands.add_parser("coverage", help="which reference control ids we fix, and how")
    coverage_parser.add_argument("--write", action="store_true", help="write docs/coverage.md")
    coverage_parser.set_defaults(func=cmd_coverage)

    policy_parser = commands.add_parser(
        "policy", help="the IAM policies of the member and administrator roles, and the member-role template"
    )
    policy_parser.add_argument(
        "kind",
        choices=["member", "admin", "template"],
        help="member: the member role's managed policies (JSON); admin: the Airflow identity's policies "
        "(JSON); template: CloudFormation for the member role (YAML, for StackSets)",
    )
    policy_parser.add_argument(
        "--write", action="store_true", help="write the reference copy under deploy/ instead of printing"
    )
    policy_parser.set_defaults(func=cmd_policy)

    setup_parser = commands.add_parser(
        "setup", help="create the Security Hub custom action, SQS queue and EventBridge rules for asr_events"
    )
    setup_parser.add_argument(
        "--region",
        type=_region_name,
        help="the Security Hub administrator's (aggregation) region (default: ASR_SECURITYHUB_REGION)",
    )
    setup_parser.add_argument("--queue-name", help="default: asr-security-hub-events")
    setup_parser.add_argument(
        "--auto-controls",
        type=_csv,
        default=None,
        help="comma-separated control ids for the Imported rule (default: playbooks with auto_remediate)",
    )
    setup_parser.add_argument("--endpoint-url", default=None, help="one endpoint for every AWS service")
    setup_parser.add_argument("--admin-role-arn", default=None, help="assume this role first")
    setup_parser.add_argument("--local", action="store_true", help="against the running local stand-in")
    setup_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    setup_parser.set_defaults(func=cmd_setup)

    demo_parser = commands.add_parser("demo", help="seed the stand-in and run asr_sweep through Airflow")
    demo_parser.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from asr.config import ConfigError
    from asr.playbooks import PlaybookError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a reader that went away is caught, not at exit
        return code
    except (ConfigError, PlaybookError) as exc:  # a setting or a playbook: named, not a traceback
        print(f"asr: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (asr explain ... | head): nothing to say to it
        _stdout_to_devnull()
        return 1


def _stdout_to_devnull() -> None:
    """Point standard output at devnull, so the interpreter's flush at exit, of what the closed
    pipe did not take, raises no second BrokenPipeError (Python's docs, "Note on SIGPIPE")."""
    import os

    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture): nothing to flush at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
