"""Metrics and baselines on the held-out window, and the promotion decision.

Baselines are fitted on the training period only and scored on exactly the rows the model is
scored on, so "beats the baseline" means something. Each metric knows whether higher is better.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from .local_time import time_of_day_bucket

HIGHER_IS_BETTER = {
    "accuracy": True,
    "macro_f1": True,
    "roc_auc": True,
    "log_loss": False,
    "pr_auc": True,
    "f1": True,
    "calibration_error": False,
}
MOOD_METRICS = ["accuracy", "macro_f1", "roc_auc", "log_loss"]
SESSION_METRICS = ["pr_auc", "roc_auc", "f1", "calibration_error"]
THRESHOLDS = [round(0.1 * i, 1) for i in range(1, 10)]
EPS = 1e-6
BUCKETS = ["morning", "afternoon", "evening", "night"]


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


# --- mood ---------------------------------------------------------------------------------------


def _aligned(y: np.ndarray, proba: pd.DataFrame) -> pd.DataFrame:
    """Probabilities over the model's classes plus any class seen in `y` (at probability 0)."""
    cols = sorted(set(int(c) for c in proba.columns) | set(int(v) for v in np.unique(y)))
    return proba.reindex(columns=cols, fill_value=0.0).astype("float64")


def mood_metrics(y_true, proba: pd.DataFrame, predicted=None) -> dict:
    """accuracy, macro F1, one-vs-rest ROC-AUC (macro over classes present) and log loss.

    `predicted` overrides the argmax of `proba` for hard predictions (a rule-based baseline).
    """
    y = np.asarray(y_true, dtype="int64")
    if len(y) == 0:
        return {"rows": 0, **{m: None for m in MOOD_METRICS}}
    p = _aligned(y, proba)
    classes = p.columns.to_numpy()
    values = p.to_numpy()
    pred = np.asarray(predicted, dtype="int64") if predicted is not None else classes[values.argmax(axis=1)]
    aucs = []
    for j, c in enumerate(classes):
        positive = y == c
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, values[:, j]))
    clipped = np.clip(values, EPS, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    index = np.searchsorted(classes, y)
    log_loss = float(-np.log(clipped[np.arange(len(y)), index]).mean())
    return {
        "rows": int(len(y)),
        "accuracy": _num(float((pred == y).mean())),
        "macro_f1": _num(f1_score(y, pred, average="macro", zero_division=0)),
        "roc_auc": _num(float(np.mean(aucs))) if aucs else None,
        "log_loss": _num(log_loss),
    }


def mood_baselines(train: pd.DataFrame, test: pd.DataFrame, last_mood_col: str, target: str) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """(probabilities, hard predictions) on `test` of the three baselines fitted on `train`.

    majority_class: the training period's most frequent next mood, with its class shares as
    probabilities. same_as_previous: the next mood is the last one; its probabilities put the
    training period's stay rate on it and spread the rest by class share. markov: first-order
    transitions last mood → next mood counted on the training period (add-one smoothing).
    """
    y_train = train[target].to_numpy(dtype="int64")
    last_train = train[last_mood_col].to_numpy(dtype="int64")
    last_test = test[last_mood_col].to_numpy(dtype="int64")
    classes = np.unique(np.concatenate([y_train, last_train, last_test]))
    n = len(test)
    share = pd.Series(y_train).value_counts(normalize=True).reindex(classes, fill_value=0.0).to_numpy()

    majority = np.tile(share, (n, 1))
    majority_pred = np.full(n, classes[share.argmax()] if len(classes) else -1)

    stay = float((y_train == last_train).mean()) if len(y_train) else 0.0
    onehot = (last_test[:, None] == classes[None, :]).astype("float64")
    same = stay * onehot + (1 - stay) * share[None, :]

    counts = pd.crosstab(pd.Series(last_train, name="last"), pd.Series(y_train, name="next")).reindex(index=classes, columns=classes, fill_value=0)
    transitions = (counts.to_numpy() + 1.0) / (counts.to_numpy() + 1.0).sum(axis=1, keepdims=True)
    markov = transitions[np.searchsorted(classes, last_test)] if n else np.empty((0, len(classes)))
    markov_pred = classes[markov.argmax(axis=1)] if n else np.empty(0, dtype="int64")

    frame = lambda values: pd.DataFrame(values, columns=classes, index=test.index)  # noqa: E731
    return {
        "majority_class": (frame(majority), majority_pred),
        "same_as_previous": (frame(same), last_test),
        "markov": (frame(markov), markov_pred),
    }


# --- sessions -----------------------------------------------------------------------------------


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error: |mean predicted − observed rate| over equal-width bins, row-weighted."""
    if len(y) == 0:
        return None
    which = np.minimum((p * bins).astype("int64"), bins - 1)
    count = np.bincount(which, minlength=bins)
    mean_p = np.bincount(which, weights=p, minlength=bins)
    mean_y = np.bincount(which, weights=y, minlength=bins)
    used = count > 0
    return float(np.abs(mean_p[used] - mean_y[used]).sum() / len(y))


def _binary_scores(y: np.ndarray, p: np.ndarray) -> dict:
    both = 0 < y.sum() < len(y)
    return {
        "pr_auc": _num(average_precision_score(y, p)) if y.sum() > 0 else None,
        "roc_auc": _num(roc_auc_score(y, p)) if both else None,
    }


def session_metrics(y_true, scores, hours) -> dict:
    """PR-AUC (primary), ROC-AUC, F1 at 0.5 and at 0.1..0.9, calibration error, per time of day."""
    y = np.asarray(y_true, dtype="int64")
    p = np.asarray(scores, dtype="float64")
    hours = np.asarray(hours, dtype="int64")
    if len(y) == 0:
        return {"rows": 0, "positives": 0, **{m: None for m in SESSION_METRICS}, "f1_at": {}, "by_time_of_day": {}}
    f1_at = {f"{t:.1f}": _num(f1_score(y, (p >= t).astype("int64"), zero_division=0)) for t in THRESHOLDS}
    bucket = time_of_day_bucket(hours)
    by_bucket = {}
    for name in BUCKETS:
        mask = bucket == name
        by_bucket[name] = {"rows": int(mask.sum()), "positives": int(y[mask].sum()), **_binary_scores(y[mask], p[mask])}
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        **_binary_scores(y, p),
        "f1": f1_at["0.5"],
        "calibration_error": _num(calibration_error(y, p)),
        "f1_at": f1_at,
        "by_time_of_day": by_bucket,
    }


def session_baselines(train: pd.DataFrame, test: pd.DataFrame, target: str) -> dict[str, np.ndarray]:
    """Scores on `test` of always-negative, the hour-of-day prior and the hour-of-week prior.

    The priors are the training period's session-start rate per local hour (per weekday and local
    hour); a weekday-hour the training period never saw falls back to the hour-of-day prior.
    """
    overall = float(train[target].mean()) if len(train) else 0.0
    by_hour = train.groupby("hour")[target].mean()
    hour_prior = test["hour"].map(by_hour).fillna(overall).to_numpy(dtype="float64")
    week_key = lambda df: pd.to_datetime(df["date"]).dt.day_of_week.to_numpy() * 24 + df["hour"].to_numpy()  # noqa: E731
    by_week = train.assign(_k=week_key(train)).groupby("_k")[target].mean() if len(train) else pd.Series(dtype="float64")
    week_prior = pd.Series(week_key(test)).map(by_week).to_numpy(dtype="float64")
    week_prior = np.where(np.isnan(week_prior), hour_prior, week_prior)
    return {
        "always_negative": np.zeros(len(test)),
        "hour_of_day_prior": hour_prior,
        "hour_of_week_prior": week_prior,
    }


# --- comparison and promotion -------------------------------------------------------------------


def better(a: float | None, b: float | None, metric: str) -> bool | None:
    """Whether value `a` is strictly better than `b` on `metric`; None when either is undefined."""
    if a is None or b is None:
        return None
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def not_worse(a: float | None, b: float | None, metric: str, tolerance: float = 0.0) -> bool | None:
    if a is None or b is None:
        return None
    return a >= b - tolerance if HIGHER_IS_BETTER[metric] else a <= b + tolerance


def comparison_table(model: dict, baselines: dict[str, dict], metrics: list[str]) -> list[dict]:
    """One row per (baseline, metric): both values and whether the model beats the baseline."""
    return [
        {
            "baseline": name,
            "metric": metric,
            "model": model.get(metric),
            "baseline_value": values.get(metric),
            "model_beats": better(model.get(metric), values.get(metric), metric),
        }
        for name, values in baselines.items()
        for metric in metrics
    ]


def best_baseline(baselines: dict[str, dict], metric: str) -> tuple[str | None, float | None]:
    defined = {name: v[metric] for name, v in baselines.items() if v.get(metric) is not None}
    if not defined:
        return None, None
    pick = max if HIGHER_IS_BETTER[metric] else min
    name = pick(defined, key=defined.get)
    return name, defined[name]


def promotion_decision(
    metric: str,
    candidate: float | None,
    baselines: dict[str, dict],
    in_use: float | None,
    in_use_note: str | None,
    tolerance: float = 0.0,
) -> dict:
    """Promote unless the candidate is worse than the best baseline or than the model in use.

    A candidate whose primary metric is undefined on the held-out window (e.g. no positives) is
    not promoted: nothing shows it works. The model in use is compared only when it could be
    re-scored fairly on the same window (`in_use` not None); `in_use_note` says why not otherwise.
    """
    reasons: list[str] = []
    name, value = best_baseline(baselines, metric)
    if candidate is None:
        reasons.append(f"the candidate's {metric} is undefined on the held-out window")
    elif value is not None and not not_worse(candidate, value, metric):
        reasons.append(f"the candidate's {metric} {candidate:.4f} is worse than the best baseline ({name}: {value:.4f})")
    if candidate is not None and in_use is not None and not not_worse(candidate, in_use, metric, tolerance):
        reasons.append(f"the candidate's {metric} {candidate:.4f} is worse than the model in use ({in_use:.4f}) on the same window")
    return {
        "promoted": not reasons,
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER[metric],
        "candidate": candidate,
        "best_baseline": name,
        "best_baseline_value": value,
        "model_in_use": in_use,
        "model_in_use_note": in_use_note,
        "tolerance": tolerance,
        "reasons": reasons,
        "summary": "promoted: the candidate is now the model in use" if not reasons else "not promoted, the model in use stays: " + "; ".join(reasons),
    }


def upsert_run_entry(entries: list[dict], run_id: str, updates: dict, drift: dict | None = None) -> list[dict]:
    """metrics_history.json: one entry per run, which each evaluation of that run completes."""
    out = [dict(e) for e in entries]
    for entry in out:
        if entry.get("run_id") == run_id:
            entry.update(updates)
            if drift is not None and entry.get("drift") is None:
                entry["drift"] = drift
            return out
    out.append({"run_id": run_id, "run_at": pd.Timestamp.now(tz="UTC").isoformat(), **updates, "drift": drift})
    return out


def set_run_drift(entries: list[dict], run_id: str, drift: dict) -> list[dict] | None:
    """The entries with this run's drift summary, or None when the run evaluated no model (no entry)."""
    if not any(e.get("run_id") == run_id for e in entries):
        return None
    return [{**e, "drift": drift} if e.get("run_id") == run_id else dict(e) for e in entries]
