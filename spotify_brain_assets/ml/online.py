"""Online evaluation: every prediction the system served, logged, then scored against what happened.

The log (`metrics/predictions_log.parquet`) is tidy: one row per prediction × predictor × target,
where a prediction is (`made_at`, `task`), the predictor is `served` (what `predictions.json` said;
`version` names the model or the baseline that answered) or a baseline computed causally from the
history known at `made_at`, and the target is a mood cluster (`next_mood`) or an hour
(`session_start`). Scoring is then a few merges and group-bys over the part of the log the report
shows (the last 90 days).

Outcomes:
- next mood: the play right after the one the prediction was conditioned on, when it continues that
  play's session — the event the mood model is trained to predict. (It is normally the first play
  after `made_at`; when Spotify reported plays late it can be one the prediction could not see.) A
  prediction whose session ended without another play is never scored (`not_scorable`).
- session start: whether a session's first play fell in the predicted hour.
Both count only once settled: before `data_through − settle` (ingestion has caught up to
`data_through`; plays can appear up to ~90 minutes late in recently-played).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

MOOD, SESSION = "next_mood", "session_start"
TASKS = (MOOD, SESSION)
SERVED = "served"
TS = "datetime64[ms, UTC]"
LOG_COLUMNS = [
    "made_at", "task", "predictor", "version", "mood_cluster_id", "hour_start", "probability",
    "conditioned_track_id", "conditioned_played_at",
]
#: one prediction of one predictor for one target; `mood_cluster_id` is -1 on session rows, `hour_start` NaT on mood rows
LOG_KEY = ["made_at", "task", "predictor", "mood_cluster_id", "hour_start"]
EPS = 1e-6  # the outcome's probability is floored here before the log, as in the offline evaluation
BINS = 10  # calibration: equal-width bins of the predicted probability
PRIOR_STRENGTH = 2.0  # pseudo-observations pulling an hour-of-week cell toward its hour-of-day rate
WINDOWS = (7, 14, 30)
METRICS = ("log_loss", "brier", "accuracy", "calibration_error")
HOUR = pd.Timedelta(hours=1)


def _ms(times) -> np.ndarray:
    """Instants as int64 milliseconds since the epoch, whatever their unit: safe to searchsorted."""
    return pd.DatetimeIndex(times).tz_convert("UTC").as_unit("ms").asi8


def conform_log(df: pd.DataFrame) -> pd.DataFrame:
    """The log's column order and dtypes, so appends and reads never drift."""
    out = pd.DataFrame(index=df.index)
    for col in ("made_at", "hour_start", "conditioned_played_at"):
        out[col] = pd.to_datetime(df[col], utc=True).astype(TS)
    for col in ("task", "predictor", "version", "conditioned_track_id"):  # few distinct values: categories keep it fast
        out[col] = df[col].astype("category")
    out["mood_cluster_id"] = df["mood_cluster_id"].astype("int64")
    out["probability"] = df["probability"].astype("float64")
    return out[LOG_COLUMNS].reset_index(drop=True)


def empty_log() -> pd.DataFrame:
    return conform_log(pd.DataFrame({c: pd.Series(dtype="int64" if c == "mood_cluster_id" else "float64" if c == "probability" else object) for c in LOG_COLUMNS}))


# --- what a predictions document predicted --------------------------------------------------


def made_at(doc: dict) -> pd.Timestamp:
    """The prediction time: `made_at`, or `as_of` in files written before it existed."""
    value = doc.get("made_at") or doc.get("as_of")
    if not value:
        raise ValueError("predictions.json has neither `made_at` nor `as_of`: it cannot be logged (re-materialize `predictions`)")
    return pd.Timestamp(value).tz_convert("UTC").floor("ms")


def _version(answer: dict, model_version: str | None) -> str:
    """What answered: `model:<version>` or `baseline:<name>`, from `served` ({kind, name, version});
    older files name only `source`, and the model in use (`model_version`) stands for "model"."""
    served = answer.get("served") or {}
    if served.get("kind") == "model":
        return f"model:{served.get('version') or served.get('name')}"
    if served.get("kind") == "baseline":
        return f"baseline:{served.get('name')}"
    source = str(answer.get("source") or "unknown")
    return model_version if source == "model" and model_version else source


def _distribution(answer: dict) -> pd.Series:
    """cluster id → probability, from a {id: p} mapping or a list of {cluster_id, probability}."""
    probs = answer.get("distribution") or answer.get("probabilities") or {}
    if isinstance(probs, dict):
        pairs = {int(k): float(v) for k, v in probs.items()}
    else:
        pairs = {int(p.get("cluster_id", p.get("mood_cluster_id"))): float(p["probability"]) for p in probs}
    return pd.Series(pairs, dtype="float64").sort_index()


def _conditioned(answer: dict, history: pd.DataFrame) -> tuple[str | None, pd.Timestamp | None]:
    """The play the mood prediction was conditioned on; older files name only its time."""
    cond = answer.get("conditioned_on") or {}
    at = cond.get("played_at") or answer.get("last_play_at")
    if not at:
        return None, None
    at = pd.Timestamp(at).tz_convert("UTC").floor("ms")
    track = cond.get("track_id")
    if not track:
        same = history.loc[history["played_at"] == at, "track_id"]
        track = str(same.iloc[-1]) if len(same) else None
    return track, at


def _rows(made: pd.Timestamp, task: str, predictor: str, version: str, probs: np.ndarray, clusters=None, hours=None, cond=(None, None)) -> pd.DataFrame:
    n = len(probs)
    return pd.DataFrame(
        {
            "made_at": made,
            "task": task,
            "predictor": predictor,
            "version": version,
            "mood_cluster_id": np.asarray(clusters, dtype="int64") if clusters is not None else np.full(n, -1, dtype="int64"),
            "hour_start": pd.DatetimeIndex(hours) if hours is not None else pd.NaT,
            "probability": np.asarray(probs, dtype="float64"),
            "conditioned_track_id": cond[0],
            "conditioned_played_at": cond[1],
        },
        index=range(n),
    )


def mood_baselines(history: pd.DataFrame, last_mood: int, classes: np.ndarray) -> dict[str, np.ndarray]:
    """Markov-1 and persistence over `classes`, from the within-session transitions of `history`.

    markov: transitions from `last_mood` counted with add-one smoothing. persistence: the stay rate
    on `last_mood`, the rest spread by the next moods' shares (as the offline evaluation does).
    """
    df = history.sort_values("played_at")
    moods = df["mood_cluster_id"].to_numpy(dtype="int64")
    same = df["session_id"].to_numpy()
    pair = (same[1:] == same[:-1]) & (moods[:-1] >= 0) & (moods[1:] >= 0)
    prev, nxt = moods[:-1][pair], moods[1:][pair]
    counts = pd.Series(nxt[prev == last_mood]).value_counts().reindex(classes, fill_value=0).to_numpy() + 1.0
    share = pd.Series(nxt).value_counts().reindex(classes, fill_value=0).to_numpy() + 1.0
    stay = float((prev == nxt).mean()) if len(prev) else 0.0
    persistence = stay * (classes == last_mood) + (1 - stay) * share / share.sum()
    return {"markov": counts / counts.sum(), "persistence": persistence}


def hour_of_week_prior(history: pd.DataFrame, hours: pd.DatetimeIndex, made: pd.Timestamp, tz: ZoneInfo | str) -> np.ndarray:
    """Session-start rate of each hour's local weekday × hour, over every complete hour before `made`.

    Smoothed: a cell is pulled toward its hour-of-day rate, which is pulled toward the overall rate,
    each by PRIOR_STRENGTH pseudo-hours, so a rarely seen cell never says 0 or 1.
    """
    if len(history) == 0 or len(hours) == 0:
        return np.full(len(hours), np.nan)
    starts = history.groupby("session_id")["played_at"].min().sort_values()
    first = starts.iloc[0].floor("h")
    grid = pd.date_range(first, made.floor("h"), freq="h", inclusive="left", tz="UTC")
    if len(grid) == 0:
        return np.full(len(hours), np.nan)
    started = np.searchsorted(_ms(starts), _ms(grid + HOUR)) > np.searchsorted(_ms(starts), _ms(grid))
    local = grid.tz_convert(tz)
    past = pd.DataFrame({"dow": local.day_of_week, "hour": local.hour, "y": started.astype("float64")})
    overall = past["y"].mean()
    by_hour = past.groupby("hour")["y"].agg(["sum", "size"]).reindex(range(24), fill_value=0)
    hod = (by_hour["sum"] + PRIOR_STRENGTH * overall) / (by_hour["size"] + PRIOR_STRENGTH)
    cell = past.groupby(["dow", "hour"])["y"].agg(["sum", "size"])
    target = pd.DatetimeIndex(hours).tz_convert(tz)
    key = pd.MultiIndex.from_arrays([target.day_of_week, target.hour])
    found = cell.reindex(key)
    base = hod.reindex(target.hour).to_numpy()
    return ((found["sum"].fillna(0).to_numpy() + PRIOR_STRENGTH * base) / (found["size"].fillna(0).to_numpy() + PRIOR_STRENGTH))


def log_rows(doc: dict, history: pd.DataFrame, tz: ZoneInfo | str, model_versions: dict[str, str] | None = None) -> pd.DataFrame:
    """The log rows of one predictions document: what was served, and each baseline beside it.

    Baselines are computed only where something was served, from the plays known at `made_at`, so
    they are scored on exactly the same predictions. Session hours that began before `made_at` are
    not predictions (part of the answer was already known) and are left out.
    """
    made = made_at(doc)
    model_versions = model_versions or {}
    known = history[history["played_at"] <= made]
    frames = []
    mood = doc.get(MOOD) or {}
    probs = _distribution(mood) if mood.get("available") else pd.Series(dtype="float64")
    if len(probs):
        cond = _conditioned(mood, known)
        frames.append(_rows(made, MOOD, SERVED, _version(mood, model_versions.get(MOOD)), probs.to_numpy(), probs.index, cond=cond))
        last = known.loc[(known["played_at"] == cond[1]) & (known["track_id"] == cond[0]), "mood_cluster_id"] if cond[1] is not None else []
        if len(last) and int(last.iloc[-1]) >= 0:
            classes = np.array(sorted(set(probs.index) | set(known.loc[known["mood_cluster_id"] >= 0, "mood_cluster_id"].astype(int))))
            for name, p in mood_baselines(known, int(last.iloc[-1]), classes).items():
                frames.append(_rows(made, MOOD, name, name, p, classes, cond=cond))
    start = doc.get(SESSION) or {}
    hours = pd.DataFrame(start.get("hours") or [], columns=["hour_start", "probability"]) if start.get("available") else pd.DataFrame()
    if len(hours):
        hours["hour_start"] = pd.to_datetime(hours["hour_start"], utc=True)
        hours = hours[hours["hour_start"] >= made]
    if len(hours):
        frames.append(_rows(made, SESSION, SERVED, _version(start, model_versions.get(SESSION)), hours["probability"].to_numpy(), hours=hours["hour_start"]))
        prior = hour_of_week_prior(known, pd.DatetimeIndex(hours["hour_start"]), made, tz)
        if not np.isnan(prior).any():
            frames.append(_rows(made, SESSION, "hour_of_week_prior", "hour_of_week_prior", prior, hours=hours["hour_start"]))
    return conform_log(pd.concat(frames, ignore_index=True)) if frames else empty_log()


def unlogged(log: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of predictions (made_at, task) the log does not hold yet: the first logged stands."""
    rows = rows.drop_duplicates(LOG_KEY)
    seen = log[["made_at", "task"]].drop_duplicates()
    fresh = rows.merge(seen, on=["made_at", "task"], how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    return rows[fresh].reset_index(drop=True)


# --- outcomes ---------------------------------------------------------------------------------


def mood_outcomes(log: pd.DataFrame, history: pd.DataFrame, settled: pd.Timestamp, gap: pd.Timedelta) -> pd.DataFrame:
    """Per mood prediction (made_at): its status (scored / awaiting / not_scorable) and the true mood."""
    preds = log.loc[log["task"] == MOOD, ["made_at", "conditioned_track_id", "conditioned_played_at"]].drop_duplicates("made_at")
    preds["conditioned_track_id"] = preds["conditioned_track_id"].astype(object)
    h = history.sort_values("played_at", kind="stable").reset_index(drop=True)
    after = pd.DataFrame(
        {
            "conditioned_track_id": h["track_id"],
            "conditioned_played_at": h["played_at"],
            "next_at": h["played_at"].shift(-1),
            "next_mood": h["mood_cluster_id"].shift(-1).fillna(-1).astype("int64"),
            "same_session": h["session_id"].shift(-1).eq(h["session_id"]),
        }
    ).drop_duplicates(["conditioned_track_id", "conditioned_played_at"])
    found = preds.merge(after, on=["conditioned_track_id", "conditioned_played_at"], how="left")
    known_next = found["same_session"].fillna(False).astype(bool) & (found["next_at"] <= settled)
    scored = known_next & (found["next_mood"] >= 0)
    # the session ended without another play, the next play has no mood, or the conditioned play is unknown
    hopeless = (known_next & ~scored) | (~known_next & ((found["conditioned_played_at"] + gap <= settled) | found["conditioned_played_at"].isna()))
    status = np.select([scored, hopeless], ["scored", "not_scorable"], "awaiting")
    return pd.DataFrame({"made_at": found["made_at"], "status": status, "outcome": found["next_mood"].where(scored, -1).astype("int64")})


def session_outcomes(log: pd.DataFrame, history: pd.DataFrame, settled: pd.Timestamp) -> pd.DataFrame:
    """Per predicted hour (made_at, hour_start): its status and whether a session started in it."""
    hours = log.loc[log["task"] == SESSION, ["made_at", "hour_start"]].drop_duplicates().reset_index(drop=True)
    starts = np.sort(_ms(history.groupby("session_id")["played_at"].min())) if len(history) else np.array([], dtype="int64")
    started = np.searchsorted(starts, _ms(hours["hour_start"] + HOUR)) > np.searchsorted(starts, _ms(hours["hour_start"]))
    known = (hours["hour_start"] + HOUR <= settled).to_numpy()
    return hours.assign(status=np.where(known, "scored", "awaiting"), outcome=np.where(known, started.astype("int64"), -1))


def _mood_units(rows: pd.DataFrame) -> pd.DataFrame:
    """One unit per (made_at, predictor): the distribution renormalized, against the true mood."""
    p = rows["probability"].clip(lower=0)
    total = p.groupby([rows["made_at"], rows["predictor"]], observed=True).transform("sum")
    rows = rows.assign(p=np.where(total > 0, p / total, 0.0), y=(rows["mood_cluster_id"] == rows["outcome"]).astype("float64"))
    rows = rows.assign(sq=(rows["p"] - rows["y"]) ** 2, py=rows["p"] * rows["y"])
    keys = ["made_at", "predictor"]
    units = rows.groupby(keys, observed=True).agg(task=("task", "first"), version=("version", "first"), p_outcome=("py", "sum"), sq=("sq", "sum"), seen=("y", "sum"))
    units["brier"] = units["sq"] + 1.0 - units["seen"]  # a true mood missing from the distribution adds (0 − 1)²
    top = rows.sort_values(keys + ["p", "mood_cluster_id"], ascending=[True, True, False, True]).drop_duplicates(keys).set_index(keys)
    units["confidence"], units["hit"] = top["p"], top["y"]
    return units.reset_index().assign(correct=lambda u: u["hit"])


def _session_units(rows: pd.DataFrame) -> pd.DataFrame:
    """One unit per (made_at, hour, predictor)."""
    p = rows["probability"].clip(0, 1).to_numpy()
    y = rows["outcome"].to_numpy().astype("float64")
    return rows[["made_at", "predictor", "task", "version"]].assign(
        p_outcome=np.where(y == 1, p, 1 - p), brier=(p - y) ** 2, confidence=p, hit=y, correct=((p >= 0.5) == (y == 1)).astype("float64")
    )


UNIT_COLUMNS = ["task", "predictor", "version", "made_at", "p_outcome", "brier", "confidence", "hit", "correct", "log_loss"]


def scored_units(log: pd.DataFrame, history: pd.DataFrame, settled: pd.Timestamp, gap: pd.Timedelta) -> tuple[pd.DataFrame, dict]:
    """The scored units of every predictor, and per task how many outcomes are scored, awaited or
    not scorable (mood: predictions; sessions: predicted hours)."""
    served = log.loc[log["predictor"] == SERVED, ["made_at", "task"]].drop_duplicates()
    log = log.merge(served, on=["made_at", "task"])  # a baseline counts only where something was served
    mood, session = mood_outcomes(log, history, settled, gap), session_outcomes(log, history, settled)
    counts = {MOOD: mood["status"].value_counts().to_dict(), SESSION: session["status"].value_counts().to_dict()}
    parts = []
    mood_rows = log[log["task"] == MOOD].merge(mood[mood["status"] == "scored"], on="made_at")
    if len(mood_rows):
        parts.append(_mood_units(mood_rows))
    session_rows = log[log["task"] == SESSION].merge(session[session["status"] == "scored"], on=["made_at", "hour_start"])
    if len(session_rows):
        parts.append(_session_units(session_rows))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=TS if c == "made_at" else "float64") for c in UNIT_COLUMNS}), counts
    units = pd.concat(parts, ignore_index=True)
    units["log_loss"] = -np.log(np.maximum(units["p_outcome"].to_numpy(dtype="float64"), EPS))
    return units[UNIT_COLUMNS], counts


# --- scores -----------------------------------------------------------------------------------


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def summarize(units: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """n, log loss, Brier, accuracy and calibration error (ECE over BINS bins of the predicted
    probability — of the top mood for mood, of a start for sessions) per group of `keys`."""
    if len(units) == 0:
        return pd.DataFrame(columns=keys + ["n", *METRICS])
    base = units.groupby(keys, observed=True).agg(n=("log_loss", "size"), log_loss=("log_loss", "mean"), brier=("brier", "mean"), accuracy=("correct", "mean"))
    binned = units.assign(bin=np.minimum((units["confidence"] * BINS).astype("int64"), BINS - 1))
    cells = binned.groupby(keys + ["bin"], observed=True).agg(sp=("confidence", "sum"), sy=("hit", "sum"))
    gap = (cells["sp"] - cells["sy"]).abs().groupby(level=list(range(len(keys)))).sum()
    base["calibration_error"] = gap.reindex(base.index) / base["n"]
    return base.reset_index()


def _block(summary: pd.DataFrame) -> dict:
    """predictor → metrics, plus the best baseline and the served model's margin over it (log loss)."""
    out = {r["predictor"]: {"n": int(r["n"]), **{m: _num(r[m]) for m in METRICS}} for r in summary.to_dict("records")}
    baselines = {k: v for k, v in out.items() if k != SERVED and v["log_loss"] is not None}
    best = min(baselines, key=lambda k: baselines[k]["log_loss"]) if baselines else None
    served = (out.get(SERVED) or {}).get("log_loss")
    margin = served - baselines[best]["log_loss"] if best and served is not None else None
    return {
        "predictors": out,
        "best_baseline": best,
        "served_minus_best_log_loss": _num(margin),
        "served_beats_best": None if margin is None else bool(margin < 0),
    }


def reliability(units: pd.DataFrame) -> dict[str, list[dict]]:
    """predictor → the non-empty bins: mean predicted probability against the observed rate."""
    if len(units) == 0:
        return {}
    binned = units.assign(bin=np.minimum((units["confidence"] * BINS).astype("int64"), BINS - 1))
    table = binned.groupby(["predictor", "bin"], observed=True).agg(n=("hit", "size"), mean_predicted=("confidence", "mean"), observed=("hit", "mean")).reset_index()
    return {
        name: [
            {"bin": f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}", "n": int(n), "mean_predicted": _num(mp), "observed": _num(o)}
            for b, n, mp, o in zip(part["bin"], part["n"], part["mean_predicted"], part["observed"])
        ]
        for name, part in table.groupby("predictor", observed=True)
    }


def score_report(
    log: pd.DataFrame,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    data_through: pd.Timestamp,
    tz: ZoneInfo | str,
    settle: pd.Timedelta,
    gap: pd.Timedelta,
    daily_days: int = 90,
) -> dict:
    """`metrics/prediction_scores.json`: per task, the windows (last 7, 14, 30 days of `made_at`
    before `as_of`), the days (local dates of `made_at`, newest `daily_days`), the reliability table
    of the last 30 days, and how many of those predictions are scored, awaiting an outcome or not
    scorable."""
    as_of = pd.Timestamp(as_of).tz_convert("UTC")
    settled = pd.Timestamp(data_through).tz_convert("UTC") - settle
    horizon = as_of - pd.Timedelta(days=max(daily_days, WINDOWS[-1]))  # older scores are reported nowhere
    units, counts = scored_units(log[log["made_at"] > horizon], history, settled, gap)
    units["day"] = units["made_at"].dt.tz_convert(tz).dt.normalize()
    first_day = (as_of - pd.Timedelta(days=daily_days)).tz_convert(tz).normalize()
    tasks = {}
    for task in TASKS:
        mine = units[units["task"] == task]
        windows = {f"{days}d": _block(summarize(mine[mine["made_at"] > as_of - pd.Timedelta(days=days)], ["predictor"])) for days in WINDOWS}
        recent = mine[mine["made_at"] > as_of - pd.Timedelta(days=WINDOWS[-1])]
        per_day = summarize(mine[mine["day"] > first_day], ["day", "predictor"])
        tasks[task] = {
            "outcomes": {k: int(counts[task].get(k, 0)) for k in ("scored", "awaiting", "not_scorable")},
            "windows": windows,
            "daily": [{"date": str(day.date()), **_block(part)} for day, part in per_day.groupby("day")],
            f"reliability_{WINDOWS[-1]}d": reliability(recent),
            f"served_versions_{WINDOWS[-1]}d": recent.loc[recent["predictor"] == SERVED, "version"].astype(str).value_counts().to_dict(),
        }
    logged = log.drop_duplicates(["made_at", "task"])
    return {
        "as_of": as_of.isoformat(),
        "data_through": pd.Timestamp(data_through).isoformat(),
        "settled_through": settled.isoformat(),
        "timezone": str(tz),
        "log": {
            "rows": int(len(log)),
            "predictions": {t: int((logged["task"] == t).sum()) for t in TASKS},
            "first_made_at": logged["made_at"].min().isoformat() if len(logged) else None,
            "last_made_at": logged["made_at"].max().isoformat() if len(logged) else None,
        },
        "definitions": {
            "next_mood": "outcome: the mood of the play that followed the conditioned play in the same session; a session that ended is not scored",
            "session_start": "outcome: whether a session's first play fell in the predicted hour; each hour of a prediction counts once",
            "settled": "an outcome counts once it lies before data_through minus the settle margin (late plays)",
            "log_loss": "mean −ln p(outcome), p floored at 1e-6; lower is better",
            "brier": "mean squared error of the probabilities (summed over moods for next_mood); lower is better",
            "accuracy": "most likely mood = the outcome; for sessions p ≥ 0.5 = a start",
            "calibration_error": f"expected calibration error over {BINS} bins (top-mood confidence; start probability)",
            "baselines": "markov (first-order, add-one) and persistence (stay rate) from plays known at made_at; hour_of_week_prior (smoothed) from complete hours before made_at",
        },
        "tasks": tasks,
    }


def live_quality(report: dict | None, window: str = "30d") -> dict:
    """The dashboard's compact view: per task the served model against the best baseline."""
    out = {"window": window, "next_mood": None, "session_start": None}
    for task in TASKS:
        block = (((report or {}).get("tasks") or {}).get(task) or {}).get("windows", {}).get(window)
        served = (block or {}).get("predictors", {}).get(SERVED)
        if not served:
            continue
        best = block.get("best_baseline")
        out[task] = {
            "metric": "log_loss",
            "model": served["log_loss"],
            "best_baseline": best,
            "baseline": block["predictors"][best]["log_loss"] if best else None,
            "n_scored": served["n"],
            "beats_baseline": block.get("served_beats_best"),
        }
    return out
