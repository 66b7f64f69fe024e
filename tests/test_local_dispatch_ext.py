"""The stand-in's faster request routing gives moto's own answers, and its log stays quiet."""

from __future__ import annotations

from pathlib import Path

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from asr import local
from asr.local import dispatch_ext

HOSTS = [
    "ec2.us-east-1.amazonaws.com",
    "ec2.eu-west-1.amazonaws.com",
    "securityhub.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "s3.amazonaws.com",
    "bucket.s3.us-west-2.amazonaws.com",
    "moto_api",
    None,
]


def test_backend_for_each_host_is_moto_own_and_looked_up_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = DomainDispatcherApplication(create_backend_app)
    expected = {host: dispatch_ext._backend_for_host(app, host) for host in HOSTS}
    assert expected["ec2.us-east-1.amazonaws.com"] == "ec2"
    lookups: list[str | None] = []

    def counting(self: DomainDispatcherApplication, host: str | None) -> object:
        lookups.append(host)
        return expected[host]

    monkeypatch.setattr(dispatch_ext, "_backend_for_host", counting)
    for _ in range(3):
        assert {host: dispatch_ext.get_backend_for_host(app, host) for host in HOSTS} == expected
    assert lookups == HOSTS


def test_the_running_stand_in_serves_every_service_and_logs_no_requests(clean_aws: str) -> None:
    log = Path(local.state_dir()) / f"moto-{local.port()}.log"
    assert "asr stand-in: moto on" in log.read_text()
    start = log.stat().st_size
    for region in ("eu-west-1", "us-east-1"):
        ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]
    s3 = boto3.client("s3", endpoint_url=clean_aws, region_name="us-east-1")
    s3.create_bucket(Bucket="dispatch-check")
    assert "dispatch-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with log.open() as handle:
        handle.seek(start)
        assert "HTTP/1.1" not in handle.read()


def test_response_methods_are_moto_own_and_listed_once_per_class(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from moto.ec2.responses import EC2Response
    from moto.securityhub.responses import SecurityHubResponse

    classes = [EC2Response, SecurityHubResponse]
    expected = {clazz: dispatch_ext._method_names_from_class(clazz) for clazz in classes}
    assert "revoke_security_group_ingress" in expected[EC2Response]
    listed: list[type] = []

    def counting(clazz: type) -> list[str]:
        listed.append(clazz)
        return expected[clazz]

    monkeypatch.setattr(dispatch_ext, "_method_names_from_class", counting)
    monkeypatch.setattr(dispatch_ext, "_method_names", {})
    for _ in range(3):
        assert {clazz: dispatch_ext.method_names_from_class(clazz) for clazz in classes} == expected
    assert listed == classes
