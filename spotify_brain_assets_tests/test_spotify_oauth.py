"""The refresh-token grant against the fake Accounts service: reuse, rotation, terminal errors."""

import json
import stat

import pytest

from spotify_brain_assets.fakes import FakeServer, Fault
from spotify_brain_assets.sources.oauth import AuthorizationExpired, InvalidClient, RefreshTokenStore, TokenManager

from .spotify_fakes import http, tokens

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def test_the_grant_is_form_encoded_with_basic_auth_and_the_token_is_reused(fake):
    manager = tokens(fake)
    first = manager.access_token()
    assert manager.access_token() == first and manager.refreshes == 1
    (request,) = fake.requests_to("token")
    assert request.auth_scheme == "Basic" and request.content_type == "application/x-www-form-urlencoded"
    assert request.form_keys == ("grant_type", "refresh_token")  # credentials only in the header
    manager.invalidate()
    assert manager.access_token() != first and manager.refreshes == 2


def test_a_token_close_to_expiry_is_refreshed_before_use(fake):
    fake.expires_in = 100  # less than the 120 s margin: never worth reusing
    manager = tokens(fake)
    assert manager.access_token() != manager.access_token()
    assert manager.refreshes == 2


def test_a_rotated_refresh_token_is_kept_for_the_next_run_in_a_private_file(fake, tmp_path):
    fake.rotate_refresh_tokens = True  # and the old token stops working
    store = tmp_path / "data" / ".secrets" / "spotify_refresh_token.json"
    for run in range(3):  # each run starts from the same configured (environment) token
        manager = tokens(fake, store)
        manager.access_token()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    doc = json.loads(store.read_text())
    assert doc["refresh_token"] == fake.refresh_tokens[-1] and fake.refresh_token not in store.read_text()
    assert len(fake.requests_to("token")) == 3


def test_a_stored_rotation_is_ignored_once_the_user_authorized_again(fake, tmp_path):
    store = tmp_path / "token.json"
    RefreshTokenStore(store).remember("the-token-before-re-authorizing", "its-stale-rotation")
    manager = tokens(fake, store)  # the environment now holds the new token: fake.refresh_token
    assert manager.access_token()
    assert RefreshTokenStore(store).current(fake.refresh_token) == fake.refresh_token


def test_without_a_new_refresh_token_the_old_one_stays_in_use(fake, tmp_path):
    fake.include_refresh_token = True  # the same token echoed back: nothing to store
    store = tmp_path / "token.json"
    manager = tokens(fake, store)
    manager.access_token()
    manager.invalidate()
    manager.access_token()
    assert not store.exists() and manager.refreshes == 2


@pytest.mark.parametrize("description", ["Refresh token expired", "Refresh token revoked"])
def test_invalid_grant_stops_with_instructions_and_is_not_retried(fake, description):
    fake.revoke_refresh_token(description)
    with pytest.raises(AuthorizationExpired, match="Run `spotify-brain authorize`") as caught:
        tokens(fake).access_token()
    assert f"invalid_grant: {description}" in str(caught.value)
    assert fake.refresh_token not in str(caught.value) and fake.client_secret not in str(caught.value)
    assert len(fake.requests_to("token")) == 1


def test_an_unknown_refresh_token_is_invalid_grant_too(fake):
    with pytest.raises(AuthorizationExpired, match="Invalid refresh token"):
        tokens(fake, refresh_token="not-a-token-spotify-knows").access_token()


def test_invalid_client_is_terminal(fake):
    manager = TokenManager(http("spotify accounts", fake.accounts_url), fake.client_id, "wrong-secret", fake.refresh_token)
    with pytest.raises(InvalidClient, match="SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET") as caught:
        manager.access_token()
    assert "wrong-secret" not in str(caught.value)
    fake.inject("token", Fault.invalid_client(description=None))
    with pytest.raises(InvalidClient, match=r"\(invalid_client\)"):
        tokens(fake).access_token()


def test_transient_token_endpoint_failures_are_retried(fake):
    fake.inject("token", Fault.server_error(503))
    fake.inject("token", Fault.rate_limited(retry_after=0))
    manager = tokens(fake)
    assert manager.access_token() in fake.issued_access_tokens
    assert len(fake.requests_to("token")) == 3


def test_missing_credentials_are_refused_before_any_request(fake):
    with pytest.raises(ValueError, match="all required"):
        TokenManager(http("spotify accounts", fake.accounts_url), fake.client_id, "", fake.refresh_token)
