"""AWS clients across accounts: as the administrator, and as the member role in each account.

The Airflow connection gives the administrator (Security Hub) session; every fix runs
with the member role assumed in the resource's account. Clients are cached per
(account, region, service) so a task makes one client per target, not per resource.
"""

from __future__ import annotations

import datetime
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config

from asr.config import DEFAULT_AWS_CONN_ID, ConfigError
from asr.pacing import RateBudget

log = logging.getLogger(__name__)

# As many pooled connections per client as a fix task may have threads (ASR_FIX_THREADS, at
# most 64): botocore's 10 would open a new TLS connection for each call over it.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, max_pool_connections=64)
# With asr's own pacing (``asr.pacing``), botocore's adaptive mode would add a second limiter, one
# per client for every operation: a throttled write would slow that client's reads too.
PACED_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})
SESSION_NAME = "asr-remediation"
SESSION_NAME_LIMIT = 64  # STS RoleSessionName: 2 to 64 of [\w+=,.@-]
# Member credentials are assumed again this long before they expire (an hour by default),
# so a long, paced batch never calls with an expired token.
REFRESH_BEFORE_SECONDS = 300

EndpointFor = Callable[[str], "str | None"]


@cache
def _warn_without_default_connection() -> None:
    log.warning(
        "Airflow has no connection %r (ASR_AWS_CONN_ID's default): asr acts with this host's own AWS "
        "credentials (instance profile, IRSA, environment), as the amazon provider does without one",
        DEFAULT_AWS_CONN_ID,
    )


def check_connection(wrapper: Any, aws_conn_id: str) -> None:
    """The connection ``ASR_AWS_CONN_ID`` names must be one Airflow has: without it the amazon
    provider goes on with the host's own credentials (the instance profile), and asr would act
    as whoever those are, saying so only in a warning. ``aws_default`` missing is the provider's
    documented way to use them (instance profile, IRSA): warned about, once per process.

    It judges the provider's own wrapper (empty when the lookup found nothing), not a lookup of
    its own: a second lookup failing for a moment after the first succeeded would leave the
    session on the host's credentials with nothing said. For ``aws_default`` one lookup that
    fails for a moment (the task SDK reports it as not found) still means the host's
    credentials, with the warning: the provider's documented fallback cannot tell the two."""
    if wrapper:
        return
    if aws_conn_id != DEFAULT_AWS_CONN_ID:
        raise ConfigError(
            f"ASR_AWS_CONN_ID {aws_conn_id!r} names no Airflow connection: add it, or unset "
            f"ASR_AWS_CONN_ID for {DEFAULT_AWS_CONN_ID!r}"
        )
    _warn_without_default_connection()


def _strip_account_label(request: Any, **_: Any) -> None:
    """S3 Control puts the account id in front of the host; a local endpoint has no such name."""
    parts = urlsplit(request.url)
    host = parts.netloc
    label, _, rest = host.partition(".")
    if label.isdigit() and len(label) == 12 and rest:
        request.url = urlunsplit(parts._replace(netloc=rest))


def _session_from(creds: dict[str, Any], region: str | None) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def session_name(*parts: str) -> str:
    """A RoleSessionName naming what acts (``asr.<dag>.<run>``): CloudTrail shows it with every
    call the member role makes, so a change leads back to its run."""
    name = re.sub(r"[^\w+=,.@-]", ".", ".".join(("asr", *parts)))
    return name[:SESSION_NAME_LIMIT]


class AwsContext:
    """Hands out boto3 clients in any allowed account, assuming the member role there.

    ``home_region``: where the administrator is when its session names no region (instance
    credentials, say): it decides the partition of the member roles and the STS endpoint.
    ``config``: the botocore settings every client gets (the connection's, such as a proxy,
    with asr's adaptive retries)."""

    def __init__(
        self,
        base_session: boto3.Session,
        member_role_name: str,
        endpoint_for: EndpointFor = lambda service: None,
        external_id: str | None = None,
        home_region: str = "us-east-1",
        config: Config = RETRY_CONFIG,
        role_session_name: str = SESSION_NAME,
    ) -> None:
        self.base_session = base_session
        self.member_role_name = member_role_name
        self.endpoint_for = endpoint_for
        self.external_id = external_id
        self.home_region = base_session.region_name or home_region
        self.config = config
        self.role_session_name = role_session_name
        self._credentials: dict[str, dict[str, str]] = {}
        self._expires: dict[str, float] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.RLock()
        # Pacing for every client made from now on (``asr.pacing``); None: unpaced.
        self.budget: RateBudget | None = None

    @classmethod
    def from_airflow(
        cls,
        aws_conn_id: str,
        member_role_name: str,
        home_region: str = "us-east-1",
        role_session_name: str = SESSION_NAME,
    ) -> AwsContext:
        """The administrator session of an Airflow connection, made by the amazon provider's
        session factory (or the one ``[aws] session_factory`` names), over this process's
        botocore data: ``hook.get_session()`` parsed the STS, Security Hub and endpoint data
        again in every task, a fifth of a second of CPU each. A connection id Airflow does not
        have is refused (``check_connection``), but for ``aws_default``."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="sts")
        wrapper = hook.conn_config
        check_connection(wrapper, aws_conn_id)
        external_id = (wrapper.extra_config or {}).get("member_role_external_id")
        factory = _shared_data_session_factory()(conn=wrapper, config=hook.config)
        session = share_botocore_data(factory.create_session())
        config = hook.config.merge(RETRY_CONFIG) if hook.config else RETRY_CONFIG
        return cls(
            session,
            member_role_name,
            wrapper.get_service_endpoint_url,
            external_id,
            home_region,
            config,
            role_session_name,
        )

    @classmethod
    def from_endpoint(
        cls,
        endpoint_url: str | None,
        member_role_name: str,
        region: str,
        admin_role_arn: str | None = None,
    ) -> AwsContext:
        """For the CLI and tests: default credentials (optionally as an assumed administrator
        role, as an Airflow connection's ``role_arn`` does), one endpoint for every service."""
        session = boto3.Session(region_name=region)
        if admin_role_arn:
            sts = session.client("sts", endpoint_url=endpoint_url, config=RETRY_CONFIG)
            creds = sts.assume_role(RoleArn=admin_role_arn, RoleSessionName=SESSION_NAME)["Credentials"]
            session = _session_from(creds, region)
        return cls(session, member_role_name, lambda service: endpoint_url)

    @property
    def partition(self) -> str:
        """The administrator's partition (aws, aws-us-gov, aws-cn, ...): the member roles are in it."""
        return str(self.base_session.get_partition_for_region(self.home_region))

    def role_arn(self, account_id: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{self.member_role_name}"

    def credentials(self, account_id: str) -> dict[str, str]:
        """The member role's temporary credentials in this account, assumed once per context
        and again shortly before they expire: calling it is also how a caller learns early
        that the role cannot be assumed."""
        with self._lock:
            if account_id not in self._credentials or self._expiring(account_id):
                self._forget(account_id)
                sts = self._new_client("sts", self.home_region)
                kwargs: dict[str, Any] = {
                    "RoleArn": self.role_arn(account_id),
                    "RoleSessionName": self.role_session_name,
                }
                if self.external_id:
                    kwargs["ExternalId"] = self.external_id
                creds = sts.assume_role(**kwargs)["Credentials"]
                self._credentials[account_id] = {
                    "aws_access_key_id": creds["AccessKeyId"],
                    "aws_secret_access_key": creds["SecretAccessKey"],
                    "aws_session_token": creds["SessionToken"],
                }
                if isinstance(creds.get("Expiration"), datetime.datetime):
                    self._expires[account_id] = creds["Expiration"].timestamp()
            return self._credentials[account_id]

    def _expiring(self, account_id: str) -> bool:
        return time.time() > self._expires.get(account_id, math.inf) - REFRESH_BEFORE_SECONDS

    def _forget(self, account_id: str) -> None:
        """Drop an account's credentials and the clients made with them."""
        self._credentials.pop(account_id, None)
        self._expires.pop(account_id, None)
        for key in [k for k in self._clients if k[0] == account_id]:
            del self._clients[key]

    def client(self, service: str, account_id: str, region: str) -> Any:
        key = (account_id, region, service)
        client = self._clients.get(key)
        if client is None or self._expiring(account_id):
            with self._lock:  # one client per key, even when many threads ask at once
                credentials = self.credentials(account_id)  # near expiry: new ones, old clients dropped
                if key not in self._clients:
                    client = self._new_client(service, region, **credentials)
                    if service == "s3":
                        client.meta.events.register("provide-client-params.s3", _owned_by(account_id))
                    if self.budget:
                        self.budget.attach(client, account_id, region)
                    self._clients[key] = client
                client = self._clients[key]
        return client

    def admin_client(self, service: str, region: str) -> Any:
        """A client as the administrator itself (Security Hub reads and write-back)."""
        key = ("admin", region, service)
        with self._lock:
            if key not in self._clients:
                client = self._new_client(service, region)
                if self.budget:
                    self.budget.attach(client, "admin", region)
                self._clients[key] = client
            return self._clients[key]

    def _new_client(self, service: str, region: str | None, **credentials: str) -> Any:
        endpoint = self.endpoint_for(service)
        config = self.config.merge(PACED_CONFIG) if self.budget else self.config
        if credentials:
            client = member_client(service, region, endpoint, credentials, config)
        else:
            client = self.base_session.client(
                service, region_name=region, endpoint_url=endpoint, config=config
            )
        if service == "s3control" and endpoint:
            client.meta.events.register("before-send.s3-control", _strip_account_label)
        return client


READS = ("Get", "Head", "List")


def _owned_by(account_id: str) -> Callable[..., None]:
    """A member's S3 changes name the account as the bucket's expected owner: bucket names are
    global and carry no account, so a finding of a bucket deleted since and re-made by another
    account, or a log bucket name another account took, must meet AccessDenied, not be changed
    because that bucket's policy happens to let the member in. Reads stay free: a trail's
    bucket in a central log-archive account is looked up (its Region), never changed."""

    def add(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members and not model.name.startswith(READS):
            params.setdefault("ExpectedBucketOwner", account_id)

    return add


# Member-role clients all come from one session per process, their credentials passed in:
# botocore then parses each service's model once per process, not once per account (the
# EC2 model alone takes a tenth of a second or more), and a process forked after ``warm``
# (a task, from the scheduler: ``asr_preload``) finds them parsed already. A session is
# not safe for making clients from several threads at once, hence the lock.
_member_session: boto3.Session | None = None
_member_lock = threading.Lock()


def _member() -> boto3.Session:
    global _member_session
    if _member_session is None:
        _member_session = boto3.Session()
    return _member_session


def member_client(
    service: str,
    region: str | None,
    endpoint: str | None,
    credentials: dict[str, str],
    config: Config = RETRY_CONFIG,
) -> Any:
    with _member_lock:
        return _member().client(
            service, region_name=region, endpoint_url=endpoint, config=config, **credentials
        )


def share_botocore_data(session: boto3.Session) -> boto3.Session:
    """Give a new session the member session's botocore data loader (service models and
    endpoint data, parsed once per process or inherited warm), before it makes a client."""
    with _member_lock:
        loader = _member()._session.get_component("data_loader")
    session._session.register_component("data_loader", loader)
    return session


@cache
def _shared_data_session_factory() -> type:
    """The amazon provider's configured session factory, whose basic session (the one that
    calls STS to assume the connection's role) shares the process's botocore data."""
    from airflow.providers.amazon.aws.hooks import base_aws

    class SharedDataSessionFactory(base_aws.SessionFactory):  # type: ignore[misc,valid-type]
        def _create_basic_session(self, session_kwargs: dict[str, Any]) -> boto3.session.Session:
            return share_botocore_data(super()._create_basic_session(session_kwargs))

    return SharedDataSessionFactory


def warm(services: Iterable[str]) -> None:
    """Load these services' models into the member session (no call is made)."""
    unused = {"aws_access_key_id": "warm", "aws_secret_access_key": "warm", "aws_session_token": "warm"}
    for service in services:
        member_client(service, "us-east-1", None, unused)


class _Once:
    """A value made once, however many threads ask for it at the same time; an error is not
    kept (the next caller tries again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made = False
        self._value: Any = None

    def get(self, make: Callable[[], Any]) -> Any:
        with self._lock:
            if not self._made:
                self._value, self._made = make(), True
            return self._value


class Clients:
    """The boto3 clients of one account and region, by service: ``clients.ec2``,
    ``clients["lambda"]``. Made on first use and shared through the AwsContext cache.
    A batch makes one ``Clients`` per account and region, so ``once`` lasts one batch."""

    def __init__(self, aws: AwsContext, account_id: str, region: str) -> None:
        self._aws = aws
        self.account_id = account_id
        self.region = region
        self._once: dict[tuple[Any, ...], _Once] = {}
        self._once_lock = threading.Lock()

    def once(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for with these clients, then its value:
        for what every resource of a batch reads alike (the service role a fix hands over)."""
        with self._once_lock:
            slot = self._once.setdefault(key, _Once())
        return slot.get(make)

    def __getitem__(self, service: str) -> Any:
        return self._aws.client(service, self.account_id, self.region)

    @property
    def role_arn(self) -> str:
        """The member role these clients act as (a key policy can name it)."""
        return self._aws.role_arn(self.account_id)

    def in_region(self, region: str) -> Clients:
        """The same account's clients in another region (a global playbook's regional call)."""
        return self if region == self.region else Clients(self._aws, self.account_id, region)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        return self[service]
