"""AWS Config misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


@seeder("Config.1")
def recorder_partial_and_stopped(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A recorder that records one resource type, with its own role, and is stopped."""
    config = aws.client("config", account, region)
    recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
    name = recorders[0]["name"] if recorders else "asr-seed-recorder"
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": name,
            "roleARN": f"arn:aws:iam::{account}:role/asr-seed-config-recorder",
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::SecurityGroup"]},
        }
    )
    config.stop_configuration_recorder(ConfigurationRecorderName=name)
    return account_resource(control_id, account, region)
