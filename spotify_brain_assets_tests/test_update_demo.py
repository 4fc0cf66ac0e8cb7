"""The `update` job on the demo listener: slots, late and duplicate plays, re-runs, pending features."""

import pandas as pd

from spotify_brain_assets.plays.schema import HISTORY_COLUMNS, KEY
from spotify_brain_assets.sources.demo import DemoListener
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import TIMEZONE, demo_at, materializations, run_job, step_errors

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
    meta = materializations(result)
    assert meta["ingestions"]["demo_data"] is True and meta["history"]["demo_data"] is True
    assert meta["ingestions"]["pending_features"] > 0  # the demo has tracks without features
    assert all(c.passed for c in result.get_asset_check_evaluations())


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


def test_a_corrupt_ingestion_file_fails_with_its_name_and_leaves_history_alone(instance, data_root):
    update(instance, data_root, *FIRST)
    paths = DataPaths.at(data_root)
    history_bytes = paths.history.read_bytes()
    paths.ingestion_file("20261126_100000").write_bytes(b"not parquet at all")
    result = run_job("update", instance, data_root, demo_at(SECOND[0]), SECOND[1], raise_on_error=False)
    assert not result.success
    assert "ingestion_20261126_100000.parquet" in step_errors(result)
    assert paths.history.read_bytes() == history_bytes
