"""Online evaluation through real runs: the demo listener over several slots, a killed append, the check."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pandas as pd
import pytest

from spotify_brain_assets.defs.reporting.online import append_to_log, read_log, served_model_beats_baselines_live
from spotify_brain_assets.dashboard.schema import dashboard_json
from spotify_brain_assets.definitions import defs
from spotify_brain_assets.ml.online import LOG_KEY, conform_log, score_report
from spotify_brain_assets.storage.files import write_json, writer_lock
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import REPO, demo_at, materializations, run_job, store_for

# a Thursday in Stockholm (UTC+1): the demo listener's morning session runs from 06:42 to 09:16 UTC
SLOTS = ["2026-11-26T06:30:00Z", "2026-11-26T07:00:00Z", "2026-11-26T07:30:00Z", "2026-11-26T11:30:00Z"]


def _key(clock: str) -> str:
    return pd.Timestamp(clock).strftime("%Y%m%d_%H%M%S")


def _update(instance, root, clock):
    result = run_job("update", instance, root, demo_at(clock), _key(clock))
    assert result.success
    return result


def _materialize(instance, root, selection, clock):
    resources = {**defs.resources, "store": store_for(root), "listening_source": demo_at(clock)}
    return dg.materialize(defs.assets, selection=selection, instance=instance, resources=resources)


def test_update_slots_log_every_prediction_once_and_score_them(instance, data_root):
    paths = DataPaths.at(data_root)
    _update(instance, data_root, SLOTS[0])
    # moods exist only once clusters are fitted: fit them as full_retrain would, without the models
    assert _materialize(instance, data_root, ["mood_clusters", "history"], SLOTS[0]).success
    for clock in SLOTS[1:]:
        result = _update(instance, data_root, clock)

    log = read_log(paths.predictions_log)
    made = set(log["made_at"])
    assert made == {pd.Timestamp(c) for c in SLOTS}  # every update logged what it predicted
    assert not log.duplicated(LOG_KEY).any()
    mood = log[log["task"] == "next_mood"]
    assert set(mood["predictor"]) == {"served", "markov", "persistence"}
    assert set(mood.loc[mood["predictor"] == "served", "version"]) == {"baseline:markov_1"}  # no model trained: the gate's baseline serves
    assert (mood.groupby(["made_at", "predictor"])["probability"].sum().round(4) == 1).all()
    hours = log[log["task"] == "session_start"]
    assert (hours["hour_start"] >= hours["made_at"]).all()

    report = json.loads(paths.prediction_scores.read_text())
    assert report["data_through"] == pd.Timestamp(SLOTS[-1]).isoformat()  # the last slot ingested
    for task in ("next_mood", "session_start"):
        served = report["tasks"][task]["windows"]["7d"]["predictors"]["served"]
        assert served["n"] > 0 and served["log_loss"] > 0
        assert report["tasks"][task]["windows"]["7d"]["best_baseline"] is not None
    # each scored mood outcome is the next play of the conditioned play's session, settled by 09:30 (11:30 − 2 h)
    assert report["tasks"]["next_mood"]["outcomes"]["scored"] >= 1
    meta = materializations(result)["prediction_scores"]
    assert meta["session_start_n_7d"] == report["tasks"]["session_start"]["windows"]["7d"]["predictors"]["served"]["n"]
    assert isinstance(meta["next_mood_log_loss_7d"], float) and isinstance(meta["session_start_brier_30d"], float)

    dashboard = json.loads(paths.dashboard_json.read_text())
    dashboard_json(dashboard)
    live = dashboard["live_quality"]["session_start"]
    assert live["n_scored"] == report["tasks"]["session_start"]["windows"]["30d"]["predictors"]["served"]["n"]
    assert live["model"] == report["tasks"]["session_start"]["windows"]["30d"]["predictors"]["served"]["log_loss"]

    # re-running the last slot (same frozen clock) predicts the same moment again: nothing is added
    again = _update(instance, data_root, SLOTS[-1])
    assert materializations(again)["prediction_scores"]["predictions_logged"] == 0
    pd.testing.assert_frame_equal(read_log(paths.predictions_log), log)

    # an unreadable log is moved to quarantine/ with its bytes, and logging starts over
    paths.predictions_log.write_bytes(b"not parquet")
    rescored = _materialize(instance, data_root, ["prediction_scores"], SLOTS[-1])
    aside = list(paths.quarantine.glob("*-predictions_log.parquet"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"not parquet"
    assert json.loads(aside[0].with_name(aside[0].name + ".json").read_text())["original_path"] == "metrics/predictions_log.parquet"
    assert set(read_log(paths.predictions_log)["made_at"]) == {pd.Timestamp(SLOTS[-1])}
    assert "unreadable" in materializations(rescored)["prediction_scores"]["notes"]

KILLER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from spotify_brain_assets.defs.reporting.online import append_to_log, read_log
    from spotify_brain_assets.storage.files import writer_lock
    from spotify_brain_assets.storage.paths import DataPaths

    paths = DataPaths.at(sys.argv[1])
    template = read_log(paths.predictions_log)
    template = template[template["made_at"] == template["made_at"].min()]
    step = pd.Timedelta(minutes=30)
    i = 0
    while True:  # append one new prediction after another until killed
        made = template["made_at"].iloc[0] + step * (10_000 + i)
        with writer_lock(paths.lock):
            append_to_log(paths.predictions_log, template.assign(made_at=made, hour_start=template["hour_start"] + step * (10_000 + i)))
        i += 1
    """
)


def _one_prediction(made: pd.Timestamp) -> pd.DataFrame:
    moods = pd.DataFrame({"mood_cluster_id": range(8), "probability": 1 / 8, "task": "next_mood", "hour_start": pd.NaT})
    hours = pd.DataFrame({"mood_cluster_id": -1, "probability": 0.1, "task": "session_start", "hour_start": made + pd.to_timedelta(range(24), unit="h")})
    rows = pd.concat([part.assign(predictor=p) for part in (moods, hours) for p in ("served", "baseline")], ignore_index=True)
    return conform_log(rows.assign(made_at=made, version="v1", conditioned_track_id="t", conditioned_played_at=made - pd.Timedelta(minutes=1)))


def test_a_killed_append_leaves_a_loadable_log_without_duplicates(data_root):
    paths = DataPaths.at(data_root)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    one = _one_prediction(start)
    big = pd.concat([one.assign(made_at=start + pd.Timedelta(minutes=30) * i) for i in range(3000)], ignore_index=True)
    append_to_log(paths.predictions_log, big)  # a few months of predictions: each rewrite takes a while
    before = len(read_log(paths.predictions_log))

    def logged() -> int:
        with writer_lock(paths.lock):  # a reader without the lock may meet the file being replaced
            return len(read_log(paths.predictions_log))

    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(data_root)], cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while logged() < before + 2 * len(one):  # it has appended twice
            assert proc.poll() is None and time.monotonic() < deadline, "the appending process stopped or never wrote"
            time.sleep(0.05)
        # kill it while it writes the next version (its temporary file exists; in practice the kill
        # lands there, and the next run's writers remove the leftover temporary)
        while not list(paths.metrics.glob(".predictions_log.parquet.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, "the appending process stopped writing"
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    log = read_log(paths.predictions_log)
    assert len(log) >= before + 2 * len(one)
    assert not log.duplicated(LOG_KEY).any()
    sizes = log.groupby(["made_at", "task"]).size()
    assert (sizes.to_numpy() == one.groupby("task").size().reindex(sizes.index.get_level_values("task")).to_numpy()).all()  # no torn prediction
    # appending everything again (as a re-run would) adds nothing
    again, added = append_to_log(paths.predictions_log, log)
    assert added == 0 and len(again) == len(log)


def _worse_report(data_root, served_p: float, hours: int = 24) -> None:
    """A scored day where the served model says `served_p` and the baseline 0.1 for hours without a start."""
    made = pd.Timestamp("2026-03-02T00:00:00Z")
    rows = _one_prediction(made)
    rows = rows[(rows["task"] == "session_start")].head(2 * hours).copy()
    rows["probability"] = rows["predictor"].astype(str).map({"served": served_p, "baseline": 0.1})
    history = pd.DataFrame({"track_id": ["x"], "played_at": [made - pd.Timedelta(days=1)], "session_id": [0], "mood_cluster_id": [0]}).astype({"played_at": "datetime64[ms, UTC]"})
    now = made + pd.Timedelta(days=2)
    write_json(score_report(rows, history, now, now, "UTC", pd.Timedelta(hours=2), pd.Timedelta(minutes=30)), DataPaths.at(data_root).prediction_scores)


@pytest.mark.fast
def test_the_check_warns_when_the_served_model_is_worse_than_a_baseline(data_root):
    store = store_for(data_root)
    _worse_report(data_root, served_p=0.9)
    result = served_model_beats_baselines_live(store=store)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "session_start" in result.description and "baseline" in result.description

    _worse_report(data_root, served_p=0.01)
    assert served_model_beats_baselines_live(store=store).passed

    _worse_report(data_root, served_p=0.9, hours=5)  # 5 scored hours say nothing yet
    result = served_model_beats_baselines_live(store=store)
    assert result.passed and "not enough" in result.metadata["session_start"].value


@pytest.mark.fast
def test_both_jobs_score_predictions_before_the_dashboard_reads_them():
    graph = defs.resolve_asset_graph()
    for job in ("update", "full_retrain"):
        selected = {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        assert {"predictions", "prediction_scores", "dashboard"} <= selected
    assert dg.AssetKey("prediction_scores") in graph.get(dg.AssetKey("dashboard")).parent_keys
    assert dg.AssetKey("predictions") in graph.get(dg.AssetKey("prediction_scores")).parent_keys
    assert graph.get(dg.AssetKey("prediction_scores")).pools == {"spotify_brain_writer"}
