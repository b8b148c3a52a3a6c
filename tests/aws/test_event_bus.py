"""SNS event bus against moto's server, which POSTs to the bus's loopback HTTP receiver."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from providers.aws.event_bus import SnsEventBus, topic_name
from providers.aws.factory import AwsClients
from providers.ports import ProviderError
from tests.control_plane.providers import contracts
from tests.helpers import wait_until

pytestmark = pytest.mark.aws


@pytest.fixture
def bus(clients: AwsClients) -> Iterator[SnsEventBus]:
    made = SnsEventBus(clients.sns, None, create_topics=True)
    yield made
    made.close()


def test_sns_bus_contract(bus: SnsEventBus) -> None:
    seen = contracts.check_event_bus(
        bus, deliver=lambda: wait_until(lambda: bus.delivered >= 1, timeout_s=10, what="SNS delivery")
    )
    assert seen == [("alarms", {"tenant_id": "ten_a", "n": 1})]
    assert bus.receiver_url is not None and bus.receiver_url.startswith("http://127.0.0.1:")


def test_sns_bus_isolates_failing_subscribers_and_shares_one_subscription(
    bus: SnsEventBus, clients: AwsClients
) -> None:
    seen: list[dict[str, Any]] = []

    def broken(_: str, __: Any) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("rollbacks", broken)
    bus.subscribe("rollbacks", lambda _t, msg: seen.append(dict(msg)))
    arn = bus.topic_arn("rollbacks")
    assert arn is not None and arn.endswith(":" + topic_name("rollbacks"))
    subscriptions = clients.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert len(subscriptions) == 1 and subscriptions[0]["Protocol"] == "http"

    bus.publish("rollbacks", {"tenant_id": "ten_b", "weights": {"mv_1": 10_000}, "score": 0.25})
    wait_until(lambda: seen, timeout_s=10, what="delivery to the healthy subscriber")
    assert seen == [{"tenant_id": "ten_b", "weights": {"mv_1": 10_000}, "score": 0.25}]

    bus.close()
    assert clients.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert bus.receiver_url is None


def test_sns_bus_without_a_topic_drops_publishes_and_refuses_subscribers(clients: AwsClients) -> None:
    bus = SnsEventBus(clients.sns, {}, create_topics=False)
    bus.publish("unmapped", {"x": 1})  # dropped with a warning, like a topic nobody listens to
    with pytest.raises(ProviderError, match="no SNS topic"):
        bus.subscribe("unmapped", lambda _t, _m: None)
    assert clients.sns.list_topics()["Topics"] == []


def test_sns_bus_uses_configured_topic_arns(clients: AwsClients) -> None:
    arn = clients.sns.create_topic(Name="fraudrail-alarms")["TopicArn"]
    bus = SnsEventBus(clients.sns, {"alarms": arn}, create_topics=False)
    stub = Stubber(clients.sns)
    stub.add_response(
        "publish",
        {"MessageId": "m-1"},
        {
            "TopicArn": arn,
            "Message": json.dumps({"tenant_id": "ten_a"}, separators=(",", ":")),
            "MessageAttributes": {"topic": {"DataType": "String", "StringValue": "alarms"}},
        },
    )
    with stub:
        bus.publish("alarms", {"tenant_id": "ten_a"})
    stub.assert_no_pending_responses()


def test_sns_receiver_confirms_subscriptions_with_the_token_and_ignores_strangers(
    bus: SnsEventBus, clients: AwsClients
) -> None:
    got: list[dict[str, Any]] = []
    bus.subscribe("alarms", lambda _t, msg: got.append(dict(msg)))
    arn = bus.topic_arn("alarms")
    url = f"{bus.receiver_url}/sns/alarms"

    def post(envelope: dict[str, Any]) -> int:
        request = urllib.request.Request(url, data=json.dumps(envelope).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)

    stub = Stubber(clients.sns)
    stub.add_response(
        "confirm_subscription", {"SubscriptionArn": f"{arn}:sub-1"}, {"TopicArn": arn, "Token": "tok-123"}
    )
    with stub:
        # Real SNS sends this first; the receiver confirms through the API, never by fetching a URL.
        assert (
            post(
                {
                    "Type": "SubscriptionConfirmation",
                    "TopicArn": arn,
                    "Token": "tok-123",
                    "SubscribeURL": "http://169.254.169.254/latest/meta-data/",
                }
            )
            == 200
        )
        # A notification for a topic this bus did not subscribe to is ignored.
        assert post({"Type": "Notification", "TopicArn": arn + "-other", "Message": "{}"}) == 200
    stub.assert_no_pending_responses()
    assert got == []
    assert post({"Type": "Notification", "TopicArn": arn, "Message": json.dumps({"n": 2})}) == 200
    assert got == [{"n": 2}]


def test_sns_receiver_answers_500_when_a_subscriber_fails_so_sns_retries(bus: SnsEventBus) -> None:
    got: list[dict[str, Any]] = []
    failures = [RuntimeError("database is down")]

    def flaky(_: str, msg: Any) -> None:
        if failures:
            raise failures.pop()
        got.append(dict(msg))

    bus.subscribe("flagged.stored", flaky)
    arn = bus.topic_arn("flagged.stored")
    envelope = {"Type": "Notification", "TopicArn": arn, "Message": json.dumps({"flagged_id": "flg_1"})}

    def post() -> int:
        request = urllib.request.Request(
            f"{bus.receiver_url}/sns/flagged.stored", data=json.dumps(envelope).encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert post() == 500 and got == []  # SNS delivers it again (its HTTP delivery retry policy)
    assert post() == 200 and got == [{"flagged_id": "flg_1"}]


def test_sns_bus_delivery_modes_and_broadcast_to_every_process(bus: SnsEventBus, clients: AwsClients) -> None:
    def eventually(cond: Callable[[], bool]) -> None:
        wait_until(cond, timeout_s=10, what="SNS delivery")

    contracts.check_delivery_modes(bus, deliver=eventually)
    other = SnsEventBus(clients.sns, None, create_topics=True)  # a second process: its own receiver
    try:
        contracts.check_broadcast_across_processes(bus, other, deliver=eventually)
    finally:
        other.close()
