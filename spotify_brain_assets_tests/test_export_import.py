"""The `import_export` job end to end: an export with every quirk, against a history polled from the API."""

import json
import zipfile

import pandas as pd
import pytest

from spotify_brain_assets.plays.schema import KEY
from spotify_brain_assets.sources.demo import catalog
from spotify_brain_assets.storage.paths import DataPaths

from spotify_brain_assets.definitions import defs

from .conftest import demo_at, materializations, run_job, step_errors, store_for

CLOCK = "2026-03-01T12:00:00Z"
S, M = pd.Timedelta(seconds=1), pd.Timedelta(minutes=1)


def extended(track, at, ms=200_000, names=None, **extra) -> dict:
    name, artist = names or (track.track_name, track.artist_name)
    record = {
        "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "platform": "ios", "ms_played": ms, "conn_country": "SE",
        "ip_addr": "203.0.113.x", "master_metadata_track_name": name, "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": "Album", "spotify_track_uri": f"spotify:track:{track.track_id}",
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None, "audiobook_title": None,
        "audiobook_uri": None, "audiobook_chapter_uri": None, "audiobook_chapter_title": None,
        "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": True, "skipped": False,
        "offline": False, "offline_timestamp": int(at.timestamp()), "incognito_mode": False,
    }
    record.update(extra)
    return record


def non_music(at, **fields) -> dict:
    record = extended(catalog(7).iloc[0], at, ms=600_000)
    record.update(master_metadata_track_name=None, master_metadata_album_artist_name=None, spotify_track_uri=None)
    record.update(fields)
    return record


def account(track_name, artist, at, ms=180_000) -> dict:
    return {"endTime": at.strftime("%Y-%m-%d %H:%M"), "artistName": artist, "trackName": track_name, "msPlayed": ms}


def build_export(imports, api_plays: pd.DataFrame) -> tuple[set, set, set]:
    """Write an export with every quirk; returns the keys expected in history as export and
    account-data plays, and the keys expected in the unavailable record."""
    cat = catalog(7)
    known, lacking = cat[cat["has_features"]].reset_index(drop=True), cat[~cat["has_features"]]
    t = pd.Timestamp("2025-06-02T07:00:00Z")
    exp_export, exp_account, exp_unavailable = set(), set(), set()

    # extended history, current format: a zip holding two files of one package, a PDF and a video file
    main = []
    for i in range(40):
        at = t + i * 50 * M
        quirks = {"skipped": None} if i % 3 == 0 else {"skipped": bool(i % 2)}
        if i % 4 == 0:
            quirks["offline_timestamp"] = int(at.timestamp() * 1000)  # older clients: milliseconds
        if i % 5 == 0:
            quirks["incognito_mode"] = 0.0  # old dumps: floats
        main.append(extended(known.iloc[i], at, **quirks))
        exp_export.add((known.iloc[i].track_id, at))
    skipped = [
        non_music(t - 60 * M, spotify_episode_uri="spotify:episode:5m5v6w7x8y9z0a1b2c3d4e", episode_name="Episode 12", episode_show_name="Some Podcast"),
        non_music(t - 50 * M, spotify_episode_uri="spotify:episode:6m5v6w7x8y9z0a1b2c3d4e", episode_name="Episode 13"),
        non_music(t - 40 * M, audiobook_title="A Book", audiobook_uri="spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe", audiobook_chapter_uri="spotify:chapter:1"),
        non_music(t - 30 * M),  # a video or local file: no track uri
        extended(known.iloc[100], t - 20 * M, ms=29_000),  # under 30 s
        extended(known.iloc[101], t - 10 * M, ms=5_000, skipped=True),
        extended(known.iloc[102], t - 5 * M, incognito_mode=True),
        extended(known.iloc[103], t - 3 * M, incognito_mode=1.0),
    ]
    no_features = [extended(lacking.iloc[0], t + 60 * 50 * M), extended(lacking.iloc[0], t + 61 * 50 * M)]
    exp_unavailable |= {(lacking.iloc[0].track_id, t + k * 50 * M) for k in (60, 61)}
    # two ids sharing one artist and title (single and album version): both plays count, but
    # account-data plays of that title cannot be tied to either
    twin = ("Same Song", "Same Artist")
    twins = [extended(known.iloc[200], t + 62 * 50 * M, names=twin), extended(known.iloc[201], t + 63 * 50 * M, names=twin)]
    exp_export |= {(known.iloc[200].track_id, t + 62 * 50 * M), (known.iloc[201].track_id, t + 63 * 50 * M)}
    # plays the API already stored, 20-50 s off: the API's rows win
    api_dupes = [extended(row, row.played_at + ((-1) ** k) * (20 + 10 * k) * S) for k, row in enumerate(api_plays.itertuples())]
    part0 = main[:25] + skipped + no_features
    part1 = main[25:] + twins + api_dupes + [main[3]]  # plus a copy of a play inside the same export
    imports.mkdir(parents=True)
    folder = "Spotify Extended Streaming History"
    with zipfile.ZipFile(imports / "my_spotify_data.zip", "w") as archive:
        archive.writestr(f"{folder}/Streaming_History_Audio_2025_0.json", json.dumps(part0))
        archive.writestr(f"{folder}/Streaming_History_Audio_2025-2026_1.json", json.dumps(part1))
        archive.writestr(f"{folder}/Streaming_History_Video_2025.json", json.dumps([]))
        archive.writestr(f"{folder}/ReadMeFirst_ExtendedStreamingHistory.pdf", b"%PDF-1.4")

    # an older export (legacy endsong format) overlapping the new one: exact and shifted copies
    older = []
    for i in range(10):
        legacy = {k: v for k, v in main[i].items() if not k.startswith("audiobook")}
        legacy.update(username="listener", ip_addr_decrypted="203.0.113.9", user_agent_decrypted="unknown")
        if i % 2:
            legacy["ts"] = (t + i * 50 * M + 2 * S).strftime("%Y-%m-%dT%H:%M:%SZ")
        older.append(legacy)
    for i in range(3):
        at = t - pd.Timedelta(days=3) + i * 30 * M
        older.append(extended(known.iloc[300 + i], at, offline_timestamp=int(at.timestamp() * 1000)))
        exp_export.add((known.iloc[300 + i].track_id, at))
    (imports / "older export").mkdir()
    (imports / "older export" / "endsong_0.json").write_text(json.dumps(older))

    # account data: minute precision, names only
    rows = [account(known.iloc[i].track_name, known.iloc[i].artist_name, t + i * 50 * M) for i in range(5)]  # copies
    later = pd.Timestamp("2025-10-01T18:00:00Z")
    for i in range(3):  # tracks named in the extended history, played at other times
        rows.append(account(known.iloc[i].track_name, known.iloc[i].artist_name, later + i * 10 * M))
        exp_account.add((known.iloc[i].track_id, later + i * 10 * M))
    history_track = api_plays.iloc[0]
    rows.append(account(history_track.track_name, history_track.artist_name, later + 40 * M))  # named in history
    exp_account.add((history_track.track_id, later + 40 * M))
    rows.append(account(twin[0], twin[1], later + 50 * M))  # ambiguous
    rows += [account("Unknown Song", "Unknown Artist", later + 60 * M), account("Unknown Song", "Unknown Artist", later + 70 * M)]
    rows.append(account(history_track.track_name, history_track.artist_name, history_track.played_at.floor("min")))  # the API has it
    rows.append(account(known.iloc[9].track_name, known.iloc[9].artist_name, later + 80 * M, ms=20_000))  # short
    rows.append({"endTime": later.strftime("%Y-%m-%d %H:%M"), "podcastName": "Some Podcast", "episodeName": "Ep 1", "msPlayed": 1_200_000})
    (imports / "Spotify Account Data").mkdir()
    (imports / "Spotify Account Data" / "StreamingHistory_music_0.json").write_text(json.dumps(rows))
    (imports / "Spotify Account Data" / "Userdata.json").write_text("{}")
    return exp_export, exp_account, exp_unavailable


def snapshot(root) -> dict:
    """Every file under the data root (the lock aside), by content."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".writer.lock"}


def keys(df: pd.DataFrame) -> set:
    return set(zip(df["track_id"], df["played_at"]))


def test_an_export_with_every_quirk_imports_exactly_the_expected_plays(data_root, instance):
    demo = demo_at(CLOCK)
    assert run_job("update", instance, data_root, demo, "20260301_120000").success
    paths = DataPaths.at(data_root)
    polled = pd.read_parquet(paths.history)
    api_plays = polled.iloc[[10, 200, 400, 600, 800]]
    exp_export, exp_account, exp_unavailable = build_export(paths.imports, api_plays)

    result = run_job("import_export", instance, data_root, demo)
    assert result.success
    meta = materializations(result)["spotify_export"]
    history = pd.read_parquet(paths.history)
    # the polled plays are all still there, untouched
    assert keys(polled) <= keys(history)
    assert len(history[~history["origin"].str.startswith("export")]) == len(polled)
    assert keys(history[history["origin"] == "export"]) == exp_export
    assert keys(history[history["origin"] == "export-account"]) == exp_account
    assert not history.duplicated(KEY).any() and history["image_url"].notna().all()
    unavailable = pd.read_parquet(paths.unavailable_features)
    assert keys(unavailable) == exp_unavailable and set(unavailable["reason"]) == {"unknown to ReccoBeats (export import)"}

    exported = pd.read_parquet(paths.export_plays)
    assert len(exported) == len(exp_export) + len(exp_account) + len(api_plays)  # the API's copies stay here
    first = exported[exported["played_at"] == pd.Timestamp("2025-06-02T07:00:00Z")].iloc[0]
    assert pd.isna(first["skipped"]) and first["shuffle"] and first["ms_played"] == 200_000
    assert first["offline_at"] == pd.Timestamp("2025-06-02T07:00:00Z")  # from milliseconds
    assert exported["skipped"].isna().sum() >= 10 and exported["image_url"].eq("").all()
    unidentified = pd.read_parquet(paths.export_unidentified)
    assert dict(zip(unidentified["track_name"], unidentified["plays"])) == {"Unknown Song": 2, "Same Song": 1}

    assert meta["files"] == 4 and meta["ignored_files"] == 3
    assert meta["rows_skipped"] == 8 + 2 and meta["status"] == "complete"
    assert meta["already_in_history"] == len(api_plays)
    assert meta["feature_requests"] == meta["tracks_needing_features"] // 40 + 1

    # a second import of the same export changes nothing and asks ReccoBeats for nothing
    before = snapshot(data_root)
    again = run_job("import_export", instance, data_root, demo)
    assert again.success
    meta = materializations(again)["spotify_export"]
    assert meta["feature_requests"] == 0 and meta["file_changed"] is False and meta["new_plays"] == 0
    after = snapshot(data_root)
    changed = {name for name in before if after.get(name) != before[name]}
    assert changed <= {"history.parquet", "history.previous.parquet", "processed/export_import.json"}
    assert pd.read_parquet(paths.history).equals(history)

    # the API's record of an imported play, polled later, replaces it (and is not a lost play)
    imported = history[history["origin"] == "export"].iloc[5]
    late = history[history["origin"] == "export"].iloc[[5]].assign(
        played_at=imported["played_at"] + 35 * S, origin="spotify", image_url="https://i.scdn.co/image/x"
    )
    late.drop(columns=["session_id", "mood_cluster_id"]).to_parquet(paths.ingestion_file("20260301_123000"))
    replaced = run_job("import_export", instance, data_root, demo)
    assert replaced.success  # the blocking no_play_lost check passed
    final = pd.read_parquet(paths.history)
    assert len(final) == len(history)
    assert (imported["track_id"], imported["played_at"]) not in keys(final)
    assert (imported["track_id"], imported["played_at"] + 35 * S) in keys(final)
    assert keys(pd.read_parquet(paths.replaced_plays)) == {(imported["track_id"], imported["played_at"])}
    assert materializations(replaced)["plays"]["replaced_by_more_precise_record"] == 1


@pytest.mark.parametrize(
    "name, content",
    [
        ("Streaming_History_Audio_2026_7.json", '[{"ts": "2026-01-01T10:00:00Z", "ms_played": 2000'),
        ("StreamingHistory_music_3.json", '[{"endTime": "01/02/2026 10:00", "artistName": "A", "trackName": "T", "msPlayed": 1}]'),
    ],
)
def test_a_malformed_file_changes_nothing_and_is_named(data_root, instance, name, content):
    demo = demo_at(CLOCK)
    paths = DataPaths.at(data_root)
    cat = catalog(7)
    good = [extended(cat.iloc[i], pd.Timestamp("2025-06-02T07:00:00Z") + i * 10 * M) for i in range(5)]
    paths.imports.mkdir(parents=True)
    (paths.imports / "Streaming_History_Audio_2025_0.json").write_text(json.dumps(good))
    assert run_job("import_export", instance, data_root, demo).success
    before = snapshot(data_root)
    (paths.imports / name).write_text(content)
    result = defs.resolve_job_def("import_export").execute_in_process(
        instance=instance, resources={"store": store_for(data_root), "listening_source": demo}, raise_on_error=False
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert name in failure and "Nothing was imported" in failure
    after = snapshot(data_root)
    assert {k: v for k, v in after.items() if not k.startswith("imports/")} == {
        k: v for k, v in before.items() if not k.startswith("imports/")
    }


def test_a_real_export_with_only_the_demo_listener_configured_fails_and_records_nothing(data_root, instance):
    paths = DataPaths.at(data_root)
    paths.imports.mkdir(parents=True)
    strangers = [f"{i:02d}" + "x" * 20 for i in range(12)]  # ids the demo catalog does not have
    real = [
        extended(pd.Series({"track_id": t, "track_name": f"Song {t}", "artist_name": "Band"}), pd.Timestamp("2025-01-01T10:00:00Z") + i * 5 * M)
        for i, t in enumerate(strangers)
    ]
    (paths.imports / "Streaming_History_Audio_2025_0.json").write_text(json.dumps(real))
    result = defs.resolve_job_def("import_export").execute_in_process(
        instance=instance, resources={"store": store_for(data_root), "listening_source": demo_at(CLOCK)}, raise_on_error=False
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "demo listener" in message and "Nothing was recorded" in message
    assert not paths.unavailable_features.exists() and not paths.features_cache.exists() and not paths.export_plays.exists()


def test_importing_exports_whose_plays_share_a_key_twice_changes_nothing(data_root, instance):
    """Rows of one track ending at the same second (different ms_played) inside a file, and in two
    overlapping exports, are one play; the second import of the same files changes nothing."""
    demo = demo_at(CLOCK)
    paths = DataPaths.at(data_root)
    cat = catalog(7)
    known = cat[cat["has_features"]].reset_index(drop=True)
    t = pd.Timestamp("2025-06-02T07:00:00Z")
    plays = [extended(known.iloc[i], t + i * 10 * M) for i in range(30)]
    shorter = [extended(known.iloc[i], t + i * 10 * M, ms=120_000) for i in range(0, 30, 3)]  # same keys
    paths.imports.mkdir(parents=True)
    with zipfile.ZipFile(paths.imports / "my_spotify_data.zip", "w") as archive:
        archive.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2025_0.json", json.dumps(plays[:20] + shorter))
    (paths.imports / "older export").mkdir()  # overlaps: some keys once here, twice in the zip, and the reverse
    (paths.imports / "older export" / "endsong_0.json").write_text(json.dumps(plays[10:] + shorter[5:] + plays[24:25]))

    assert run_job("import_export", instance, data_root, demo).success
    exported, history = pd.read_parquet(paths.export_plays), pd.read_parquet(paths.history)
    before = snapshot(data_root)
    again = run_job("import_export", instance, data_root, demo)  # crashed: "Item wrong length"
    assert again.success
    assert len(exported) == 30 and not exported.duplicated(KEY).any()
    assert exported.set_index("track_id").loc[known.iloc[0].track_id, "ms_played"] == 200_000  # the longest record
    assert len(history) == 30 and not history.duplicated(KEY).any()
    meta = materializations(again)["spotify_export"]
    assert meta["new_plays"] == 0 and meta["file_changed"] is False and meta["feature_requests"] == 0
    after = snapshot(data_root)
    assert {name for name in before if after.get(name) != before[name]} <= {"history.parquet", "history.previous.parquet", "processed/export_import.json"}
    assert pd.read_parquet(paths.export_plays).equals(exported)
    assert pd.read_parquet(paths.history).equals(history)


def test_an_export_past_the_decompression_caps_is_refused_and_nothing_is_written(data_root, instance):
    from .test_export_logic import BOMB, write_bomb

    paths = DataPaths.at(data_root)
    paths.imports.mkdir(parents=True)
    write_bomb(paths.imports / "my_spotify_data.zip")  # 64 MiB of JSON in a 64 KiB zip
    for config, cap in [({}, "ratio over the cap of 100:1"), ({"max_compression_ratio": 1e6, "max_file_mib": 8}, "over the cap of 8 MiB per file")]:
        result = run_job(
            "import_export", instance, data_root, demo_at(CLOCK), run_config={"ops": {"spotify_export": {"config": config}}}, raise_on_error=False
        )
        assert not result.success
        assert f"my_spotify_data.zip:{BOMB}" in step_errors(result) and cap in step_errors(result)
        assert "Nothing was imported" in step_errors(result)
        assert set(snapshot(data_root)) == {"imports/my_spotify_data.zip"}


def test_nothing_to_import_is_a_skip_not_a_materialization(data_root, instance):
    demo = demo_at(CLOCK)
    assert run_job("update", instance, data_root, demo, "20260301_120000").success
    before = snapshot(data_root)
    result = run_job("import_export", instance, data_root, demo)
    assert result.success
    assert materializations(result) == {}  # spotify_export did not materialize, so neither did plays or history
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"plays", "history", "history_checks"}
    (observation,) = [e.asset_observation_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observation.metadata["status"].value == "nothing to import"
    assert observation.metadata["looked_in"].value == str(DataPaths.at(data_root).imports)
    assert snapshot(data_root) == before
