"""The Spotify Web API client against the fake over HTTP: cursor, paging, dedupe, lookups, 401/403."""

import pandas as pd
import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, make_track
from spotify_brain_assets.plays.parse import PayloadError, item_rows
from spotify_brain_assets.sources.http import ClientError, MalformedResponse

from .spotify_fakes import spotify_client

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

START = pd.Timestamp("2026-09-20T20:00:00Z")
PLAYLIST = {"type": "playlist", "uri": "spotify:playlist:37i9dQZEVXcT0vULPoxsJt", "href": "x", "external_urls": {}}


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.set_clock("2026-09-20T23:00:00Z")
        yield server


def listen(fake, n, **kw):
    tracks = [make_track(name=f"Song {i}", artists=[f"Band {i % 3}"]) for i in range(n)]
    for i, track in enumerate(tracks):
        fake.add_play(track, START + pd.Timedelta(minutes=4 * i), context=PLAYLIST if i % 2 else None, **kw)
    return tracks


def played(items):
    return [pd.Timestamp(i["played_at"]) for i in items]


def test_after_returns_only_later_plays_oldest_first_without_duplicates(fake):
    tracks = listen(fake, 10)
    fake.add_play(tracks[7], START + pd.Timedelta(minutes=28))  # the API listing one play twice
    client = spotify_client(fake)
    items = client.recently_played(after=(START + pd.Timedelta(minutes=10)).to_pydatetime())
    assert played(items) == [START + pd.Timedelta(minutes=m) for m in range(12, 40, 4)]
    (request,) = fake.requests_to("recently_played")
    assert request.query == {"limit": ["50"], "after": [str((START + pd.Timedelta(minutes=10)).value // 10**6)]}
    assert {type(i["context"]) for i in items} == {dict, type(None)}  # context may be null
    rows = item_rows(items, "spotify")
    assert rows["track_name"].tolist() == [f"Song {i}" for i in range(3, 10)]
    assert rows["image_url"].str.contains("/ab67616d00001e02").all()  # the 300 px image
    assert rows["duration_ms"].tolist() == [t["duration_ms"] for t in tracks[3:]]  # each track's length


def test_a_missing_track_length_stays_unknown_and_a_malformed_one_is_refused():
    item = {"played_at": "2026-09-20T20:00:00Z", "track": make_track(name="Song")}
    del item["track"]["duration_ms"]
    assert item_rows([item], "spotify")["duration_ms"].isna().all()
    item["track"]["duration_ms"] = "long"
    with pytest.raises(PayloadError, match="duration_ms"):
        item_rows([item], "spotify")


def test_played_at_without_milliseconds_is_read(fake):
    listen(fake, 3)
    fake.millisecond_timestamps = False
    items = spotify_client(fake).recently_played(after=None)
    assert items[0]["played_at"] == "2026-09-20T20:00:00Z"
    assert item_rows(items, "spotify")["played_at"].tolist() == [START + pd.Timedelta(minutes=4 * i) for i in range(3)]


def test_full_pages_are_followed_with_the_cursor_only(fake):
    listen(fake, 7)
    client = spotify_client(fake)
    items = client.recently_played(after=START.to_pydatetime(), limit=3)
    assert played(items) == [START + pd.Timedelta(minutes=4 * i) for i in range(1, 7)]
    assert [r.query.get("after") for r in fake.requests_to("recently_played")] == [
        [str(START.value // 10**6)],
        [str((START + pd.Timedelta(minutes=12)).value // 10**6)],
        [str((START + pd.Timedelta(minutes=24)).value // 10**6)],
    ]
    fake.reset_requests()
    everything = client.recently_played(after=None, limit=4)
    assert len(everything) == 7 and "before" in fake.requests_to("recently_played")[1].query


def test_a_track_is_looked_up_alone_and_only_when_its_item_lacks_something(fake):
    tracks = listen(fake, 4)
    bare = make_track(name="Bare", artists=["Lone"])
    fake.add_play(bare, START + pd.Timedelta(minutes=30), omit=("album",))
    fake.add_play(bare, START + pd.Timedelta(minutes=34), omit=("album",))
    nameless = make_track(name="Named Later", artists=["Someone"])
    fake.add_play(nameless, START + pd.Timedelta(minutes=38), omit=("name", "artists"))
    client = spotify_client(fake)
    rows = item_rows(client.recently_played(after=None), "spotify")
    assert sorted(r.path.rsplit("/", 1)[1] for r in fake.requests_to("track")) == sorted([bare["id"], nameless["id"]])
    assert fake.requests_to("tracks_batch") == []
    assert rows.loc[rows["track_id"] == bare["id"], "image_url"].str.startswith("https://i.scdn.co/").all()
    assert rows.loc[rows["track_id"] == nameless["id"], ["track_name", "artist_name"]].values.tolist() == [["Named Later", "Someone"]]
    assert client.track_lookups == 2 and len(rows) == len(tracks) + 3


def test_an_unknown_track_keeps_its_item_as_served(fake):
    ghost = make_track("0000000000000000000000", "Ghost", ["Nobody"])
    fake.add_play(ghost, START, omit=("album",))
    fake.forget_track(ghost["id"])  # Spotify no longer knows it
    items = spotify_client(fake).recently_played(after=None)
    assert items[0]["track"]["name"] == "Ghost" and "album" not in items[0]["track"]


def test_an_access_token_expiring_mid_run_is_refreshed_once(fake):
    listen(fake, 3)
    client = spotify_client(fake)
    client.recently_played(after=None)
    fake.inject("recently_played", Fault.token_expired())
    assert len(client.recently_played(after=None)) == 3
    assert len(fake.requests_to("token")) == 2


def test_a_second_401_in_a_row_fails(fake):
    fake.inject("recently_played", Fault.token_expired(), times=None)
    with pytest.raises(ClientError, match="answered 401: Missing/invalid/expired access token"):
        spotify_client(fake).recently_played(after=None)
    assert len(fake.requests_to("recently_played")) == 2 and len(fake.requests_to("token")) == 2


def test_403_explains_development_mode_access(fake):
    fake.inject("recently_played", Fault.forbidden())
    with pytest.raises(ClientError, match="allowlist") as caught:
        spotify_client(fake).recently_played(after=None)
    assert caught.value.status == 403


def test_malformed_json_names_the_endpoint(fake):
    fake.inject("recently_played", Fault.malformed_json())
    with pytest.raises(MalformedResponse, match="spotify GET /v1/me/player/recently-played answered 200"):
        spotify_client(fake).recently_played(after=None)


def test_plays_appearing_late_are_returned_once_visible(fake):
    track = make_track(name="Late One", artists=["Band"])
    fake.add_play(track, "2026-09-20T22:00:00Z", visible_at="2026-09-20T23:30:00Z")
    fake.add_play(track, "2026-09-20T22:10:00Z", ms_played=29_000)  # a skip never shows
    client = spotify_client(fake)
    assert client.recently_played(after=None) == []
    fake.set_clock("2026-09-20T23:31:00Z")
    assert played(client.recently_played(after=None)) == [pd.Timestamp("2026-09-20T22:00:00Z")]
