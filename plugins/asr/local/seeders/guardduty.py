"""GuardDuty misconfigurations."""

from __future__ import annotations

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
