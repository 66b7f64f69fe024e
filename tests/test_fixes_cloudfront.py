"""CloudFront.1: the default root object, set through a whole-configuration update under its ETag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions import ActionError
from asr.actions.cloudfront import SetDefaultRootObject
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.local.seeders.cloudfront import CACHING_OPTIMIZED
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:cloudfront::{MEMBER_ACCOUNT}:distribution"


@pytest.fixture(autouse=True)
def no_conflict_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after a conflict at once: the pauses are for real contention, not for tests."""
    monkeypatch.setattr(SetDefaultRootObject, "conflict_pauses", (0.0, 0.0, 0.0))


def fix(aws: Any, resource_arn: str, region: str = REGION, **params: Any) -> Result:
    """Run the CloudFront.1 playbook (with ``params`` over its own) on the distribution its finding names."""
    playbook = registry().playbooks["CloudFront.1"]
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
