"""A real moto server for the AWS adapters: one per session, reset before each test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from providers.aws.bootstrap import ensure_platform_resources
from providers.aws.factory import AwsClients, make_clients
from providers.aws.settings import AwsSettings
from tests.helpers import wait_until

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account

# Fake credentials only; the real chain (profiles, SSO, instance roles) is cut off.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``python -m moto.server`` on a free loopback port; stop it at the end."""
    home = tmp_path_factory.mktemp("aws-home")
    with pytest.MonkeyPatch.context() as mp:
        for name in UNSET_AWS_ENV:
            mp.delenv(name, raising=False)
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        mp.setenv("AWS_CONFIG_FILE", str(home / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        port = _free_port()
        log = (home / "moto.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: proc.poll() is not None or _answers(f"{url}/moto-api/"),
                timeout_s=30,
                what="the moto server to answer",
            )
            if proc.poll() is not None:
                raise RuntimeError(
                    f"moto server exited: {Path(log.name).read_text(errors='replace')[-2000:]}"
                )
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()


def moto_post(moto_url: str, path: str, payload: object | None = None) -> None:
    data = json.dumps(payload).encode() if payload is not None else b""
    request = urllib.request.Request(f"{moto_url}{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert 200 <= response.status < 300


@pytest.fixture
def aws_settings(moto_url: str) -> AwsSettings:
    return AwsSettings(
        region=REGION,
        endpoint_url=moto_url,
        bucket="fraudrail-platform-test",
        flagged_table="fraudrail-flagged-transactions",
        rollback_table="fraudrail-rollback-log",
        pooled_endpoint="fraudrail-pooled",
    )


@pytest.fixture(scope="session")
def boto_session(moto_url: str) -> boto3.session.Session:
    """One boto3 session: its loaded service models make each test's clients cheap."""
    return boto3.session.Session(region_name=REGION)


@pytest.fixture
def clients(moto_url: str, aws_settings: AwsSettings, boto_session: boto3.session.Session) -> AwsClients:
    """Fresh moto state (reset), the platform's bucket and tables, and new clients to it."""
    moto_post(moto_url, "/moto-api/reset")
    made = make_clients(aws_settings, max_attempts=2, timeout_s=5.0, session=boto_session)
    ensure_platform_resources(made, aws_settings)
    return made


@pytest.fixture
def kms_key_id(clients: AwsClients, aws_settings: AwsSettings, boto_session: boto3.session.Session) -> str:
    kms = boto_session.client("kms", region_name=REGION, endpoint_url=aws_settings.endpoint_url)
    return str(kms.create_key(Description="fraudrail test key")["KeyMetadata"]["KeyId"])
