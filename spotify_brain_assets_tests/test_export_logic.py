"""The export import's pure logic: finding files, parsing both formats, dedupe, identification, fetching."""

import json
import struct
import tracemalloc
import zipfile
import zlib

import pandas as pd
import pytest

from spotify_brain_assets.imports.dedupe import combine, drop_repeats
from spotify_brain_assets.imports.discover import MIB, ExportFileError, ReadLimits, discover
from spotify_brain_assets.imports.features import fetch_features
from spotify_brain_assets.imports.identify import NOT_FOUND, identify
from spotify_brain_assets.imports.importer import plan_import, read_export
from spotify_brain_assets.plays.merge import match_within, merge_plays
from spotify_brain_assets.plays.schema import AUDIO_FEATURES, KEY, SESSIONIZED_COLUMNS, conform, key_in
from spotify_brain_assets.plays.sessions import gap_rule_violations

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

A, B, C = "4uLU6hMCjMI75M1A2tKUQC", "0VjIjW4GlUZAMYd2vXMi3b", "7qiZfU4dY1lWllzX7mPBI3"
T0 = pd.Timestamp("2024-03-15T14:00:00Z")


def ext(track=A, at=T0, ms=200_000, **extra) -> dict:
    """An extended-history record in the current format."""
    record = {
        "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "platform": "android", "ms_played": ms, "conn_country": "SE",
        "ip_addr": "203.0.113.x", "master_metadata_track_name": f"Song {track[:4]}" if track else None,
        "master_metadata_album_artist_name": f"Artist {track[:4]}" if track else None,
        "master_metadata_album_album_name": "Album" if track else None,
        "spotify_track_uri": f"spotify:track:{track}" if track else None, "episode_name": None,
        "episode_show_name": None, "spotify_episode_uri": None, "audiobook_title": None, "audiobook_uri": None,
        "audiobook_chapter_uri": None, "audiobook_chapter_title": None, "reason_start": "trackdone",
        "reason_end": "trackdone", "shuffle": False, "skipped": False, "offline": False,
        "offline_timestamp": int(at.timestamp()), "incognito_mode": False,
    }
    record.update(extra)
    return record


def write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def test_discover_reads_folders_and_zips_and_says_why_it_ignores_the_rest(tmp_path):
    folder = tmp_path / "imports"
    write(folder / "Spotify Extended Streaming History" / "Streaming_History_Audio_2014-2016_0.json", [])
    write(folder / "old" / "endsong_0.json", [])
    write(folder / "Streaming_History_Video_2020.json", [])
    (folder / "ReadMeFirst_ExtendedStreamingHistory.pdf").write_bytes(b"%PDF")
    with zipfile.ZipFile(folder / "my_spotify_data.zip", "w") as archive:
        archive.writestr("Spotify Account Data/StreamingHistory_music_0.json", "[]")
        archive.writestr("Spotify Account Data/StreamingHistory_podcast_0.json", "[]")
        archive.writestr("Spotify Account Data/StreamingHistory0.json", "[]")
        archive.writestr("Spotify Account Data/Userdata.json", "{}")
        archive.writestr("__MACOSX/Spotify Account Data/._StreamingHistory_music_0.json", "junk")
    found = discover(folder)
    kinds = {f.name: f.kind for f in found.files}
    assert kinds == {
        "Spotify Extended Streaming History/Streaming_History_Audio_2014-2016_0.json": "extended",
        "old/endsong_0.json": "extended",
        "my_spotify_data.zip:Spotify Account Data/StreamingHistory_music_0.json": "account",
        "my_spotify_data.zip:Spotify Account Data/StreamingHistory0.json": "account",
    }
    why = dict(found.ignored)
    assert why["Streaming_History_Video_2020.json"] == "video history (not music)"
    assert why["my_spotify_data.zip:Spotify Account Data/StreamingHistory_podcast_0.json"] == "podcast history (not music)"
    assert why["ReadMeFirst_ExtendedStreamingHistory.pdf"] == "documentation"
    assert why["my_spotify_data.zip:Spotify Account Data/Userdata.json"] == "not a streaming-history file"
    assert len(found.ignored) == 5
    # the two account files of the zip are one package; the folders are packages of their own
    assert len({f.package for f in found.files}) == 3
    assert discover(tmp_path / "missing").files == []


def test_extended_history_keeps_music_and_counts_every_skip(tmp_path):
    records = [
        ext(A, T0, shuffle=True, skipped=None, offline_timestamp=1710511200),  # seconds
        ext(B, T0 + pd.Timedelta(minutes=4), skipped=1.0, incognito_mode=0.0, offline=1.0, offline_timestamp=1710511440123),  # ms
        ext(C, T0 + pd.Timedelta(minutes=8), offline_timestamp=0, reason_end=None),
        ext(None, T0 + pd.Timedelta(minutes=40), ms=1_800_000, spotify_episode_uri="spotify:episode:5m5v6w7x8y9z0a1b2c3d4e", episode_name="Ep"),
        ext(None, T0 + pd.Timedelta(minutes=50), audiobook_uri="spotify:audiobook:1", audiobook_chapter_uri="spotify:chapter:2"),
        ext(None, T0 + pd.Timedelta(minutes=55)),  # a video or local file: no track id
        ext(A, T0 + pd.Timedelta(minutes=60), ms=29_999),
        ext(B, T0 + pd.Timedelta(minutes=65), incognito_mode=True),
        ext(C, T0 + pd.Timedelta(minutes=70), incognito_mode=1.0),
    ]
    write(tmp_path / "Streaming_History_Audio_2024_0.json", records)
    parsed = read_export(tmp_path)
    plays = parsed.plays
    assert plays["track_id"].tolist() == [A, B, C]
    assert plays["played_at"].tolist() == [T0, T0 + pd.Timedelta(minutes=4), T0 + pd.Timedelta(minutes=8)]
    assert plays["skipped"].tolist() == [pd.NA, True, False]
    assert plays["shuffle"].tolist() == [True, False, False]
    assert plays["offline"].tolist() == [False, True, False]
    assert plays["reason_end"].tolist() == ["trackdone", "trackdone", pd.NA]
    # offline_timestamp in seconds and in milliseconds give the same kind of instant; 0 is none
    assert plays["offline_at"].iloc[0] == pd.Timestamp("2024-03-15T14:00:00Z")
    assert plays["offline_at"].iloc[1] == pd.Timestamp("2024-03-15T14:04:00.123Z")
    assert pd.isna(plays["offline_at"].iloc[2])
    assert set(plays["origin"]) == {"export"}
    assert dict(parsed.skipped) == {
        "podcast episode": 1, "audiobook": 1, "no track id (video, local file or removed track)": 1,
        "shorter than 30 s": 1, "incognito": 2,
    }


def test_account_data_and_legacy_endsong_files_parse(tmp_path):
    write(tmp_path / "StreamingHistory0.json", [
        {"endTime": "2024-03-15 14:05", "artistName": "Arctic Monkeys", "trackName": "Do I Wanna Know?", "msPlayed": 272394},
        {"endTime": "2024-03-15 14:09", "artistName": "Arctic Monkeys", "trackName": "R U Mine?", "msPlayed": 12034},
        {"endTime": "2024-03-15 15:00", "podcastName": "Some Podcast", "episodeName": "Episode 12", "msPlayed": 1_800_000},
    ])
    legacy = {k: v for k, v in ext(A, T0).items() if not k.startswith("audiobook")}
    legacy.update(username="someone", ip_addr_decrypted="x", user_agent_decrypted="unknown", offline_timestamp=1520518477608)
    write(tmp_path / "endsong_0.json", [legacy])
    parsed = read_export(tmp_path)
    account = parsed.plays[parsed.plays["origin"] == "export-account"]
    assert account["played_at"].tolist() == [pd.Timestamp("2024-03-15T14:05:00Z")]  # minute precision, UTC
    assert account["track_id"].isna().all() and account["track_name"].tolist() == ["Do I Wanna Know?"]
    assert parsed.plays[parsed.plays["origin"] == "export"]["track_id"].tolist() == [A]
    assert dict(parsed.skipped) == {"shorter than 30 s": 1, "podcast episode": 1}


@pytest.mark.parametrize(
    "content, problem",
    [
        ('[{"ts": "2024-03-15T14:00:00Z", "ms_played": 1', "not valid JSON"),
        ('{"plays": []}', "expected a JSON array of plays"),
        ("[1, 2]", "expected a JSON array of objects"),
        ('[{"endTime": "2024-03-15 14:05", "artistName": "A", "msPlayed": 1}]', "lack ['ts', 'ms_played', 'spotify_track_uri']"),
        (json.dumps([ext(A, T0), ext(B, T0, ts="yesterday")]), "have no readable end time"),
        (json.dumps([ext(A, T0, ms_played="long")]), "no readable play duration"),
    ],
)
def test_a_malformed_file_is_named_with_its_problem(tmp_path, content, problem):
    write(tmp_path / "Streaming_History_Audio_2023_1.json", [ext(A, T0)])
    (tmp_path / "Streaming_History_Audio_2024_2.json").write_text(content)
    with pytest.raises(ExportFileError, match="Streaming_History_Audio_2024_2.json") as err:
        read_export(tmp_path)
    assert problem in str(err.value)


def test_a_truncated_zip_is_named(tmp_path):
    (tmp_path / "my_spotify_data.zip").write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(ExportFileError, match="my_spotify_data.zip: not a readable zip"):
        read_export(tmp_path)


BOMB = "Spotify Extended Streaming History/Streaming_History_Audio_2025_1.json"


def write_bomb(path, inflated_mib=64, declare=None, declare_crc=False):
    """A zip whose member is valid JSON (`[`, spaces, `]`) of `inflated_mib` MiB deflated about 1000:1,
    streamed so the test never holds it; `declare` rewrites the size its headers state (a lying zip),
    `declare_crc` also makes the CRC fit the declared prefix so that zipfile cannot tell."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2025_0.json", json.dumps([ext(A, T0)]))
        with archive.open(BOMB, "w") as member:
            member.write(b"[")
            for _ in range(inflated_mib):
                member.write(b" " * MIB)
            member.write(b"]")
    if declare is not None:
        data = bytearray(path.read_bytes())
        crc = zlib.crc32(b"[" + b" " * (declare - 1))
        local, central = data.index(BOMB.encode()) - 30, data.rindex(BOMB.encode()) - 46
        assert data[local:local + 4] == b"PK\x03\x04" and data[central:central + 4] == b"PK\x01\x02"
        struct.pack_into("<I", data, local + 22, declare)
        struct.pack_into("<I", data, central + 24, declare)
        if declare_crc:
            struct.pack_into("<I", data, local + 14, crc)
            struct.pack_into("<I", data, central + 16, crc)
        path.write_bytes(bytes(data))
    return path


def peak_while(call) -> int:
    """Bytes allocated at the peak while `call` runs: what reading held in memory."""
    tracemalloc.start()
    try:
        call()
    except ExportFileError as exc:
        error = exc
    else:
        error = None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error


def test_a_zip_bomb_is_refused_on_its_header_before_anything_is_inflated(tmp_path):
    write_bomb(tmp_path / "my_spotify_data.zip")  # 64 MiB in a 64 KiB zip
    peak, error = peak_while(lambda: read_export(tmp_path))
    assert f"my_spotify_data.zip:{BOMB}" in str(error) and "ratio over the cap of 100:1 (max_compression_ratio" in str(error)
    assert peak < 4 * MIB
    peak, error = peak_while(lambda: read_export(tmp_path, limits=ReadLimits(max_file_bytes=16 * MIB, max_ratio=1e9)))
    assert f"{BOMB}: 64 MiB uncompressed, over the cap of 16 MiB per file (max_file_mib" in str(error)
    assert peak < 4 * MIB
    peak, error = peak_while(lambda: read_export(tmp_path, limits=ReadLimits(max_total_bytes=32 * MIB, max_ratio=1e9)))
    assert f"{BOMB}: with it the export's files hold more than the cap of 32 MiB uncompressed (max_total_mib" in str(error)
    assert peak < 4 * MIB


@pytest.mark.parametrize("declare_crc", [False, True], ids=["size lies", "size and CRC lie"])
def test_a_zip_whose_header_understates_a_member_is_read_no_further_than_it_declares(tmp_path, declare_crc):
    write_bomb(tmp_path / "my_spotify_data.zip", declare=1000, declare_crc=declare_crc)
    assert discover(tmp_path).files[1].size == 1000  # the header passes every check
    peak, error = peak_while(lambda: read_export(tmp_path))
    problem = "not valid JSON" if declare_crc else "the zip is damaged, or its header does not match its content"
    assert f"my_spotify_data.zip:{BOMB}" in str(error) and problem in str(error)
    assert peak < 4 * MIB  # the old reader inflated all 64 MiB before cutting to 1000 bytes


def test_a_file_is_counted_as_it_streams_and_refused_past_the_cap(tmp_path):
    path = write(tmp_path / "Streaming_History_Audio_2025_0.json", [ext(A, T0)])
    found = discover(tmp_path).files[0]
    path.write_bytes(b"[" + b" " * (64 * MIB) + b"]")  # larger than when it was found: no declared size helps
    limits = ReadLimits(max_file_bytes=2 * MIB)
    limits.check([found])
    peak, error = peak_while(lambda: limits.read(found, 0))
    assert "Streaming_History_Audio_2025_0.json: more than 2 MiB once read, over the cap of 2 MiB per file" in str(error)
    assert peak < 4 * MIB
    with pytest.raises(ExportFileError, match="max_total_mib"):
        ReadLimits(max_total_bytes=3 * MIB).read(found, 2 * MIB)
    assert read_export(tmp_path, limits=ReadLimits()).bytes_read == 64 * MIB + 2  # within the caps: read whole

def plays_frame(rows, origin="export", package="p") -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["track_id", "played_at", "ms_played"])
    df["played_at"] = pd.to_datetime(df["played_at"], utc=True).dt.as_unit("ms")
    return df.assign(track_name="t", artist_name="a", origin=origin, package=package)


def test_copies_inside_one_export_are_dropped_but_repeats_are_kept():
    s = pd.Timedelta(seconds=1)
    plays = plays_frame([
        (A, T0, 200_000), (A, T0, 200_000),  # an exact copy
        (A, T0 + 20 * s, 200_000),  # a copy with a shifted ts: the same ms_played, overlapping in time
        (B, T0, 45_000), (B, T0 + 45 * s, 45_000),  # a short track played twice back to back: two plays
        (C, T0, 60_000), (C, T0 + 10 * s, 40_000),  # different durations: two plays
    ])
    kept = drop_repeats(plays, pd.Timedelta(seconds=60))
    assert sorted(zip(kept["track_id"], kept["played_at"])) == sorted(
        [(A, T0), (B, T0), (B, T0 + 45 * s), (C, T0), (C, T0 + 10 * s)]
    )



def test_rows_sharing_a_key_are_one_play_within_an_export_and_across_exports():
    s = pd.Timedelta(seconds=1)
    tolerance = pd.Timedelta(seconds=60)
    inside = plays_frame([(A, T0, 120_000), (A, T0, 200_000), (A, T0, 120_000), (B, T0, 60_000)])
    kept = drop_repeats(inside, tolerance)
    assert set(zip(kept["track_id"], kept["ms_played"])) == {(A, 200_000), (B, 60_000)}  # the longest record
    # a key listed twice in the first export and once in the second, and a key twice in the second
    first = plays_frame([(A, T0, 200_000), (A, T0, 90_000), (B, T0, 60_000)], package="2023")
    second = plays_frame([(A, T0, 200_000), (B, T0, 60_000), (B, T0, 50_000), (C, T0 + 5 * s, 1)], package="2024")
    second.index += 10
    out = combine([first, second], tolerance)
    assert set(zip(out["track_id"], out["package"])) == {(A, "2023"), (B, "2023"), (C, "2024")} and len(out) == 3
    # an export_plays.parquet written before keys were unique: the plan keeps each key once
    previous = first.assign(origin="export")
    plan = plan_import(second.reset_index(drop=True).assign(origin="export"), previous, previous.iloc[:0], tolerance)
    assert not plan.plays.duplicated(KEY).any() and len(plan.plays) == 3


def test_key_in_stays_aligned_with_its_rows_however_often_keys_repeat():
    rows = plays_frame([(A, T0, 1), (A, T0, 1), (B, T0, 1), (C, T0, 1)])
    other = plays_frame([(A, T0, 1), (A, T0, 1), (A, T0, 1), (C, T0, 1), (C, T0, 1)])
    assert key_in(rows, other).tolist() == [True, True, False, True]
    assert key_in(rows, other.iloc[:0]).tolist() == [False] * 4

def test_matching_is_one_to_one_and_prefers_the_nearest():
    s = pd.Timedelta(seconds=1)
    left = plays_frame([(A, T0 + 30 * s, 1), (A, T0 + 80 * s, 1), (B, T0, 1), (C, T0 + 61 * s, 1)])
    right = plays_frame([(A, T0 + 50 * s, 1), (A, T0 + 35 * s, 1), (C, T0, 1)])
    pairs = match_within(left, right, pd.Timedelta(seconds=60))
    assert sorted(zip(pairs["left"], pairs["right"])) == [(0, 1), (1, 0)]  # C is 61 s away: no match


def test_overlapping_exports_count_each_play_once_and_extended_beats_account_data():
    s = pd.Timedelta(seconds=1)
    first = plays_frame([(A, T0, 1), (A, T0 + 40 * s, 1), (B, T0, 1)], package="export 2023")
    second = plays_frame([(A, T0 + 2 * s, 1), (A, T0 + 41 * s, 1), (C, T0, 1)], package="export 2024")
    account = plays_frame([(B, T0.floor("min") - pd.Timedelta(minutes=1), 1), (C, T0 + 100 * s, 1), (A, T0 + 400 * s, 1)], origin="export-account")
    for offset, group in enumerate([second, account], start=1):
        group.index = group.index + 10 * offset
    out = combine([first, second, account], pd.Timedelta(seconds=60))
    # A twice (the repeat survives), B and C once, the account-data copy of B (within its minute) and
    # of C (within 60 s + its minute) dropped, the account-only play of A kept
    assert sorted(zip(out["track_id"], out["played_at"], out["origin"])) == sorted([
        (A, T0, "export"), (A, T0 + 40 * s, "export"), (B, T0, "export"), (C, T0, "export"),
        (A, T0 + 400 * s, "export-account"),
    ])


def test_a_song_on_repeat_is_matched_play_for_play_with_its_account_data_copies():
    # short plays of one track back to back, and the account data's minute-precision copies: the
    # nearest neighbour would pair 16:05 with 16:04:32 and leave a play counted twice
    ends = ["16:01:02", "16:04:32", "16:05:48", "16:06:58", "16:07:46"]
    day = "2025-01-05T"
    extended = plays_frame([(A, pd.Timestamp(day + e + "Z"), 60_000) for e in ends])
    account = plays_frame([(A, pd.Timestamp(day + e[:5] + ":00Z"), 60_000) for e in ends], origin="export-account")
    account.index = account.index + 100
    out = combine([extended, account], pd.Timedelta(seconds=60))
    assert len(out) == 5 and set(out["origin"]) == {"export"}


def features_frame(rows, origin):
    df = plays_frame(rows, origin=origin).drop(columns=["ms_played", "package"])
    for i, col in enumerate(AUDIO_FEATURES):
        df[col] = 0.1 * (i + 1) if col != "tempo" else 120.0
    df["tempo_norm"], df["image_url"] = 0.48, ""
    return df


def test_merge_with_tolerance_keeps_the_api_record_and_replaces_an_imported_one():
    s, m = pd.Timedelta(seconds=1), pd.Timedelta(minutes=1)
    api = features_frame([(A, T0, 0), (B, T0 + 10 * m, 0)], "spotify")
    store, _ = merge_plays(conform(api.iloc[:0], SESSIONIZED_COLUMNS), api)
    exported = features_frame(
        [
            (A, T0 + 25 * s, 0),  # the API's play of A, 25 s off: dropped
            (B, T0 + 10 * m + 30 * s, 0),  # the API's play of B: dropped
            (B, T0 + 12 * m, 0),  # another play of B, 2 min later: kept
            (C, T0 - 50 * m, 0),  # an hour earlier, a separate session: kept
        ],
        "export",
    )
    store2, added = merge_plays(store, exported, tolerance=pd.Timedelta(seconds=60))
    assert sorted(zip(added["track_id"], added["played_at"])) == [(B, T0 + 12 * m), (C, T0 - 50 * m)]
    assert len(store2) == 4 and gap_rule_violations(store2) == 0
    # the API's record of C's play arrives later: it replaces the imported row; two API plays of A
    # 20 s apart are two plays (no tolerance between API plays)
    late = features_frame([(C, T0 - 50 * m - 40 * s, 0), (A, T0 + 20 * s, 0)], "spotify")
    store3, added3 = merge_plays(store2, late, tolerance=pd.Timedelta(seconds=60))
    assert len(added3) == 2 and len(store3) == 5
    c_rows = store3[store3["track_id"] == C]
    assert c_rows["origin"].tolist() == ["spotify"] and c_rows["played_at"].tolist() == [T0 - 50 * m - 40 * s]
    assert gap_rule_violations(store3) == 0 and store3["played_at"].is_monotonic_increasing
    # account data (minute precision) is matched with a minute of slack, and yields to everything
    account = features_frame([(B, (T0 + 12 * m).floor("min") + m, 0), (A, T0 + 30 * m, 0)], "export-account")
    store4, added4 = merge_plays(store3, account, tolerance=pd.Timedelta(seconds=60))
    assert added4["played_at"].tolist() == [T0 + 30 * m]
    # without a tolerance, merging is exact as before
    _, exact = merge_plays(store, exported)
    assert len(exact) == 4


def test_account_plays_are_identified_only_when_one_track_id_fits():
    known = pd.DataFrame(
        {
            "track_id": [A, B, C, "1" * 22],
            "track_name": ["Do I Wanna Know?", "Halo", "Halo", "Team"],
            "artist_name": ["Arctic Monkeys", "Depeche Mode", "Depeche Mode", "Lorde, Someone Else"],
        }
    )
    account = pd.DataFrame(
        {
            "track_name": ["do i wanna know? ", "Halo", "Team", "Unknown"],
            "artist_name": ["Arctic Monkeys", "Depeche Mode", "Lorde", "Nobody"],
            "track_id": pd.array([pd.NA] * 4, dtype="string"),
            "played_at": [T0] * 4,
        },
        index=[10, 11, 12, 13],
    )
    found, rest = identify(account, known)
    assert dict(zip(found.index, found["track_id"])) == {10: A, 12: "1" * 22}
    assert rest.loc[11, "reason"].startswith("ambiguous: 2 track ids")
    assert rest.loc[13, "reason"] == NOT_FOUND


class Interrupted(Exception):
    pass


def test_fetch_checkpoints_what_arrived_when_interrupted_and_pauses_on_rate_limits():
    ids = [f"{i:022d}" for i in range(10)]
    known = set(ids) - {ids[3]}
    saved = []

    def answer(batch):
        return [{"href": f"https://open.spotify.com/track/{i}", **{f: 0.5 for f in AUDIO_FEATURES}} for i in batch if i in known]

    def killed_after_two(batch, calls=[]):
        calls.append(batch)
        if len(calls) == 3:
            raise Interrupted
        return answer(batch)

    with pytest.raises(Interrupted):
        fetch_features(ids, killed_after_two, lambda rows, unknown: saved.append((rows, unknown)), T0, batch_size=2, checkpoint_seconds=3600)
    # nothing was due by time, yet the interruption saved both completed batches
    assert len(saved) == 1 and sorted(saved[0][0]["track_id"]) == [ids[0], ids[1], ids[2]] and saved[0][1] == [ids[3]]

    class RateLimited(Exception):
        pass

    def limited(batch, calls=[]):
        calls.append(batch)
        if len(calls) > 1:
            raise RateLimited("429, Retry-After 3600")
        return answer(batch)

    saved.clear()
    seen = []
    outcome = fetch_features(ids, limited, lambda r, u: saved.append(r), T0, batch_size=4, checkpoint_seconds=0, pause_on=(RateLimited,), progress=seen.append)
    assert outcome.paused == "RateLimited: 429, Retry-After 3600" and outcome.batches == 1
    assert outcome.remaining == ids[4:] and len(saved) == 1 and len(saved[0]) == 3
    assert seen[0].batches_done == 1 and seen[0].batches_total == 3 and seen[0].eta_seconds is not None
    ticks = iter(range(100))
    budget = fetch_features(ids, answer, lambda r, u: None, T0, batch_size=2, budget_seconds=3, clock=lambda: next(ticks))
    assert budget.paused.startswith("time budget") and 0 < budget.batches < 5
    with pytest.raises(ValueError, match="batch_size must be 1 to 40"):
        fetch_features(ids, answer, lambda r, u: None, T0, batch_size=41)
