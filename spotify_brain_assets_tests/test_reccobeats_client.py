"""The ReccoBeats client against the fake over HTTP: batches of 40, href matching, omitted ids."""

import pytest

from spotify_brain_assets.fakes import FakeServer, Fault, make_track, random_track_id, reccobeats_id
from spotify_brain_assets.plays.parse import feature_rows
from spotify_brain_assets.sources.http import MalformedResponse, RateLimited

from .spotify_fakes import reccobeats_client

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def test_features_come_in_batches_of_40_matched_through_href(fake):
    import numpy as np

    rng = np.random.default_rng(3)
    ids = [random_track_id(rng) for _ in range(95)]
    known = ids[::2]
    for n, track_id in enumerate(known):
        fake.set_features(track_id, valence=n / 100, tempo=80 + n)
    items = reccobeats_client(fake).audio_features(ids + ids[:5])  # repeats are asked once
    batches = [r.query["ids"] for r in fake.requests_to("audio_features")]
    assert [len(b) for b in batches] == [40, 40, 15] and sum(batches, []) == ids
    rows = feature_rows(items)
    assert rows["track_id"].tolist() == known  # unknown ids are simply absent
    assert rows.set_index("track_id").loc[known[3], "tempo"] == 83
    assert all(item["id"] == reccobeats_id(item["href"].rsplit("/", 1)[1]) for item in items)


def test_no_ids_means_no_request(fake):
    assert reccobeats_client(fake).audio_features([]) == []
    assert fake.requests == []


def test_rate_limits_are_waited_out(fake):
    fake.set_features("5FVd6KXrgO9B3JPmC8OPst", valence=0.405)
    fake.inject("audio_features", Fault.rate_limited(retry_after="0.02"), times=2)
    client = reccobeats_client(fake)
    assert len(client.audio_features(["5FVd6KXrgO9B3JPmC8OPst"])) == 1
    assert client.http.stats["retries"] == 2


def test_a_rate_limit_beyond_the_cap_raises(fake):
    fake.inject("audio_features", Fault.rate_limited(retry_after=60))
    with pytest.raises(RateLimited, match="reccobeats GET /v1/audio-features"):
        reccobeats_client(fake).audio_features(["5FVd6KXrgO9B3JPmC8OPst"])


def test_malformed_answers_name_the_endpoint(fake):
    fake.inject("audio_features", Fault.malformed_json())
    with pytest.raises(MalformedResponse, match="reccobeats GET /v1/audio-features"):
        reccobeats_client(fake).audio_features(["5FVd6KXrgO9B3JPmC8OPst"])


def test_recommendations_from_seeds_and_targets(fake):
    tracks = [make_track(name=f"Song {i}", artists=["Band"]) for i in range(12)]
    for i, track in enumerate(tracks):
        fake.add_track(track)
        fake.set_features(track["id"], energy=i / 12, valence=1 - i / 12)
    client = reccobeats_client(fake)
    found = client.recommendations([tracks[0]["id"]], size=4, negative_seeds=[tracks[1]["id"]], energy=0.9)
    hrefs = [t["href"].rsplit("/", 1)[1] for t in found]
    assert len(found) == 4 and tracks[0]["id"] not in hrefs and tracks[1]["id"] not in hrefs
    assert found[0]["trackTitle"].startswith("Song ")
    (request,) = fake.requests_to("recommendation")
    assert request.query["size"] == ["4"] and request.query["energy"] == ["0.9"]
    with pytest.raises(ValueError, match="1 to 5 seeds"):
        client.recommendations([t["id"] for t in tracks[:6]])
    with pytest.raises(ValueError, match="size must be 1 to 100"):
        client.recommendations([tracks[0]["id"]], size=101)
    with pytest.raises(ValueError, match="unknown recommendation targets"):
        client.recommendations([tracks[0]["id"]], moodiness=1.0)
