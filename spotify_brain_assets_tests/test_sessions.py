import numpy as np
import pandas as pd
import pytest

from spotify_brain_assets.plays.merge import merge_plays
from spotify_brain_assets.plays.schema import SESSIONIZED_COLUMNS
from spotify_brain_assets.plays.sessions import gap_rule_violations, renumber_tail, session_ids

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run


def plays_at(minutes, track_prefix="t", origin="demo"):
    base = pd.Timestamp("2026-01-01T08:00:00Z")
    n = len(minutes)
    return pd.DataFrame(
        {
            "track_id": [f"{track_prefix}{i}" for i in range(n)],
            "played_at": [base + pd.Timedelta(minutes=m) for m in minutes],
            "track_name": "x",
            "artist_name": "y",
            "valence": 0.5,
            "energy": 0.5,
            "danceability": 0.5,
            "acousticness": 0.5,
            "instrumentalness": 0.5,
            "tempo": 120.0,
            "tempo_norm": 0.48,
            "image_url": "",
            "origin": origin,
        }
    )


def test_gap_rule_starts_a_session_only_after_more_than_the_gap():
    times = plays_at([0, 30, 61, 62, 200])["played_at"]
    assert session_ids(times, 30).tolist() == [0, 0, 1, 1, 2]


def test_merge_keeps_ids_of_sessions_that_ended_before_the_new_plays():
    store, _ = merge_plays(plays_at([0, 0]).iloc[:0].reindex(columns=SESSIONIZED_COLUMNS), plays_at([0, 5, 100, 105, 300]))
    assert store["session_id"].tolist() == [0, 0, 1, 1, 2]
    # a late play at 120 joins session 1; a new one at 400 starts a session; session 0 keeps its id
    merged, added = merge_plays(store, plays_at([120, 400], track_prefix="n"))
    assert len(added) == 2 and len(merged) == 7
    assert merged["session_id"].tolist() == [0, 0, 1, 1, 1, 2, 3]
    assert gap_rule_violations(merged) == 0


def test_a_play_bridging_two_sessions_merges_them_and_renumbers_only_the_tail():
    store, _ = merge_plays(plays_at([0]).iloc[:0].reindex(columns=SESSIONIZED_COLUMNS), plays_at([0, 100, 140, 300]))
    assert store["session_id"].tolist() == [0, 1, 2, 3]
    merged, _ = merge_plays(store, plays_at([120], track_prefix="b"))
    assert merged["session_id"].tolist() == [0, 1, 1, 1, 2]


def test_merge_drops_duplicates_and_plays_without_features():
    store, _ = merge_plays(plays_at([0]).iloc[:0].reindex(columns=SESSIONIZED_COLUMNS), plays_at([0, 5]))
    incoming = pd.concat([plays_at([0, 5]), plays_at([10], track_prefix="z").assign(valence=np.nan)])
    merged, added = merge_plays(store, incoming)
    assert len(added) == 0 and len(merged) == 2


def test_renumber_tail_keeps_adopted_ids_that_do_not_start_at_zero():
    df = plays_at([0, 10, 100]).assign(session_id=[41, 41, 42])
    df = pd.concat([df, plays_at([110], track_prefix="n")], ignore_index=True)
    out = renumber_tail(df, df["played_at"].iloc[-1])
    assert out["session_id"].tolist() == [41, 41, 42, 42]


def test_gap_rule_violations_counts_wrong_ids():
    df = plays_at([0, 10, 100]).assign(session_id=[0, 1, 1])
    assert gap_rule_violations(df) == 2
    with pytest.raises(KeyError):
        gap_rule_violations(plays_at([0, 1]))
