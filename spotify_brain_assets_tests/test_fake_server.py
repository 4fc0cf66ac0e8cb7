"""The fake Spotify + ReccoBeats server speaks the documented contract (external-apis.md §7)."""

import base64
import pandas as pd
import pytest
import requests

from spotify_brain_assets.fakes import FakeServer, Fault, make_track, reccobeats_id

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

T1 = make_track("5FVd6KXrgO9B3JPmC8OPst", "Do I Wanna Know?", ["Arctic Monkeys"], "AM", 272_394)
T2 = make_track("6bnmRsdxYacqLSlS36EJT6", "Rich Woman", ["Robert Plant", "Alison Krauss"], "Raising Sand", 243_480)
UNKNOWN = "0000000000000000000000"


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.set_clock("2026-09-20T23:00:00Z")
        yield server


def token(fake: FakeServer) -> str:
    reply = requests.post(
        f"{fake.accounts_url}/api/token",
        data={"grant_type": "refresh_token", "refresh_token": fake.refresh_token},
        auth=(fake.client_id, fake.client_secret),
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def get(fake: FakeServer, path: str, params=None, bearer: str | None = None, base: str | None = None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.get(f"{base or fake.api_url}{path}", params=params, headers=headers, timeout=5)


def test_token_endpoint_accepts_basic_or_body_credentials_and_answers_documented_errors(fake):
    url = f"{fake.accounts_url}/api/token"
    grant = {"grant_type": "refresh_token", "refresh_token": fake.refresh_token}
    ok = requests.post(url, data=grant, auth=(fake.client_id, fake.client_secret), timeout=5).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 3600 and ok["scope"] == "user-read-recently-played"
    assert "refresh_token" not in ok
    body = requests.post(url, data={**grant, "client_id": fake.client_id, "client_secret": fake.client_secret}, timeout=5)
    assert body.status_code == 200

    as_json = requests.post(url, json=grant, auth=(fake.client_id, fake.client_secret), timeout=5)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "unsupported_grant_type")
    assert requests.post(url, data=grant, timeout=5).json() == {"error": "invalid_client"}
    wrong = requests.post(url, data=grant, auth=(fake.client_id, "nope"), timeout=5)
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_client", "error_description": "Invalid client"})
    garbage = requests.post(url, data={**grant, "refresh_token": "garbage"}, auth=(fake.client_id, fake.client_secret), timeout=5)
    assert garbage.json() == {"error": "invalid_grant", "error_description": "Invalid refresh token"}

    fake.revoke_refresh_token("Refresh token expired")
    expired = requests.post(url, data=grant, auth=(fake.client_id, fake.client_secret), timeout=5)
    assert (expired.status_code, expired.json()["error_description"]) == (400, "Refresh token expired")


def test_rotation_retires_the_old_refresh_token(fake):
    fake.rotate_refresh_tokens = True
    url = f"{fake.accounts_url}/api/token"
    auth = (fake.client_id, fake.client_secret)
    first = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": fake.refresh_token}, auth=auth, timeout=5).json()
    assert first["refresh_token"] != fake.refresh_token
    again = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": fake.refresh_token}, auth=auth, timeout=5)
    assert again.json()["error"] == "invalid_grant"
    rotated = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=auth, timeout=5)
    assert rotated.status_code == 200


def test_recently_played_lists_the_newest_50_complete_visible_plays_newest_first(fake):
    start = pd.Timestamp("2026-09-20T18:00:00Z")
    for i in range(60):
        fake.add_play(T1 if i % 2 else T2, start + pd.Timedelta(minutes=3 * i))
    fake.add_play(T1, "2026-09-20T21:10:00.5Z", ms_played=30_000)  # a skip of exactly 30 s: never listed
    fake.add_play(T2, "2026-09-20T21:20:00Z", visible_at="2026-09-21T02:00:00Z")  # appears late
    fake.add_play(T1, "2026-09-20T23:03:00Z")  # still playing
    bearer = token(fake)

    page = get(fake, "/v1/me/player/recently-played", {"limit": 50}, bearer).json()
    played = [item["played_at"] for item in page["items"]]
    assert len(played) == 50 and played == sorted(played, reverse=True)
    assert played[0] == "2026-09-20T20:57:00.000Z" and played[-1] == "2026-09-20T18:30:00.000Z"
    assert page["cursors"] == {
        "after": str(pd.Timestamp(played[0]).value // 10**6),
        "before": str(pd.Timestamp(played[-1]).value // 10**6),
    }
    assert "before=" in page["next"] and "total" not in page
    track = page["items"][0]["track"]
    assert {"popularity", "available_markets", "linked_from"}.isdisjoint(track) and track["external_ids"]["isrc"]

    fake.set_clock("2026-09-21T03:00:00Z")
    newest = get(fake, "/v1/me/player/recently-played", {"limit": 2}, bearer).json()["items"]
    assert [i["played_at"] for i in newest] == ["2026-09-20T23:03:00.000Z", "2026-09-20T21:20:00.000Z"]

    after = pd.Timestamp("2026-09-20T23:03:00Z").value // 10**6
    empty = get(fake, "/v1/me/player/recently-played", {"limit": 50, "after": after}, bearer).json()
    assert empty == {"items": [], "next": None, "cursors": None, "limit": 50, "href": empty["href"]}


def test_after_pages_forward_and_before_pages_back(fake):
    start = pd.Timestamp("2026-09-20T20:00:00Z")
    for i in range(10):
        fake.add_play(T1, start + pd.Timedelta(minutes=4 * i))
    bearer = token(fake)
    after = (start + pd.Timedelta(minutes=10)).value // 10**6
    first = get(fake, "/v1/me/player/recently-played", {"limit": 3, "after": after}, bearer).json()
    assert [i["played_at"][11:16] for i in first["items"]] == ["20:20", "20:16", "20:12"]
    second = requests.get(first["next"], headers={"Authorization": f"Bearer {bearer}"}, timeout=5).json()
    assert [i["played_at"][11:16] for i in second["items"]] == ["20:32", "20:28", "20:24"]
    back = requests.get(
        get(fake, "/v1/me/player/recently-played", {"limit": 4}, bearer).json()["next"], headers={"Authorization": f"Bearer {bearer}"}, timeout=5
    ).json()
    assert [i["played_at"][11:16] for i in back["items"]] == ["20:20", "20:16", "20:12", "20:08"]


def test_recently_played_validates_its_parameters_and_the_token(fake):
    bearer = token(fake)
    for params in ({"limit": 0}, {"limit": 51}, {"after": 1, "before": 2}, {"after": "yesterday"}):
        reply = get(fake, "/v1/me/player/recently-played", params, bearer)
        assert reply.status_code == 400 and reply.json()["error"]["status"] == 400
    missing = get(fake, "/v1/me/player/recently-played")
    assert missing.status_code == 401 and 'error="missing_token"' in missing.headers["WWW-Authenticate"]
    fake.expire_access_tokens()
    expired = get(fake, "/v1/me/player/recently-played", None, bearer)
    assert expired.json() == {"error": {"status": 401, "message": "Missing/invalid/expired access token"}}


def test_single_track_lookup_and_the_removed_batch_lookup(fake):
    fake.add_track(T1)
    bearer = token(fake)
    assert get(fake, f"/v1/tracks/{T1['id']}", None, bearer).json()["name"] == "Do I Wanna Know?"
    assert get(fake, "/v1/tracks/not-an-id", None, bearer).json() == {"error": {"status": 400, "message": "invalid id"}}
    assert get(fake, f"/v1/tracks/{UNKNOWN}", None, bearer).status_code == 404
    batch = get(fake, "/v1/tracks", {"ids": T1["id"]}, bearer)
    assert (batch.status_code, batch.json()) == (403, {"error": {"status": 403, "message": "Forbidden"}})
    fake.dev_mode = False
    legacy = get(fake, "/v1/tracks", {"ids": f"{T1['id']},{UNKNOWN}"}, bearer).json()
    assert legacy["tracks"][0]["id"] == T1["id"] and legacy["tracks"][1] is None
    assert get(fake, "/v1/audio-features", {"ids": T1["id"]}, bearer).status_code == 403  # gone since 2024


def test_reccobeats_audio_features_omit_unknown_ids_and_match_through_href(fake):
    fake.set_features(T1["id"], valence=0.405, tempo=85.03)
    fake.set_features(T2["id"], valence=0.479, key=-1)
    base = fake.reccobeats_url
    repeated = get(fake, "/v1/audio-features", {"ids": [T1["id"], UNKNOWN, T2["id"]]}, base=base).json()["content"]
    csv = get(fake, "/v1/audio-features", {"ids": f"{T1['id']},{UNKNOWN},{T2['id']}"}, base=base).json()["content"]
    assert repeated == csv and len(repeated) == 2
    assert [item["href"].rsplit("/", 1)[1] for item in repeated] == [T1["id"], T2["id"]]
    assert repeated[0]["id"] == reccobeats_id(T1["id"]) and "uri" not in repeated[0] and repeated[1]["key"] == -1
    by_uuid = get(fake, "/v1/audio-features", {"ids": reccobeats_id(T2["id"])}, base=base).json()["content"]
    assert by_uuid[0]["valence"] == 0.479
    assert get(fake, "/v1/audio-features", {"ids": [UNKNOWN] * 41}, base=base).status_code == 400
    assert get(fake, "/v1/audio-features", {}, base=base).status_code == 400
    assert get(fake, "/v1/audio-features", {"ids": [UNKNOWN] * 40}, base=base).json() == {"content": []}


def test_reccobeats_recommendations_validate_seeds_and_size(fake):
    for n, track in enumerate([T1, T2] + [make_track(name=f"Song {i}", artists=["Band"]) for i in range(5)]):
        fake.add_track(track)
        fake.set_features(track["id"], energy=n / 10)
    base = fake.reccobeats_url
    content = get(fake, "/v1/track/recommendation", {"seeds": T1["id"], "size": 3}, base=base).json()["content"]
    assert len(content) == 3 and T1["id"] not in {c["href"].rsplit("/", 1)[1] for c in content}
    assert {"trackTitle", "durationMs", "artists", "popularity"} <= set(content[0])
    assert get(fake, "/v1/track/recommendation", {"seeds": T1["id"]}, base=base).status_code == 400
    assert get(fake, "/v1/track/recommendation", {"seeds": [T1["id"]] * 6, "size": 3}, base=base).status_code == 400
    assert get(fake, "/v1/track/recommendation", {"seeds": UNKNOWN, "size": 3}, base=base).json()["error"]


def test_faults_are_consumed_in_order_and_rendered_per_service(fake):
    fake.inject("recently_played", Fault.rate_limited(retry_after=0))
    fake.inject("recently_played", Fault.rate_limited(retry_after=None, quota=True))
    fake.inject("recently_played", Fault.server_error(502))
    fake.inject("recently_played", Fault.malformed_json())
    fake.inject("audio_features", Fault.rate_limited(retry_after=3), times=None)
    bearer = token(fake)
    first = get(fake, "/v1/me/player/recently-played", None, bearer)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")
    quota = get(fake, "/v1/me/player/recently-played", None, bearer)
    assert "Retry-After" not in quota.headers and quota.json()["error"]["reason"] == "QUOTA_EXCEEDED"
    assert get(fake, "/v1/me/player/recently-played", None, bearer).status_code == 502
    malformed = get(fake, "/v1/me/player/recently-played", None, bearer)
    with pytest.raises(ValueError):
        malformed.json()
    assert get(fake, "/v1/me/player/recently-played", None, bearer).status_code == 200
    for _ in range(3):
        assert get(fake, "/v1/audio-features", {"ids": UNKNOWN}, base=fake.reccobeats_url).headers["Retry-After"] == "3"
    fake.clear_faults("audio_features")
    assert get(fake, "/v1/audio-features", {"ids": UNKNOWN}, base=fake.reccobeats_url).status_code == 200


def test_token_expiry_mid_run_and_slow_answers(fake):
    bearer = token(fake)
    fake.inject("track", Fault.token_expired())
    fake.add_track(T1)
    assert get(fake, f"/v1/tracks/{T1['id']}", None, bearer).status_code == 401
    assert get(fake, f"/v1/tracks/{T1['id']}", None, bearer).status_code == 401  # the token is gone for good
    fresh = token(fake)
    fake.inject("track", Fault.slow(0.3))
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{fake.api_url}/v1/tracks/{T1['id']}", headers={"Authorization": f"Bearer {fresh}"}, timeout=(1, 0.05))
    assert get(fake, f"/v1/tracks/{T1['id']}", None, fresh).status_code == 200


def test_authorize_redirects_to_a_loopback_uri_with_a_single_use_code(fake):
    url = f"{fake.accounts_url}/authorize"
    base = {"client_id": fake.client_id, "response_type": "code", "scope": "user-read-recently-played", "state": "xyz"}
    local = requests.get(url, params={**base, "redirect_uri": "http://localhost:8765/callback"}, allow_redirects=False, timeout=5)
    assert local.status_code == 400
    reply = requests.get(url, params={**base, "redirect_uri": "http://127.0.0.1:8765/callback"}, allow_redirects=False, timeout=5)
    assert reply.status_code == 303
    location = reply.headers["Location"]
    assert location.startswith("http://127.0.0.1:8765/callback?") and "state=xyz" in location
    code = requests.utils.urlparse(location).query.split("code=")[1].split("&")[0]
    auth = "Basic " + base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:8765/callback"}
    headers = {"Authorization": auth}
    granted = requests.post(f"{fake.accounts_url}/api/token", data=exchange, headers=headers, timeout=5).json()
    assert granted["refresh_token"] and granted["scope"] == "user-read-recently-played"
    reused = requests.post(f"{fake.accounts_url}/api/token", data=exchange, headers=headers, timeout=5).json()
    assert reused == {"error": "invalid_grant", "error_description": "Invalid authorization code"}


def test_demo_listener_by_hand_serves_plays_and_features():
    with FakeServer() as fake:
        count = fake.load_demo_listener(seed=7, days_back=2, days_ahead=0.5)
        assert count > 20
        visible = fake.visible_plays()
        assert 0 < len(visible) <= 50 and (visible["played_at"] <= fake.now).all()
        ids = list(dict.fromkeys(visible["track_id"]))[:40]
        content = get(fake, "/v1/audio-features", {"ids": ids}, base=fake.reccobeats_url).json()["content"]
        assert len(content) >= len(ids) * 0.8


def test_a_stopped_server_refuses_connections():
    fake = FakeServer().start()
    url = fake.url
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/spotify/v1/me/player/recently-played", timeout=1)
