"""The HTTP layer's retry policy, against the fake server over real HTTP (no mocks)."""

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from spotify_brain_assets.fakes import FakeServer, Fault
from spotify_brain_assets.sources.http import (
    ClientError,
    MalformedResponse,
    QuotaExceeded,
    RateLimited,
    RetryPolicy,
    ServiceFailing,
    retry_after_seconds,
)

from .spotify_fakes import FAST, http

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

FEATURES = "/v1/audio-features"
ID = "5FVd6KXrgO9B3JPmC8OPst"


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def features(client):
    return client.request("GET", FEATURES, params={"ids": [ID]})


def test_429_waits_the_retry_after_seconds_then_succeeds(fake):
    fake.inject("audio_features", Fault.rate_limited(retry_after="0.05"), times=2)
    client = http("reccobeats", fake.reccobeats_url)
    assert features(client) == {"content": []}
    assert client.stats["requests"] == 3 and client.stats["retries"] == 2
    assert client.stats["waited_s"] == pytest.approx(0.10)


@pytest.mark.parametrize("header", ["0", None], ids=["retry-after-0", "no-retry-after"])
def test_429_without_a_usable_retry_after_backs_off_from_the_floor(fake, header):
    fake.inject("audio_features", Fault.rate_limited(retry_after=header), times=3)
    client = http("reccobeats", fake.reccobeats_url)
    assert features(client) == {"content": []}
    floor = FAST.retry_after_floor_s
    assert client.stats["waited_s"] == pytest.approx(floor + 2 * floor + 4 * floor)  # never a zero-wait hammering


def test_429_whose_wait_exceeds_the_cap_gives_up_without_waiting(fake):
    fake.inject("audio_features", Fault.rate_limited(retry_after=30))
    client = http("reccobeats", fake.reccobeats_url)
    with pytest.raises(RateLimited, match="would exceed the 0.5 s this run may spend waiting"):
        features(client)
    assert client.stats["waited_s"] == 0 and len(fake.requests_to("audio_features")) == 1


def test_waiting_is_capped_across_requests_of_one_client(fake):
    client = http("reccobeats", fake.reccobeats_url, RetryPolicy(max_attempts=10, retry_after_floor_s=0.01, max_total_wait_s=0.25))
    fake.inject("audio_features", Fault.rate_limited(retry_after="0.1"), times=2)
    features(client)
    fake.inject("audio_features", Fault.rate_limited(retry_after="0.1"), times=2)
    with pytest.raises(RateLimited, match="giving up"):
        features(client)
    assert client.stats["waited_s"] <= 0.25


def test_persistent_429_gives_up_after_the_attempts(fake):
    fake.inject("audio_features", Fault.rate_limited(retry_after=None), times=None)
    client = http("reccobeats", fake.reccobeats_url)
    with pytest.raises(RateLimited, match="on all 4 attempts") as caught:
        features(client)
    assert caught.value.endpoint == f"GET {FEATURES}" and caught.value.status == 429
    assert len(fake.requests_to("audio_features")) == FAST.max_attempts


def test_quota_exceeded_is_not_retried(fake):
    fake.inject("recently_played", Fault.rate_limited(retry_after=None, quota=True), times=None)
    client = http("spotify", fake.api_url)
    with pytest.raises(QuotaExceeded, match="QUOTA_EXCEEDED"):
        client.request("GET", "/v1/me/player/recently-played")
    assert len(fake.requests_to("recently_played")) == 1 and client.stats["waited_s"] == 0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_with_bounded_jittered_backoff(fake, status):
    fake.inject("audio_features", Fault.server_error(status), times=3)
    client = http("reccobeats", fake.reccobeats_url)
    assert features(client) == {"content": []}
    steps = [min(FAST.backoff_max_s, FAST.backoff_s * 2**i) for i in range(3)]
    assert sum(steps) / 2 <= client.stats["waited_s"] <= sum(steps)


def test_persistent_server_errors_fail_naming_the_endpoint(fake):
    fake.inject("audio_features", Fault.server_error(503), times=None)
    client = http("reccobeats", fake.reccobeats_url)
    with pytest.raises(ServiceFailing, match=r"reccobeats GET /v1/audio-features answered 503 on all 4 attempts"):
        features(client)


def test_a_response_slower_than_the_read_timeout_is_retried(fake):
    fake.inject("audio_features", Fault.slow(0.6))
    client = http("reccobeats", fake.reccobeats_url)
    assert features(client) == {"content": []}
    assert client.stats["retries"] == 1


def test_persistent_timeouts_and_refused_connections_fail_after_the_attempts(fake):
    fake.inject("audio_features", Fault.slow(0.6), times=None)
    client = http("reccobeats", fake.reccobeats_url, RetryPolicy(max_attempts=2, backoff_s=0.001, max_total_wait_s=0.5))
    with pytest.raises(ServiceFailing, match="timed out .*on all 2 attempts"):
        features(client)
    url = fake.reccobeats_url
    fake.stop()
    gone = http("reccobeats", url)
    with pytest.raises(ServiceFailing, match="could not be reached"):
        features(gone)
    assert gone.stats["requests"] == FAST.max_attempts


def test_malformed_json_names_the_endpoint_and_is_not_retried(fake):
    fake.inject("audio_features", Fault.malformed_json(), times=None)
    client = http("reccobeats", fake.reccobeats_url)
    with pytest.raises(MalformedResponse, match=r"reccobeats GET /v1/audio-features answered 200 with a body that is not valid JSON") as caught:
        features(client)
    assert "5FVd6KXrgO9B" not in str(caught.value)  # bodies are never quoted: they may hold tokens
    assert caught.value.__cause__ is None and len(fake.requests_to("audio_features")) == 1


def test_client_errors_carry_the_services_message_and_are_not_retried(fake):
    client = http("reccobeats", fake.reccobeats_url)
    with pytest.raises(ClientError, match="answered 400: Bad Request: ids must hold 1 to 40 ids, not 41") as caught:
        client.request("GET", FEATURES, params={"ids": [ID] * 41})
    assert caught.value.status == 400 and client.stats["requests"] == 1


def test_retry_after_parsing():
    now = datetime(2026, 9, 20, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == pytest.approx(90)
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
