"""GuardDuty misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("GuardDuty.1")
def detector_suspended(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """The Region's detector suspended (one is created suspended if there is none)."""
    guardduty = aws.client("guardduty", account, region)
    detectors = guardduty.list_detectors()["DetectorIds"]
    for detector in detectors:
        guardduty.update_detector(DetectorId=detector, Enable=False)
    if not detectors:
        guardduty.create_detector(Enable=False)
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}", "HIGH")


def region_detector(guardduty: Any, account: str, region: str) -> str:
    """The ARN of the Region's detector, made if there is none: a Region has one, which the other
    controls' seeders (GuardDuty.1 suspends it) and fixes share, so it is used as it is."""
    detectors = guardduty.list_detectors()["DetectorIds"]
    detector = detectors[0] if detectors else guardduty.create_detector(Enable=True)["DetectorId"]
    return f"arn:{guardduty.meta.partition}:guardduty:{region}:{account}:detector/{detector}"


@seeder("GuardDuty.4")
def untagged_detector(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """The Region's detector without a tag of its own: its tags are removed (AWS's own stay)."""
    guardduty = aws.client("guardduty", account, region)
    arn = region_detector(guardduty, account, region)
    own = [
        key for key in guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] if not key.startswith("aws:")
    ]
    if own:
        guardduty.untag_resource(ResourceArn=arn, TagKeys=own)
    return Seeded(control_id, account, region, "AwsGuardDutyDetector", arn, "LOW")


@seeder("GuardDuty.2")
def untagged_filter(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A new filter, without tags, of the Region's detector."""
    guardduty = aws.client("guardduty", account, region)
    arn = region_detector(guardduty, account, region)
    name = guardduty.create_filter(
        DetectorId=arn.rsplit("/", 1)[1],
        Name=f"asr-seed-filter-{n}-{uuid.uuid4().hex[:6]}",
        FindingCriteria={"Criterion": {"severity": {"Gte": 4}}},
    )["Name"]
    return Seeded(control_id, account, region, "AwsGuardDutyFilter", f"{arn}/filter/{name}", "LOW")
