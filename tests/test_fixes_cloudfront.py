"""CloudFront.1 and .12: the default root object, and origins of missing buckets repointed,
each through a whole-configuration update under its ETag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from helpers import assert_extracted_id, hooked
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local, report
from asr.actions import ActionError, ChangedMeanwhile, NotReversible, cloudfront
from asr.actions.cloudfront import RepointMissingS3Origins, SetDefaultRootObject, bucket_of
from asr.audit import REVERT, AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.local.seeders.cloudfront import CACHING_OPTIMIZED
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch
from asr.rollback import Rollback, RollbackStatus
from asr.store import RunStore

REGION = "us-east-1"
ARN = f"arn:aws:cloudfront::{MEMBER_ACCOUNT}:distribution"


@pytest.fixture(autouse=True)
def no_conflict_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after a conflict at once: the pauses are for real contention, not for tests."""
    for action in (SetDefaultRootObject, RepointMissingS3Origins):
        monkeypatch.setattr(action, "conflict_pauses", (0.0, 0.0, 0.0))


def fix(
    aws: Any, resource_arn: str, region: str = REGION, control: str = "CloudFront.1", **params: Any
) -> Result:
    """Run the control's playbook (with ``params`` over its own) on the distribution its finding names."""
    playbook = registry().playbooks[control]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, region), resource_id
    )


def make_distribution(clients: Clients, name: str, **settings: Any) -> str:
    """A distribution with a custom origin and ``settings`` over the defaults; its ARN."""
    config = {
        "CallerReference": name,
        "Comment": name,
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "app",
                    "DomainName": "app.example.com",
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                        "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "app",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": CACHING_OPTIMIZED,
        },
        **settings,
    }
    return str(clients.cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["ARN"])


def config_of(clients: Clients, distribution_id: str) -> tuple[dict[str, Any], str]:
    answer = clients.cloudfront.get_distribution_config(Id=distribution_id)
    return answer["DistributionConfig"], answer["ETag"]


def seeded(aws: Any) -> tuple[str, str, Clients]:
    """The seeded distribution: its ARN, its id, and clients that reach it."""
    arn = seed_one(aws, "CloudFront.1", MEMBER_ACCOUNT, REGION).resource_id
    return arn, arn.rsplit("/", 1)[1], Clients(aws, MEMBER_ACCOUNT, REGION)


def exclaim(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "Comment": f"{config['Comment']}!"}


class Rival:
    """Another writer: just before each UpdateDistribution the fix sends (after its read), it
    updates the distribution itself with ``change(config)``, ``times`` times at most."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.change: Callable[[dict[str, Any]], dict[str, Any]] = exclaim
        self.times = 0
        self.updates = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.updates < self.times:
            answer = self.client.get_distribution_config(Id=params["Id"])
            new = self.change(answer["DistributionConfig"])
            self.client.update_distribution(Id=params["Id"], IfMatch=answer["ETag"], DistributionConfig=new)
            self.updates += 1


@pytest.fixture
def rival(aws: Any) -> Iterator[Rival]:
    """A rival with its own client (another Region's: CloudFront is global), set off by the
    fix's client."""
    fixing = aws.client("cloudfront", MEMBER_ACCOUNT, REGION)
    rival = Rival(aws.client("cloudfront", MEMBER_ACCOUNT, "us-west-2"))
    fixing.meta.events.register("provide-client-params.cloudfront.UpdateDistribution", rival)
    yield rival
    fixing.meta.events.unregister("provide-client-params.cloudfront.UpdateDistribution", rival)


def test_fix_sends_the_configuration_back_whole_with_only_the_root_object(aws: Any) -> None:
    arn, distribution_id, clients = seeded(aws)
    before, etag = config_of(clients, distribution_id)
    assert before["DefaultRootObject"] == ""
    assert "S3OriginConfig" in before["Origins"]["Items"][0], (
        "the seed has an S3 origin, as the control checks"
    )
    local.served_requests(clear=True)
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        result = fix(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"DefaultRootObject": ""},
        {"DefaultRootObject": "index.html"},
    ), result.message
    wanted = {**before, "DefaultRootObject": "index.html"}
    assert sent == [{"Id": distribution_id, "IfMatch": etag, "DistributionConfig": wanted}]
    after, new_etag = config_of(clients, distribution_id)
    assert after == wanted
    assert new_etag != etag
    assert_permissions_cover_served_calls("CloudFront.1")


def test_a_custom_origin_distribution_keeps_its_settings(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_distribution(
        clients,
        "shop",
        PriceClass="PriceClass_100",
        Logging={
            "Enabled": True,
            "IncludeCookies": False,
            "Bucket": "logs.s3.amazonaws.com",
            "Prefix": "cf/",
        },
    )
    distribution_id = arn.rsplit("/", 1)[1]
    before, _ = config_of(clients, distribution_id)
    assert fix(aws, arn).status == Status.REMEDIATED
    assert config_of(clients, distribution_id)[0] == {**before, "DefaultRootObject": "index.html"}


def test_the_root_object_comes_from_the_parameter(aws: Any) -> None:
    arn, distribution_id, clients = seeded(aws)
    result = fix(aws, arn, root_object="site/home.html")
    assert result.status == Status.REMEDIATED, result.message
    assert result.message == "set the CloudFront distribution's default root object to site/home.html"
    assert config_of(clients, distribution_id)[0]["DefaultRootObject"] == "site/home.html"


def test_clients_of_any_region_reach_the_global_distribution(aws: Any) -> None:
    arn, distribution_id, clients = seeded(aws)
    assert fix(aws, arn, region="eu-west-1").status == Status.REMEDIATED
    assert config_of(clients, distribution_id)[0]["DefaultRootObject"] == "index.html"


@pytest.mark.parametrize("root_object", ["index.html", "home/start.htm"])
def test_a_distribution_with_a_root_object_is_left_alone(aws: Any, root_object: str) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_distribution(clients, "shop", DefaultRootObject=root_object)
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT
    assert [c["action"] for c in local.served_requests() if c["service"] == "cloudfront"] == [
        "GetDistributionConfig"
    ]
    assert config_of(clients, arn.rsplit("/", 1)[1])[0]["DefaultRootObject"] == root_object


@pytest.mark.parametrize(
    "root_object",
    ["/index.html", "", "my page.html", "index.html\n", "a" * 256],
    ids=["leading-slash", "empty", "space", "newline", "too-long"],
)
def test_a_root_object_that_is_not_an_object_key_is_refused(root_object: str) -> None:
    with pytest.raises(ActionError, match="root_object"):
        registry().playbooks["CloudFront.1"].build_action({"root_object": root_object})


def test_an_update_in_between_is_read_again_and_kept(aws: Any, rival: Rival) -> None:
    """PreconditionFailed: the fix reads the rival's configuration and sends that back, changed."""
    arn, distribution_id, clients = seeded(aws)
    rival.times = 1
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    after, etag = config_of(clients, distribution_id)
    assert (after["DefaultRootObject"], after["Comment"]) == (
        "index.html",
        "asr seed: no default root object!",
    )
    assert [s["DistributionConfig"]["Comment"].endswith("!") for s in sent] == [False, True]
    assert sent[0]["IfMatch"] != sent[1]["IfMatch"] != etag


def test_a_distribution_that_keeps_changing_fails_clearly_and_unchanged(aws: Any, rival: Rival) -> None:
    arn, distribution_id, clients = seeded(aws)
    rival.times = 10
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert result.message == (
        f"ConcurrentUpdate: distribution {distribution_id} was updated by someone else between each "
        "of 4 reads and updates (PreconditionFailed): not changed; run the fix again once those "
        "updates are done"
    )
    assert result.before == {"DefaultRootObject": ""}
    assert len(sent) == rival.updates == 4
    after, _ = config_of(clients, distribution_id)
    assert (after["DefaultRootObject"], after["Comment"]) == ("", "asr seed: no default root object!!!!")


def test_a_root_object_set_in_between_is_kept_and_not_called_the_fixs(aws: Any, rival: Rival) -> None:
    """Another writer's root object is theirs: not REMEDIATED (with a before-state a rollback
    would put back, deleting it), but made compliant by another change."""
    arn, distribution_id, clients = seeded(aws)
    rival.times, rival.change = 1, lambda config: {**config, "DefaultRootObject": "start.html"}
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        result = fix(aws, arn)
    assert len(sent) == 1, "the read after the conflict finds a root object: nothing more to send"
    assert (result.status, result.before, result.after) == (Status.ALREADY_COMPLIANT, None, None)
    assert "made compliant by another change first" in result.message
    assert config_of(clients, distribution_id)[0]["DefaultRootObject"] == "start.html"


def test_revert_puts_the_empty_root_object_back_and_keeps_the_rest(aws: Any) -> None:
    arn, distribution_id, clients = seeded(aws)
    before, _ = config_of(clients, distribution_id)
    result = fix(aws, arn)
    assert result.before is not None
    action = registry().playbooks["CloudFront.1"].build_action()
    _, etag = config_of(clients, distribution_id)
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        action.revert(clients, distribution_id, result.before)
        action.revert(clients, distribution_id, result.before)  # already back: nothing sent
    assert sent == [{"Id": distribution_id, "IfMatch": etag, "DistributionConfig": before}]
    assert config_of(clients, distribution_id)[0] == before


def test_a_missing_distribution_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{ARN}/E0000000000000")
    assert result.status == Status.FAILED
    assert result.message.startswith("NoSuchDistribution:")


def test_an_update_cloudfront_refuses_fails_with_its_reason() -> None:
    """CloudFront checks the root object's name; the stand-in takes any."""
    client = boto3.client(
        "cloudfront", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    config = {
        "CallerReference": "shop",
        "Comment": "",
        "Enabled": True,
        "DefaultRootObject": "",
        "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "app.example.com"}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all"},
    }
    answer = {"DistributionConfig": config, "ETag": "E1"}
    stubber = Stubber(client)
    stubber.add_response("get_distribution_config", answer, {"Id": "E2SHOP"})
    stubber.add_response("get_distribution_config", answer, {"Id": "E2SHOP"})
    stubber.add_client_error(
        "update_distribution",
        service_error_code="InvalidDefaultRootObject",
        service_message="The default root object file name is too big or contains an invalid character.",
        http_status_code=400,
        expected_params={"Id": "E2SHOP", "IfMatch": "E1", "DistributionConfig": ANY},
    )
    stubber.add_response("get_distribution_config", answer, {"Id": "E2SHOP"})
    stubber.activate()
    clients = SimpleNamespace(cloudfront=client, account_id=MEMBER_ACCOUNT, region=REGION)
    action = registry().playbooks["CloudFront.1"].build_action({"root_object": "a<b>.html"})
    result = remediate_resource(action, clients, "E2SHOP")  # type: ignore[arg-type]
    assert (result.status, result.message) == (
        Status.FAILED,
        "InvalidDefaultRootObject: The default root object file name is too big or contains an "
        "invalid character.",
    )
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("resource_arn", "distribution_id"),
    [
        (f"{ARN}/E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
        (f"arn:aws-cn:cloudfront::{MEMBER_ACCOUNT}:distribution/E1A2B3C4D5E6F7", "E1A2B3C4D5E6F7"),
        (f"{ARN}/e2qwruhapomqzl", None),
        (f"{ARN}/", None),
        (f"{ARN}/E2QWRUHAPOMQZL/extra", None),
        (f"arn:aws:cloudfront::{MEMBER_ACCOUNT}:streaming-distribution/E2QWRUHAPOMQZL", None),
        (f"arn:aws:cloudfront:us-east-1:{MEMBER_ACCOUNT}:distribution/E2QWRUHAPOMQZL", None),
    ],
)
def test_the_distribution_id_is_taken_from_its_arn(resource_arn: str, distribution_id: str | None) -> None:
    assert_extracted_id("CloudFront.1", resource_arn, distribution_id)


def test_the_playbook_is_disruptive_and_never_automatic() -> None:
    """So a sweep waits for a person (tests/test_approvals.py) and an Imported event never fixes it."""
    playbook = registry().playbooks["CloudFront.1"]
    assert (playbook.scope, playbook.disruptive, playbook.auto_remediate) == ("global", True, False)
    assert playbook.parameters == {"root_object": "index.html"}


# --- CloudFront.12: origins whose S3 bucket does not exist, pointed at a placeholder

CF12 = "CloudFront.12"
PLACEHOLDER = "cloudfront12remediation.example"
# How a repointed S3 origin reaches the placeholder (a custom origin's own settings are kept).
PLACEHOLDER_ORIGIN = {
    "HTTPPort": 80,
    "HTTPSPort": 443,
    "OriginProtocolPolicy": "https-only",
    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
    "OriginReadTimeout": 30,
    "OriginKeepaliveTimeout": 5,
}


# What a result says of the shop's origin whose bucket answers 403.
REFUSED_NOTE = (
    "the buckets of origins partner (bucket partner-media) refuse this account (403): another "
    "account holds them (perhaps one that took a deleted bucket's name and serves through this "
    "distribution now), or their policy refuses this role; not repointed: check who owns them"
)


def s3_origin(origin_id: str, host: str, **more: Any) -> dict[str, Any]:
    return {"Id": origin_id, "DomainName": host, "S3OriginConfig": {"OriginAccessIdentity": ""}, **more}


def custom_origin(origin_id: str, host: str, policy: str = "https-only") -> dict[str, Any]:
    return {
        "Id": origin_id,
        "DomainName": host,
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": policy},
    }


def with_origins(clients: Clients, name: str, *origins: dict[str, Any]) -> str:
    """A distribution of these origins, its default behaviour on the first: its id."""
    arn = make_distribution(
        clients,
        name,
        Origins={"Quantity": len(origins), "Items": list(origins)},
        DefaultCacheBehavior={
            "TargetOriginId": origins[0]["Id"],
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": CACHING_OPTIMIZED,
        },
    )
    return arn.rsplit("/", 1)[1]


def repoint(aws: Any, distribution_id: str, dry: bool = False, **params: Any) -> Result:
    """Run the CloudFront.12 playbook (with ``params`` over its own) on the distribution."""
    action = registry().playbooks[CF12].build_action(params)
    return remediate_resource(action, Clients(aws, MEMBER_ACCOUNT, REGION), distribution_id, dry)


def refusing(clients: Clients, *buckets: str) -> AbstractContextManager[None]:
    """S3 answers these buckets' GetBucketLocation with 403, as AWS does for another account's
    bucket asked for as this account's (``ExpectedBucketOwner``): the stand-in's S3 serves
    every account's buckets to any account, and ignores the expected owner."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if params["Bucket"] in buckets:
            raise ClientError(
                {
                    "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                "GetBucketLocation",
            )

    return hooked(clients.s3, "provide-client-params.s3.GetBucketLocation", refuse)


def origins_of(clients: Clients, distribution_id: str) -> dict[str, dict[str, Any]]:
    return {o["Id"]: o for o in config_of(clients, distribution_id)[0]["Origins"]["Items"]}


def without(origin: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in origin.items() if key not in keys}


@pytest.fixture
def shop(aws: Any) -> tuple[str, Clients]:
    """A distribution of six origins: three whose bucket is missing (an S3 origin with origin
    access control, a path and a header; an S3 REST endpoint and a website endpoint set up as
    custom origins), one of a bucket of the account, one of a bucket that refuses the account
    (403), and an application. Its id, and clients that reach it."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.s3.create_bucket(Bucket="shop-assets")
    distribution_id = with_origins(
        clients,
        "shop",
        s3_origin(
            "site",
            "shop-site-gone.s3.us-east-1.amazonaws.com",
            OriginAccessControlId="E1OACEXAMPLE",
            OriginPath="/public",
            CustomHeaders={"Quantity": 1, "Items": [{"HeaderName": "x-shop", "HeaderValue": "1"}]},
        ),
        s3_origin("assets", "shop-assets.s3.amazonaws.com"),
        s3_origin("partner", "partner-media.s3.eu-west-1.amazonaws.com"),
        custom_origin("legacy", "shop-legacy-gone.s3-us-west-2.amazonaws.com"),
        custom_origin("www", "shop-www-gone.s3-website-us-east-1.amazonaws.com", "http-only"),
        custom_origin("app", "app.example.com"),
    )
    return distribution_id, clients


def test_only_the_origins_of_missing_buckets_are_repointed_and_the_rest_sent_back_as_read(
    shop: tuple[str, Clients], aws: Any
) -> None:
    distribution_id, clients = shop
    before, etag = config_of(clients, distribution_id)
    was = {o["Id"]: o for o in before["Origins"]["Items"]}
    local.served_requests(clear=True)
    with (
        parameters_sent(clients.s3, "GetBucketLocation") as asked,  # before the refusal: sees it
        refusing(clients, "partner-media"),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
    ):
        result = repoint(aws, distribution_id)
    assert result.status == Status.REMEDIATED, result.message
    assert result.message == (
        f"pointed the CloudFront distribution's origins whose S3 bucket is missing at {PLACEHOLDER}; "
        f"{REFUSED_NOTE}"
    ), "the bucket that refuses is named though other origins were repointed"
    assert result.caveat == REFUSED_NOTE, "kept apart too, for the report to list"
    repointed = {
        "site": {
            **without(was["site"], "S3OriginConfig", "OriginAccessControlId"),
            "DomainName": PLACEHOLDER,
            "CustomOriginConfig": PLACEHOLDER_ORIGIN,
        },
        "legacy": {**was["legacy"], "DomainName": PLACEHOLDER},
        "www": {**was["www"], "DomainName": PLACEHOLDER},
    }
    items = [repointed.get(o["Id"], o) for o in before["Origins"]["Items"]]
    wanted = {**before, "Origins": {**before["Origins"], "Items": items}}
    assert sent == [{"Id": distribution_id, "IfMatch": etag, "DistributionConfig": wanted}]
    assert config_of(clients, distribution_id)[0] == wanted
    assert was["site"]["OriginPath"] == "/public" and was["site"]["OriginAccessControlId"] == "E1OACEXAMPLE"
    assert result.before == {
        "Origin legacy": {
            "DomainName": was["legacy"]["DomainName"],
            "CustomOriginConfig": was["legacy"]["CustomOriginConfig"],
        },
        "Origin site": {
            "DomainName": "shop-site-gone.s3.us-east-1.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""},
            "OriginAccessControlId": "E1OACEXAMPLE",
        },
        "Origin www": {
            "DomainName": was["www"]["DomainName"],
            "CustomOriginConfig": was["www"]["CustomOriginConfig"],
        },
    }
    assert result.after == {
        "Origin legacy": {
            "DomainName": PLACEHOLDER,
            "CustomOriginConfig": was["legacy"]["CustomOriginConfig"],
        },
        "Origin site": {"DomainName": PLACEHOLDER, "CustomOriginConfig": PLACEHOLDER_ORIGIN},
        "Origin www": {"DomainName": PLACEHOLDER, "CustomOriginConfig": was["www"]["CustomOriginConfig"]},
    }
    # Each bucket asked for as the account's, once per read (the fix's, the one just before
    # the update, the read-back); the placeholder and the application are no bucket.
    buckets = ["shop-site-gone", "shop-assets", "partner-media", "shop-legacy-gone", "shop-www-gone"]
    assert asked == [{"Bucket": b, "ExpectedBucketOwner": MEMBER_ACCOUNT} for b in buckets * 2] + [
        {"Bucket": b, "ExpectedBucketOwner": MEMBER_ACCOUNT} for b in ("shop-assets", "partner-media")
    ]
    assert_permissions_cover_served_calls(CF12)
    action = registry().playbooks[CF12].build_action()
    served = {f"{c['service']}:{c['action']}" for c in local.served_requests() if c["service"] == "s3"}
    assert served == {"s3:GetBucketLocation"} and served <= set(action.permissions)


def test_a_second_run_sends_nothing_and_names_the_bucket_that_refuses(
    shop: tuple[str, Clients], aws: Any
) -> None:
    """Repointed origins are no S3 endpoint any more; the bucket that answers 403 exists, and
    is left to a person (it may be one that took a deleted bucket's name)."""
    distribution_id, clients = shop
    with refusing(clients, "partner-media"):
        assert repoint(aws, distribution_id).status == Status.REMEDIATED
        fixed = config_of(clients, distribution_id)
        with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
            again = repoint(aws, distribution_id)
    assert (again.status, sent, again.before) == (Status.FAILED, [], None)
    assert again.message == f"no origin names a missing bucket, but {REFUSED_NOTE}; nothing changed"
    assert config_of(clients, distribution_id) == fixed


def test_the_seeded_distribution_is_fixed_once(aws: Any) -> None:
    arn = seed_one(aws, CF12, MEMBER_ACCOUNT, REGION).resource_id
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    [origin] = config_of(clients, arn.rsplit("/", 1)[1])[0]["Origins"]["Items"]
    bucket = bucket_of(origin["DomainName"])
    assert bucket and "S3OriginConfig" in origin, "the control checks S3 origins"
    with pytest.raises(clients.s3.exceptions.NoSuchBucket):
        clients.s3.get_bucket_location(Bucket=bucket)
    assert fix(aws, arn, control=CF12).status == Status.REMEDIATED
    local.served_requests(clear=True)
    assert fix(aws, arn, control=CF12).status == Status.ALREADY_COMPLIANT
    assert [c["action"] for c in local.served_requests() if c["service"] in ("cloudfront", "s3")] == [
        "GetDistributionConfig"
    ]


def test_a_dry_run_says_what_each_origin_would_become_and_sends_nothing(
    shop: tuple[str, Clients], aws: Any
) -> None:
    distribution_id, clients = shop
    before = config_of(clients, distribution_id)
    with (
        refusing(clients, "partner-media"),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
    ):
        result = repoint(aws, distribution_id, dry=True)
    assert (result.status, sent) == (Status.DRY_RUN, [])
    assert result.after == {
        "Origin legacy": {
            "DomainName": PLACEHOLDER,
            "CustomOriginConfig": before[0]["Origins"]["Items"][3]["CustomOriginConfig"],
        },
        "Origin site": {"DomainName": PLACEHOLDER, "CustomOriginConfig": PLACEHOLDER_ORIGIN},
        "Origin www": {
            "DomainName": PLACEHOLDER,
            "CustomOriginConfig": before[0]["Origins"]["Items"][4]["CustomOriginConfig"],
        },
    }
    assert result.message.startswith(
        "would change {'Origin legacy': {'DomainName': 'shop-legacy-gone.s3-us-west-2"
    )
    assert config_of(clients, distribution_id) == before


def test_a_bucket_made_again_before_the_update_keeps_its_origin(shop: tuple[str, Clients], aws: Any) -> None:
    """The fix asks again just before its update: the bucket made meanwhile is the owner's, its
    origin is left alone, and the plan made again covers only the other origins."""
    distribution_id, clients = shop
    reads: list[str] = []

    def made_meanwhile(params: dict[str, Any], **_: Any) -> None:
        reads.append(params["Id"])
        if len(reads) == 2:  # the read just before the update
            clients.s3.create_bucket(Bucket="shop-site-gone")

    with (
        refusing(clients, "partner-media"),
        hooked(clients.cloudfront, "provide-client-params.cloudfront.GetDistributionConfig", made_meanwhile),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
    ):
        result = repoint(aws, distribution_id)
    assert result.status == Status.REMEDIATED, result.message
    assert sorted(result.before or {}) == ["Origin legacy", "Origin www"]
    assert len(sent) == 1
    origins = origins_of(clients, distribution_id)
    assert origins["site"]["DomainName"] == "shop-site-gone.s3.us-east-1.amazonaws.com"
    assert "S3OriginConfig" in origins["site"] and origins["site"]["OriginAccessControlId"] == "E1OACEXAMPLE"
    assert {origins[o]["DomainName"] for o in ("legacy", "www")} == {PLACEHOLDER}


def test_the_only_missing_bucket_made_again_leaves_the_distribution_untouched(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    distribution_id = with_origins(clients, "blog", s3_origin("blog", "blog-gone.s3.amazonaws.com"))
    before = config_of(clients, distribution_id)

    def made_meanwhile(params: dict[str, Any], **_: Any) -> None:
        clients.s3.create_bucket(Bucket="blog-gone")

    action = registry().playbooks[CF12].build_action()
    state = action.read(clients, distribution_id)
    with (
        hooked(clients.cloudfront, "provide-client-params.cloudfront.GetDistributionConfig", made_meanwhile),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
        pytest.raises(ChangedMeanwhile, match="the origins that name a missing bucket changed since"),
    ):
        action.apply(clients, distribution_id, state, action.plan(state))
    assert sent == [] and config_of(clients, distribution_id) == before
    assert repoint(aws, distribution_id).status == Status.ALREADY_COMPLIANT


def test_an_update_in_between_is_read_again_and_the_buckets_asked_again(
    shop: tuple[str, Clients], aws: Any, rival: Rival
) -> None:
    distribution_id, clients = shop
    rival.times = 1
    with (
        parameters_sent(clients.s3, "GetBucketLocation") as asked,  # before the refusal: sees it
        refusing(clients, "partner-media"),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
    ):
        result = repoint(aws, distribution_id)
    assert result.status == Status.REMEDIATED, result.message
    after = config_of(clients, distribution_id)[0]
    assert after["Comment"] == "shop!", "the rival's update is kept"
    assert {o["DomainName"] for o in after["Origins"]["Items"] if o["Id"] in ("site", "legacy", "www")} == {
        PLACEHOLDER
    }
    assert len(sent) == 2 and len(asked) == 5 + 5 + 5 + 2, "asked again after the conflict"


def test_revert_points_back_exactly_the_repointed_origins(shop: tuple[str, Clients], aws: Any) -> None:
    """The application's origin, changed since the fix, keeps its change."""
    distribution_id, clients = shop
    before = config_of(clients, distribution_id)[0]
    action = registry().playbooks[CF12].build_action()
    with refusing(clients, "partner-media"):
        state = action.read(clients, distribution_id)
        assert repoint(aws, distribution_id).status == Status.REMEDIATED
        answer = clients.cloudfront.get_distribution_config(Id=distribution_id)
        changed = answer["DistributionConfig"]
        changed["Origins"]["Items"][5]["DomainName"] = "app2.example.com"
        clients.cloudfront.update_distribution(
            Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=changed
        )
        assert action.revert(clients, distribution_id, state) is None
        assert action.read(clients, distribution_id) == {
            **state,
            "Origin app": {**state["Origin app"], "DomainName": "app2.example.com"},
        }
    items = before["Origins"]["Items"]
    items[5] = {**items[5], "DomainName": "app2.example.com"}
    assert config_of(clients, distribution_id)[0] == before
    with parameters_sent(clients.cloudfront, "UpdateDistribution") as sent:
        assert action.revert(clients, distribution_id, state) == {
            **state,
            **{f"Origin {o}": state[f"Origin {o}"] for o in ("legacy", "site", "www")},
        }
    assert sent == [], "pointed back already: nothing sent"


def test_revert_leaves_an_origin_changed_since_as_it_is(shop: tuple[str, Clients], aws: Any) -> None:
    distribution_id, clients = shop
    action = registry().playbooks[CF12].build_action()
    with refusing(clients, "partner-media"):
        state = action.read(clients, distribution_id)
        assert repoint(aws, distribution_id).status == Status.REMEDIATED
    clients.s3.create_bucket(Bucket="shop-site-new")
    answer = clients.cloudfront.get_distribution_config(Id=distribution_id)
    config = answer["DistributionConfig"]
    site = config["Origins"]["Items"][0]
    config["Origins"]["Items"][0] = {
        **without(site, "CustomOriginConfig"),
        "DomainName": "shop-site-new.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    clients.cloudfront.update_distribution(
        Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=config
    )
    now = action.read(clients, distribution_id)["Origin site"]
    with refusing(clients, "partner-media"):
        restorable = action.revert(clients, distribution_id, state)
    assert restorable == {**state, "Origin site": now}
    origins = origins_of(clients, distribution_id)
    assert origins["site"]["DomainName"] == "shop-site-new.s3.us-east-1.amazonaws.com"
    assert origins["legacy"]["DomainName"] == "shop-legacy-gone.s3-us-west-2.amazonaws.com"
    assert origins["www"]["DomainName"] == "shop-www-gone.s3-website-us-east-1.amazonaws.com"


def test_revert_refuses_to_point_back_at_a_bucket_that_refuses_now(
    shop: tuple[str, Clients], aws: Any
) -> None:
    """The missing bucket's name was taken since, by an account that is not this one: pointing
    the origin back would serve its content. Nothing is sent."""
    distribution_id, clients = shop
    action = registry().playbooks[CF12].build_action()
    with refusing(clients, "partner-media"):
        state = action.read(clients, distribution_id)
        assert repoint(aws, distribution_id).status == Status.REMEDIATED
    fixed = config_of(clients, distribution_id)
    with (
        refusing(clients, "partner-media"),
        parameters_sent(clients.cloudfront, "UpdateDistribution") as sent,
    ):
        action.check_revert(clients, distribution_id, state)  # a dry rollback's check: none refused
        with refusing(clients, "shop-www-gone"):
            for check in (action.check_revert, action.revert):
                with pytest.raises(
                    NotReversible,
                    match="origin www would point at bucket shop-www-gone again, which exists now",
                ):
                    check(clients, distribution_id, state)
    assert sent == [] and config_of(clients, distribution_id) == fixed


@pytest.mark.parametrize("since", [None, "changed", "taken"])
def test_a_rollback_puts_the_origins_back_unless_changed_since(
    aws: Any, tmp_path: Any, since: str | None
) -> None:
    """``taken``: the missing bucket's name is another account's now (403): the check before
    the approval says NOT_REVERSIBLE, as the real rollback does, and nothing is pointed back."""
    record = parse_finding(finding(seed_one(aws, CF12, MEMBER_ACCOUNT, REGION)), registry())
    root = journal_root(str(tmp_path), "asr_sweep", "manual__1")
    [outcome] = run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", "manual__1", "b", 1, "s"))
    )
    assert outcome.status == "REMEDIATED", outcome.message
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    distribution_id = record.resource_id
    if since == "changed":
        answer = clients.cloudfront.get_distribution_config(Id=distribution_id)
        config = answer["DistributionConfig"]
        config["Origins"]["Items"][0]["DomainName"] = "elsewhere.example.com"
        clients.cloudfront.update_distribution(
            Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=config
        )
    fixed = config_of(clients, distribution_id)[0]
    journal = AuditJournal(root, Origin("asr_rollback", "rollback-1", "rollback", 1, "bob"))
    if since == "taken":
        [origin] = fixed["Origins"]["Items"]
        bucket = bucket_of(outcome.before[f"Origin {origin['Id']}"]["DomainName"])
        assert bucket is not None
        with refusing(clients, bucket):
            [checked] = Rollback(journal, aws, dry=True).run()
            [reversal] = Rollback(journal, aws).run()
        assert checked.status == reversal.status == RollbackStatus.NOT_REVERSIBLE, checked.reason
        assert f"would point at bucket {bucket} again" in checked.reason
        assert config_of(clients, distribution_id)[0] == fixed
        return
    [reversal] = Rollback(journal, aws).run()
    if since:
        assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
        assert config_of(clients, distribution_id)[0] == fixed
        assert journal.changes(REVERT) == []
    else:
        assert reversal.status == RollbackStatus.REVERTED, reversal.reason
        [origin] = config_of(clients, distribution_id)[0]["Origins"]["Items"]
        assert origin["DomainName"] == outcome.before[f"Origin {origin['Id']}"]["DomainName"]
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


@pytest.mark.parametrize("placeholder", ["origin-removed.acme.invalid", "gone.example", "a-1.b-2.example"])
def test_the_placeholder_comes_from_the_parameter(aws: Any, placeholder: str) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    distribution_id = with_origins(clients, "blog", s3_origin("blog", "blog-gone.s3.amazonaws.com"))
    result = repoint(aws, distribution_id, placeholder_domain=placeholder)
    assert result.status == Status.REMEDIATED, result.message
    assert result.message.endswith(f"whose S3 bucket is missing at {placeholder}")
    assert origins_of(clients, distribution_id)["blog"]["DomainName"] == placeholder


@pytest.mark.parametrize(
    "placeholder",
    [
        "evil.com",
        "example",
        "gone.example.com",
        "gone.test",
        "Gone.Example",
        "gone..example",
        "gone.example\n",
        "-gone.invalid",
        "",
    ],
)
def test_a_placeholder_anyone_could_register_or_resolve_is_refused(placeholder: str) -> None:
    with pytest.raises(ActionError, match="placeholder_domain"):
        registry().playbooks[CF12].build_action({"placeholder_domain": placeholder})


@pytest.mark.parametrize(
    ("host", "bucket"),
    [
        ("shop.s3.amazonaws.com", "shop"),
        ("shop.s3.eu-west-1.amazonaws.com", "shop"),
        ("shop.s3-eu-west-1.amazonaws.com", "shop"),
        ("shop.s3.dualstack.us-gov-west-1.amazonaws.com", "shop"),
        ("shop.s3-external-1.amazonaws.com", "shop"),
        ("shop.s3.cn-north-1.amazonaws.com.cn", "shop"),
        ("www.shop.com.s3-website-us-east-1.amazonaws.com", "www.shop.com"),
        ("shop.s3-website.eu-central-1.amazonaws.com", "shop"),
        ("Shop.S3.Amazonaws.Com", "shop"),
        ("app.example.com", None),
        ("shop-123456789012.s3-accesspoint.us-east-1.amazonaws.com", None),
        ("shop-abc.s3-object-lambda.us-east-1.amazonaws.com", None),
        ("mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", None),
        ("d111111abcdef8.cloudfront.net", None),
        ("shop.s3.amazonaws.com.evil.com", None),
        (PLACEHOLDER, None),
    ],
)
def test_the_bucket_is_taken_from_an_s3_endpoint_s_host_only(host: str, bucket: str | None) -> None:
    assert bucket_of(host) == bucket


def test_a_bucket_check_s3_refuses_otherwise_fails_the_fix_unchanged(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    distribution_id = with_origins(clients, "blog", s3_origin("blog", "blog-gone.s3.amazonaws.com"))
    before = config_of(clients, distribution_id)

    def broken(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "InvalidRequest", "Message": "no"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "GetBucketLocation",
        )

    with hooked(clients.s3, "provide-client-params.s3.GetBucketLocation", broken):
        result = repoint(aws, distribution_id)
    assert (result.status, result.message) == (Status.FAILED, "InvalidRequest: no")
    assert config_of(clients, distribution_id) == before


@pytest.mark.parametrize(
    ("resource_arn", "distribution_id"),
    [
        (f"{ARN}/E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
        (f"arn:aws-cn:cloudfront::{MEMBER_ACCOUNT}:distribution/E1A2B3C4D5E6F7", "E1A2B3C4D5E6F7"),
        (f"{ARN}/e2qwruhapomqzl", None),
        (f"arn:aws:cloudfront:us-east-1:{MEMBER_ACCOUNT}:distribution/E2QWRUHAPOMQZL", None),
    ],
)
def test_the_cloudfront_12_distribution_id_is_taken_from_its_arn(
    resource_arn: str, distribution_id: str | None
) -> None:
    assert_extracted_id(CF12, resource_arn, distribution_id)


def test_the_cloudfront_12_playbook_is_disruptive_and_never_automatic() -> None:
    playbook = registry().playbooks[CF12]
    assert (playbook.scope, playbook.disruptive, playbook.auto_remediate) == ("global", True, False)
    assert playbook.parameters == {"placeholder_domain": PLACEHOLDER}


def test_an_s3_origin_s_read_timeout_is_kept_when_it_becomes_a_custom_one(aws: Any) -> None:
    """CloudFront refuses a response completion timeout below the origin's read timeout."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    slow = s3_origin("media", "media-gone.s3.amazonaws.com")
    slow["S3OriginConfig"]["OriginReadTimeout"] = 60
    distribution_id = with_origins(clients, "media", slow)
    assert repoint(aws, distribution_id).status == Status.REMEDIATED
    custom = origins_of(clients, distribution_id)["media"]["CustomOriginConfig"]
    assert custom == PLACEHOLDER_ORIGIN | {"OriginReadTimeout": 60}


def test_a_bucket_to_check_reaches_the_run_s_report(aws: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """The finding is RESOLVED, where nobody looks: the report lists the bucket apart."""
    record = parse_finding(finding(seed_one(aws, CF12, MEMBER_ACCOUNT, REGION)), registry())
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    config, etag = config_of(clients, record.resource_id)
    items = [*config["Origins"]["Items"], s3_origin("partner", "partner-media.s3.amazonaws.com")]
    config["Origins"] = {"Quantity": len(items), "Items": items}
    clients.cloudfront.update_distribution(Id=record.resource_id, IfMatch=etag, DistributionConfig=config)
    asked = cloudfront.bucket_answer
    monkeypatch.setattr(
        cloudfront, "bucket_answer", lambda c, b: cloudfront.REFUSED if b == "partner-media" else asked(c, b)
    )
    [outcome] = run_batch([record], registry(), aws)
    assert outcome.status == "REMEDIATED", outcome.message
    assert outcome.caveat.startswith("the buckets of origins partner (bucket partner-media) refuse")
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "run-1")
    store.write_lines("outcomes/CloudFront.12-0000.jsonl", [outcome.to_dict()])
    listed = report.to_check(report.build(store, "run-1"))
    assert [(o["resource_arn"], o["caveat"]) for o in listed] == [(record.resource_arn, outcome.caveat)]


def test_origins_repointed_by_someone_else_meanwhile_leave_the_refusing_bucket_failed(
    shop: tuple[str, Clients], aws: Any, rival: Rival
) -> None:
    """Another writer points the missing buckets' origins elsewhere between the fix's read and
    its update: the fix changes nothing, and the finding is judged as one found that way
    (FAILED, naming the bucket that answers 403), not reported compliant."""
    distribution_id, clients = shop
    gone = {"site", "legacy", "www"}

    def elsewhere(config: dict[str, Any]) -> dict[str, Any]:
        for origin in config["Origins"]["Items"]:
            if origin["Id"] in gone:
                origin["DomainName"] = "shop-assets.s3.amazonaws.com"
        return config

    rival.times, rival.change = 1, elsewhere
    with refusing(clients, "partner-media"):
        result = repoint(aws, distribution_id)
    assert rival.updates == 1
    assert (result.status, result.before) == (Status.FAILED, None)
    assert result.message == f"no origin names a missing bucket, but {REFUSED_NOTE}; nothing changed"


def test_revert_after_a_conflict_points_back_what_is_left_and_says_what_is_gone(
    shop: tuple[str, Clients], aws: Any, rival: Rival
) -> None:
    """An origin deleted since cannot be pointed back (None in what the revert returns); the
    revert that meets another writer's update (PreconditionFailed) reads again and keeps it."""
    distribution_id, clients = shop
    action = registry().playbooks[CF12].build_action()
    with refusing(clients, "partner-media"):
        state = action.read(clients, distribution_id)
        assert repoint(aws, distribution_id).status == Status.REMEDIATED
    config, etag = config_of(clients, distribution_id)
    items = [o for o in config["Origins"]["Items"] if o["Id"] != "www"]
    config["Origins"] = {"Quantity": len(items), "Items": items}
    clients.cloudfront.update_distribution(Id=distribution_id, IfMatch=etag, DistributionConfig=config)
    rival.times = 1
    with refusing(clients, "partner-media"):
        assert action.revert(clients, distribution_id, state) == {**state, "Origin www": None}
    assert rival.updates == 1
    after = config_of(clients, distribution_id)[0]
    assert after["Comment"].endswith("!"), "the rival's update is kept"
    origins = {o["Id"]: o for o in after["Origins"]["Items"]}
    assert [o["Id"] for o in after["Origins"]["Items"]] == [o["Id"] for o in items]
    for origin_id in ("site", "legacy"):
        assert {k: origins[origin_id].get(k) for k in state[f"Origin {origin_id}"]} == state[
            f"Origin {origin_id}"
        ]
