"""The stand-in's EC2 extensions, through boto3: snapshot owner/restorable filters, metadata options."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

OTHER_ACCOUNT = "333333333333"


@pytest.fixture
def ec2(clean_aws: str) -> Any:
    return boto3.client("ec2", endpoint_url=clean_aws, region_name="eu-west-1")


def _snapshot(ec2: Any, groups: tuple[str, ...] = (), users: tuple[str, ...] = ()) -> str:
    volume_id = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    if groups or users:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=list(groups),
            UserIds=list(users),
        )
    return snapshot_id


def _ids(response: dict[str, Any]) -> set[str]:
    return {s["SnapshotId"] for s in response["Snapshots"]}


def test_describe_snapshots_narrows_to_owners_and_restorable_users(ec2: Any) -> None:
    private = _snapshot(ec2)
    public = _snapshot(ec2, groups=("all",))
    shared = _snapshot(ec2, users=(OTHER_ACCOUNT,))
    own = {private, public, shared}
    account = boto3.client(
        "sts", endpoint_url=ec2.meta.endpoint_url, region_name="eu-west-1"
    ).get_caller_identity()["Account"]

    assert len(_ids(ec2.describe_snapshots())) > len(own), "moto's AMI snapshots of other owners"
    assert _ids(ec2.describe_snapshots(OwnerIds=["self"])) == own
    assert _ids(ec2.describe_snapshots(OwnerIds=[account])) == own
    assert _ids(ec2.describe_snapshots(OwnerIds=[OTHER_ACCOUNT])) == set()
    assert _ids(ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=["all"])) == {public}
    assert _ids(ec2.describe_snapshots(OwnerIds=["self"], RestorableByUserIds=[OTHER_ACCOUNT])) == {
        public,
        shared,
    }
    assert _ids(ec2.describe_snapshots(SnapshotIds=[private], RestorableByUserIds=["all"])) == set()


def test_describe_snapshots_refuses_owner_aliases_it_cannot_tell(ec2: Any) -> None:
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.describe_snapshots(OwnerIds=["aws-marketplace"])


def test_modify_instance_metadata_options_keeps_the_options_not_given(ec2: Any) -> None:
    instance_id = ec2.run_instances(
        ImageId="ami-03cf127a",
        MinCount=1,
        MaxCount=1,
        MetadataOptions={
            "HttpTokens": "optional",
            "HttpPutResponseHopLimit": 3,
            "HttpEndpoint": "enabled",
            "InstanceMetadataTags": "enabled",
        },
    )["Instances"][0]["InstanceId"]

    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required")
    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "MetadataOptions"
    ]
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == 3
    assert options["HttpEndpoint"] == "enabled"
    assert options["InstanceMetadataTags"] == "enabled"

    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=1)
    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "MetadataOptions"
    ]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 1)


def test_filters_holding_more_than_200_values_in_all_are_refused_as_ec2_does(ec2: Any) -> None:
    ids = [f"i-{n:017x}" for n in range(199)]

    ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [*ids, "i-0"]}])  # 200: taken
    with pytest.raises(ClientError, match="FilterLimitExceeded"):
        ec2.describe_iam_instance_profile_associations(
            Filters=[
                {"Name": "instance-id", "Values": [*ids, "i-0"]},
                {"Name": "state", "Values": ["associated"]},
            ]
        )
