"""The `update` job on the demo listener: slots, late and duplicate plays, re-runs, pending features."""

import hashlib

import dagster as dg
import pandas as pd

from spotify_brain_assets.defs.history.history import plays
from spotify_brain_assets.defs.ingestion.ingestions import ingestions
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS, KEY, PLAY_COLUMNS
from spotify_brain_assets.sources.demo import DemoListener, catalog
from spotify_brain_assets.storage.files import read_json
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import TIMEZONE, demo_at, materializations, run_job, step_errors, store_for

FIRST = ("2026-11-26T09:00:00Z", "20261126_090000")
SECOND = ("2026-11-26T23:30:00Z", "20261126_233000")


def update(instance, root, clock, key):
    result = run_job("update", instance, root, demo_at(clock), key)
    assert result.success
    return result


def test_first_slot_writes_its_file_and_history_with_the_demo_backfill(instance, data_root):
    result = update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    slot = pd.read_parquet(paths.ingestion_file(FIRST[1]))
    history = pd.read_parquet(paths.history)
    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == len(slot) > 1500  # 90 days of listening
    span = history["played_at"].max() - history["played_at"].min()
    assert span >= pd.Timedelta(days=89)
    assert set(history["origin"]) == {"demo", "demo-backfill"}
    assert not history.isna().any().any() and not history.duplicated(KEY).any()
    lengths = catalog(7).set_index("track_id")["duration_ms"]  # demo_at's seed
    assert (history["duration_ms"] == history["track_id"].map(lengths)).all()  # each track's own length
    meta = materializations(result)
    assert meta["ingestions"]["demo_data"] is True and meta["history"]["demo_data"] is True
    assert meta["ingestions"]["pending_features"] > 0  # the demo has tracks without features
    assert all(c.passed for c in result.get_asset_check_evaluations())
    # the catalog's row count and column schema describe the files as written
    for key, path in [("ingestions", paths.ingestion_file(FIRST[1])), ("plays", paths.plays), ("history", paths.history)]:
        written = pd.read_parquet(path)
        assert meta[key]["dagster/row_count"] == len(written) and meta[key]["path"] == str(path)
        assert [c.name for c in meta[key]["dagster/column_schema"].columns] == list(written.columns)
    pending = meta["ingestions"]["pending_preview"]
    assert isinstance(pending, dg.TableMetadataValue) and 0 < len(pending.records) <= 10


def test_a_later_slot_adds_only_new_plays_including_late_ones(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    before = pd.read_parquet(paths.history)
    update(instance, data_root, *SECOND)
    after = pd.read_parquet(paths.history)
    second = pd.read_parquet(paths.ingestion_file(SECOND[1]))
    assert len(second) > 0
    assert second.merge(before[KEY], on=KEY).empty  # nothing the first slot had
    assert len(after) == len(before) + len(second)
    # the listener's truth: every play with features, visible by the second clock, is in history
    listener = DemoListener(timezone=TIMEZONE, now=pd.Timestamp(SECOND[0]).to_pydatetime())
    truth = listener.plays(pd.Timestamp(FIRST[0]) - pd.Timedelta(hours=1), pd.Timestamp(SECOND[0]))
    truth = truth[(truth["visible_at"] <= pd.Timestamp(SECOND[0])) & truth["has_features"]]
    late = truth[truth["visible_at"] > truth["played_at"] + pd.Timedelta(minutes=5)]
    assert len(late) > 0, "the demo should have late plays in this window"
    missing = truth[KEY].merge(after[KEY], on=KEY, how="left", indicator=True).query("_merge == 'left_only'")
    assert missing.empty
    # ids of sessions that ended before the second slot's earliest play did not change
    cut = second["played_at"].min()
    old = before[before["played_at"] < cut - pd.Timedelta(minutes=30)]
    assert after.set_index(KEY).loc[old.set_index(KEY).index, "session_id"].tolist() == old["session_id"].tolist()


def test_a_data_root_written_before_track_lengths_were_kept_still_updates(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    for path in [paths.plays, paths.history, paths.pending_features, paths.ingestion_file(FIRST[1])]:
        pd.read_parquet(path).drop(columns="duration_ms").to_parquet(path)
    before = pd.read_parquet(paths.history)[KEY]
    result = update(instance, data_root, *SECOND)
    history = pd.read_parquet(paths.history)
    new = history[KEY].merge(before, on=KEY, how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    assert history.loc[~new, "duration_ms"].isna().all() and history.loc[new, "duration_ms"].notna().all()
    assert all(c.passed for c in result.get_asset_check_evaluations())  # an unknown length is not a null


def test_rerunning_an_old_slot_loses_nothing_and_adds_no_duplicates(instance, data_root):
    update(instance, data_root, *FIRST)
    update(instance, data_root, *SECOND)
    paths = DataPaths.at(data_root)
    first_file = pd.read_parquet(paths.ingestion_file(FIRST[1]))
    history = pd.read_parquet(paths.history)
    # the first slot re-run at a later clock: its window no longer reaches its old plays
    result = update(instance, data_root, SECOND[0], FIRST[1])
    again = pd.read_parquet(paths.ingestion_file(FIRST[1]))
    assert first_file[KEY].merge(again[KEY], on=KEY).shape[0] == len(first_file)
    assert materializations(result)["ingestions"]["new_plays"] == 0
    final = pd.read_parquet(paths.history)
    assert len(final) == len(history) and not final.duplicated(KEY).any()


def test_plays_without_features_wait_then_are_recorded_unavailable(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    pending = pd.read_parquet(paths.pending_features)
    assert len(pending) > 0 and (pending["attempts"] == 1).all()
    history = pd.read_parquet(paths.history)
    assert pending[KEY].merge(history[KEY], on=KEY).empty
    # eight days later the oldest have waited past the 7-day limit
    later = pd.Timestamp(FIRST[0]) + pd.Timedelta(days=8)
    result = update(instance, data_root, later.isoformat(), later.strftime("%Y%m%d_%H%M%S"))
    unavailable = pd.read_parquet(paths.unavailable_features)
    still = pd.read_parquet(paths.pending_features)
    assert set(map(tuple, pending[KEY].astype(str).values)) <= set(map(tuple, unavailable[KEY].astype(str).values)) | set(
        map(tuple, still[KEY].astype(str).values)
    )
    assert len(unavailable) > 0 and (unavailable["reason"] != "").all()
    assert materializations(result)["ingestions"]["newly_unavailable"] == len(unavailable)


class LateFeatures(DemoListener):
    """The demo listener, except that ReccoBeats knows no track until `features_from`."""

    features_from: pd.Timestamp = pd.Timestamp("2026-11-26T12:00:00Z")

    def audio_features(self, track_ids):
        return [] if self.clock() < self.features_from else super().audio_features(track_ids)


def test_pending_plays_join_history_once_their_features_arrive(instance, data_root):
    from spotify_brain_assets.resources import DemoListenerResource

    class LateFeaturesResource(DemoListenerResource):
        def source(self, timezone):
            return LateFeatures(seed=self.seed, timezone=timezone, now=self.now().to_pydatetime())

    first = run_job("update", instance, data_root, LateFeaturesResource(clock=FIRST[0]), FIRST[1])
    meta = materializations(first)["ingestions"]
    assert meta["plays_with_features"] == 0 and meta["pending_features"] > 1500
    second = run_job("update", instance, data_root, LateFeaturesResource(clock="2026-11-26T12:30:00Z"), "20261126_123000")
    meta = materializations(second)["ingestions"]
    assert meta["retried_pending"] > 1500 and meta["plays_with_features"] > 1500
    history = pd.read_parquet(DataPaths.at(data_root).history)
    assert len(history) >= meta["plays_with_features"]


def quarantined(paths: DataPaths) -> dict[str, dict]:
    """The quarantine's sidecars by the path their file came from."""
    docs = [read_json(p) for p in sorted(paths.quarantine.glob("*.json"))]
    return {doc["original_path"]: doc for doc in docs}


def check(result, asset: str, name: str):
    return next(c for c in result.get_asset_check_evaluations() if (c.asset_key.to_user_string(), c.check_name) == (asset, name))


def test_unreadable_ingestion_files_are_quarantined_and_ingestion_goes_on(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    good = paths.ingestion_file(FIRST[1]).read_bytes()
    truncated, foreign = paths.ingestion_file("20261126_100000"), paths.ingestion_file("20261126_103000")
    truncated.write_bytes(good[: len(good) // 2])
    pd.DataFrame({"title": ["not a play"]}).to_parquet(foreign)
    kept = {f"ingestions/{p.name}": p.read_bytes() for p in (truncated, foreign)}
    before = pd.read_parquet(paths.history)

    result = run_job("update", instance, data_root, demo_at(SECOND[0]), SECOND[1], raise_on_error=False)
    assert result.success, step_errors(result)
    # ingestion went on: the slot's plays reached history
    second = pd.read_parquet(paths.ingestion_file(SECOND[1]))
    after = pd.read_parquet(paths.history)
    assert len(second) > 0 and len(after) == len(before) + len(second)
    # both files were moved aside, bytes intact, each with the reason and where it came from
    docs = quarantined(paths)
    assert set(docs) == set(kept) and not truncated.exists() and not foreign.exists()
    for original, content in kept.items():
        moved = data_root / docs[original]["quarantined_path"]
        assert moved.parent == paths.quarantine and moved.read_bytes() == content
        assert docs[original]["sha256"] == hashlib.sha256(content).hexdigest() and docs[original]["bytes"] == len(content)
        assert str(data_root) not in docs[original]["reason"]
    assert "not a readable parquet file" in docs["ingestions/ingestion_20261126_100000.parquet"]["reason"]
    assert "lacks the columns" in docs["ingestions/ingestion_20261126_103000.parquet"]["reason"]
    # a failed (non-blocking) check and the run's metadata name them
    readable = check(result, "ingestions", "ingestion_files_readable")
    assert not readable.passed and readable.severity == dg.AssetCheckSeverity.ERROR
    assert "ingestion_20261126_100000.parquet" in readable.description and "ingestion_20261126_103000.parquet" in readable.description
    assert materializations(result)["ingestions"]["quarantined_files"] == 2
    assert check(result, "plays", "ingestion_files_readable").passed  # nothing unreadable was left for plays
    assert check(result, "history", "no_play_lost").passed


def test_an_unreadable_file_of_the_slot_being_rerun_is_rewritten_from_what_spotify_still_lists(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    instance.add_dynamic_partitions("ingestions", [SECOND[1]])
    dg.materialize([ingestions.solo], instance=instance, partition_key=SECOND[1],
                   resources={"store": store_for(data_root), "listening_source": demo_at(SECOND[0])})
    target = paths.ingestion_file(SECOND[1])
    written = pd.read_parquet(target)
    content = target.read_bytes()
    target.write_bytes(content[:100])  # truncated before `plays` merged it

    result = update(instance, data_root, *SECOND)
    assert not check(result, "ingestions", "ingestion_files_readable").passed
    assert (data_root / quarantined(paths)[f"ingestions/{target.name}"]["quarantined_path"]).read_bytes() == content[:100]
    # the partition was written anew with the plays the 50-play window still holds: here, all of them
    assert sorted(map(tuple, pd.read_parquet(target)[KEY].astype(str).values)) == sorted(map(tuple, written[KEY].astype(str).values))
    assert written[KEY].merge(pd.read_parquet(paths.history)[KEY], on=KEY).shape[0] == len(written)


def test_plays_quarantines_an_unreadable_file_and_merges_the_others(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    history = pd.read_parquet(paths.history)
    later = history.tail(3)[PLAY_COLUMNS].assign(played_at=lambda d: d["played_at"] + pd.Timedelta(days=2))
    later.to_parquet(paths.ingestion_file("20261128_120000"))
    paths.ingestion_file("20261128_113000").write_bytes(b"PAR1 not really")
    result = dg.materialize([plays.solo], instance=instance, resources={"store": store_for(data_root)})
    assert result.success
    merged = pd.read_parquet(paths.plays)
    assert len(merged) == len(history) + 3
    assert list(quarantined(paths)) == ["ingestions/ingestion_20261128_113000.parquet"]
    readable = check(result, "plays", "ingestion_files_readable")
    assert not readable.passed and "ingestion_20261128_113000.parquet" in readable.description
    assert result.asset_materializations_for_node("plays")[0].metadata["quarantined_files"].value == 1
