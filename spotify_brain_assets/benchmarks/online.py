"""Time the online evaluation on a long-running deployment: years of history, a year of logged predictions.

    python -m spotify_brain_assets.benchmarks.online --days 1095 --log-days 365

It builds the retrain benchmark's synthetic listener, then a predictions log as `update` would have
written it every 30 minutes over the last `--log-days` days (a distribution over the moods and 24
hourly session probabilities per prediction, served and baselines), and times what one `update`
adds to `prediction_scores`: the log rows of one prediction (baselines from all history), the append
(the whole log read and rewritten atomically) and scoring the whole log.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from ..defs.reporting.online import append_to_log
from ..ml.online import MOOD, SESSION, conform_log, log_rows, score_report
from ..sources.demo import catalog
from ..storage.paths import DataPaths
from .listeners import synthetic_listener

SLOT = pd.Timedelta(minutes=30)


def synthetic_history(days: int, plays_per_day: float, end: pd.Timestamp, tz: str) -> pd.DataFrame:
    plays = synthetic_listener("routine", days, end, tz, plays_per_day)
    moods = catalog(7).set_index("track_id")["mood"]
    plays["session_id"] = (plays["played_at"].diff() > pd.Timedelta(minutes=30)).cumsum().astype("int64")
    plays["mood_cluster_id"] = plays["track_id"].map(moods).astype("int64")
    return plays.reset_index(drop=True)


def synthetic_log(history: pd.DataFrame, end: pd.Timestamp, log_days: int, seed: int = 7) -> pd.DataFrame:
    """One prediction per 30-minute slot: a Dirichlet draw over the moods for served, markov and
    persistence, conditioned on the newest play; 24 hours for served and the hour-of-week prior."""
    rng = np.random.default_rng(seed)
    made = pd.date_range(end - pd.Timedelta(days=log_days), end, freq=SLOT, inclusive="left")
    last = np.searchsorted(history["played_at"].to_numpy(), made.to_numpy(), side="right") - 1
    made, last = made[last >= 0], last[last >= 0]
    moods = np.sort(history["mood_cluster_id"].unique())
    predictors = ["served", "markov", "persistence"]
    n, k = len(made), len(moods)
    mood = pd.DataFrame(
        {
            "made_at": np.repeat(made, len(predictors) * k),
            "task": MOOD,
            "predictor": np.tile(np.repeat(predictors, k), n),
            "mood_cluster_id": np.tile(moods, n * len(predictors)),
            "probability": rng.dirichlet(np.ones(k), n * len(predictors)).ravel(),
            "hour_start": pd.NaT,
            "conditioned_track_id": np.repeat(history["track_id"].to_numpy()[last], len(predictors) * k),
            "conditioned_played_at": np.repeat(history["played_at"].to_numpy()[last], len(predictors) * k),
        }
    )
    hours = pd.DataFrame(
        {
            "made_at": np.repeat(made, 2 * 24),
            "task": SESSION,
            "predictor": np.tile(np.repeat(["served", "hour_of_week_prior"], 24), n),
            "mood_cluster_id": -1,
            "probability": rng.beta(1, 8, n * 2 * 24),
            "hour_start": np.repeat(made.ceil("h"), 2 * 24) + pd.to_timedelta(np.tile(np.arange(24), 2 * n), unit="h"),
            "conditioned_track_id": None,
            "conditioned_played_at": pd.NaT,
        }
    )
    log = pd.concat([mood, hours], ignore_index=True)
    return conform_log(log.assign(version=log["predictor"].where(log["predictor"] != "served", "model:benchmark")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1095, help="days of listening history")
    parser.add_argument("--log-days", type=int, default=365, help="days of logged predictions (one per 30 minutes)")
    parser.add_argument("--plays-per-day", type=float, default=40.0)
    parser.add_argument("--timezone", default="Europe/Stockholm")
    args = parser.parse_args(argv)
    end = pd.Timestamp.now(tz="UTC").floor("30min")
    history = synthetic_history(args.days, args.plays_per_day, end, args.timezone)
    log = synthetic_log(history, end, args.log_days)
    last = history.iloc[-1]
    doc = {
        "made_at": end.isoformat(),
        MOOD: {"available": True, "source": "model", "model_version": "model:benchmark", "conditioned_on": {"track_id": last["track_id"], "played_at": last["played_at"].isoformat()},
               "probabilities": {str(m): 1 / 6 for m in range(6)}},
        SESSION: {"available": True, "source": "model", "model_version": "model:benchmark",
                  "hours": [{"hour_start": (end + pd.Timedelta(hours=h)).isoformat(), "probability": 0.1} for h in range(24)]},
    }
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = DataPaths.at(tmp).predictions_log
        append_to_log(path, log)
        started = time.perf_counter()
        rows = log_rows(doc, history, args.timezone)
        timings["log_rows"] = time.perf_counter() - started
        started = time.perf_counter()
        log, added = append_to_log(path, rows)
        timings["append"] = time.perf_counter() - started
        size = path.stat().st_size
        started = time.perf_counter()
        report = score_report(log, history, end, end, args.timezone, pd.Timedelta(hours=2), pd.Timedelta(minutes=30))
        timings["score_report"] = time.perf_counter() - started
    print(f"{len(history)} plays over {args.days} days; log of {len(log)} rows ({size / 2**20:.1f} MiB), {args.log_days} days of predictions")
    print("| step | seconds |\n|---|---|")
    for step, seconds in timings.items():
        print(f"| {step} | {seconds:.2f} |")
    print(f"scored: next_mood {report['tasks'][MOOD]['outcomes']['scored']}, session_start hours {report['tasks'][SESSION]['outcomes']['scored']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
