"""Train a candidate, score it and the baselines (and the model in use) on one held-out window.

Pure: the callers read the dataset and the model in use, and write what comes back. The report
is the single record of a training run: the evaluation assets publish it, the promotion check
reads its decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from . import mood_features, session_features
from .evaluation import (
    HIGHER_IS_BETTER,
    MOOD_METRICS,
    SESSION_METRICS,
    comparison_table,
    mood_baselines,
    mood_metrics,
    promotion_decision,
    session_baselines,
    session_metrics,
)
from .training import TrainingSkipped, XGBSettings, data_hash, library_versions, predict_proba, time_split, train_classifier


@dataclass(frozen=True)
class GateSettings:
    metric: str
    tolerance: float = 0.0  # the candidate may be this much worse than the model in use
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    window_days: int | None = None  # train on the newest days only (None: all history)
    min_train_rows: int = 50
    min_test_rows: int = 10

    def __post_init__(self) -> None:
        if self.metric not in HIGHER_IS_BETTER:
            raise ValueError(f"unknown gate metric {self.metric!r}; choose one of {sorted(HIGHER_IS_BETTER)}")
        if self.window_days is not None and self.window_days < 1:
            raise ValueError("window_days must be at least 1 (or None for all history)")
        if self.tolerance < 0:
            raise ValueError("tolerance must be >= 0")


@dataclass
class Outcome:
    bundle: dict[str, Any] | None  # the candidate, None when none could be trained
    report: dict[str, Any]


@dataclass(frozen=True)
class _Spec:
    kind: str
    target: str
    time_col: str
    group_col: str | None
    metrics: list[str]


MOOD = _Spec("mood_classifier", mood_features.TARGET, "played_at", "session_id", MOOD_METRICS)
SESSION = _Spec("session_classifier", session_features.TARGET, "hour_start", None, SESSION_METRICS)


def _recent(df: pd.DataFrame, time_col: str, days: int | None) -> pd.DataFrame:
    if days is None or len(df) == 0:
        return df
    return df[df[time_col] > df[time_col].max() - pd.Timedelta(days=days)]


def _in_use_scores(spec: _Spec, in_use: dict | None, problem: str | None, test: pd.DataFrame, test_start: pd.Timestamp | None, expected: dict):
    """Probabilities of the model in use on the held-out rows, or None and why it is not compared.

    `expected` holds what its features depend on (window size, timezone): a model built for other
    values would be fed features that mean something else under the same column names.
    """
    if in_use is None:
        return None, problem or "no model in use yet"
    meta = in_use.get("metadata", {})
    for key, value in expected.items():
        if meta.get(key) != value:
            return None, f"the model in use was trained with {key}={meta.get(key)!r}, the data now has {value!r}: not comparable"
    missing = [c for c in in_use["feature_cols"] if c not in test]
    if missing:
        return None, f"the model in use expects features the dataset no longer has ({missing[:3]}…): not comparable"
    trained_until = meta.get("window", {}).get("train", {}).get("end")
    if trained_until is not None and test_start is not None and pd.Timestamp(trained_until) >= test_start:
        return None, f"the model in use was trained on data up to {trained_until}, inside this held-out window: comparing would favour it"
    return predict_proba(in_use["model"], meta["classes"], test, in_use["feature_cols"]), None


def _skipped(spec: _Spec, reason: str, context: dict, window: dict | None = None) -> Outcome:
    report = {
        "model": spec.kind,
        "status": "skipped",
        "skipped_reason": reason,
        **context,
        "window": window,
        "decision": {"promoted": False, "reasons": [reason], "summary": f"no candidate trained: {reason}"},
    }
    return Outcome(None, report)


def _train(spec: _Spec, df: pd.DataFrame, feature_cols: list[str], xgb: XGBSettings, gate: GateSettings, context: dict):
    """(split, trained) or an Outcome saying why nothing could be trained."""
    if gate.metric not in spec.metrics:
        raise ValueError(f"the {spec.kind} gate compares one of {spec.metrics}, not {gate.metric!r}")
    df = _recent(df, spec.time_col, gate.window_days)
    split = time_split(df, spec.time_col, gate.test_fraction, spec.group_col)
    window = split.window(spec.time_col)
    if len(split.train) < gate.min_train_rows or len(split.test) < gate.min_test_rows:
        reason = (
            f"too little data: {len(split.train)} training rows (need {gate.min_train_rows}) and "
            f"{len(split.test)} held-out rows (need {gate.min_test_rows})"
        )
        return None, _skipped(spec, reason, context, window)
    try:
        trained = train_classifier(split.train, feature_cols, spec.target, spec.time_col, xgb, gate.validation_fraction, spec.group_col)
    except TrainingSkipped as exc:
        return None, _skipped(spec, str(exc), context, window)
    window["validation"] = trained.validation_window["test"]
    return (split, trained, window), None


def _bundle(spec: _Spec, trained, feature_cols: list[str], split, window: dict, xgb: XGBSettings, gate: GateSettings, extra: dict) -> dict:
    return {
        "model": trained.model,
        "feature_cols": feature_cols,
        "metadata": {
            "kind": spec.kind,
            "trained_at": datetime.now(timezone.utc).isoformat(),
            "classes": trained.classes,
            "window": window,
            "data_hash": data_hash(split.train, feature_cols + [spec.target]),
            "best_iteration": trained.best_iteration,
            "hyperparameters": asdict(xgb),
            "gate": asdict(gate),
            "libraries": library_versions(),
            **extra,
        },
    }


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def _report(spec: _Spec, gate: GateSettings, context: dict, window: dict, bundle: dict, train_m: dict, test_m: dict, base_m: dict, in_use_m: dict | None, note: str | None, in_use: dict | None) -> dict:
    decision = promotion_decision(
        gate.metric, test_m.get(gate.metric), base_m, in_use_m.get(gate.metric) if in_use_m else None, note, gate.tolerance
    )
    primary = comparison_table(test_m, base_m, [gate.metric])
    beats = {r["baseline"]: r["model_beats"] for r in primary}
    verdicts = [
        f"{'beats' if r['model_beats'] else 'does not beat' if r['model_beats'] is False else 'cannot be compared with'} "
        f"{r['baseline']} on {gate.metric}: {_fmt(r['model'])} vs {_fmt(r['baseline_value'])}"
        for r in primary
    ]
    return {
        "model": spec.kind,
        "status": "trained",
        "skipped_reason": None,
        **context,
        "primary_metric": gate.metric,
        "higher_is_better": HIGHER_IS_BETTER[gate.metric],
        "window": window,
        "candidate": {
            "trained_at": bundle["metadata"]["trained_at"],
            "data_hash": bundle["metadata"]["data_hash"],
            "best_iteration": bundle["metadata"]["best_iteration"],
            "classes": bundle["metadata"]["classes"],
            "train": train_m,
            "test": test_m,
        },
        "baselines": base_m,
        "comparison": comparison_table(test_m, base_m, spec.metrics),
        "beats_baselines": beats,
        "verdicts": verdicts,
        "beats_all_baselines": all(v is True for v in beats.values()),
        "model_in_use": {
            "present": in_use is not None,
            "trained_at": in_use["metadata"].get("trained_at") if in_use else None,
            "test": in_use_m,
            "note": note,
        },
        "decision": decision,
    }


def mood_candidate(
    dataset: pd.DataFrame, window: int, xgb: XGBSettings, gate: GateSettings, in_use: dict | None, in_use_problem: str | None, context: dict
) -> Outcome:
    """Train the next-track mood candidate and decide whether it replaces the model in use."""
    spec = MOOD
    feature_cols = mood_features.feature_columns(window)
    trained_or, skipped = _train(spec, dataset, feature_cols, xgb, gate, context)
    if skipped:
        return skipped
    split, trained, win = trained_or
    y_train, y_test = split.train[spec.target].to_numpy(), split.test[spec.target].to_numpy()
    train_m = mood_metrics(y_train, predict_proba(trained.model, trained.classes, split.train, feature_cols))
    test_m = mood_metrics(y_test, predict_proba(trained.model, trained.classes, split.test, feature_cols))
    base = mood_baselines(split.train, split.test, f"mood_cluster_{window - 1}", spec.target)
    base_m = {name: mood_metrics(y_test, proba, pred) for name, (proba, pred) in base.items()}
    test_start = split.test[spec.time_col].min()
    expected = {"window_size": window, "timezone": context.get("timezone")}
    scores, note = _in_use_scores(spec, in_use, in_use_problem, split.test, test_start, expected)
    in_use_m = mood_metrics(y_test, scores) if scores is not None else None
    bundle = _bundle(spec, trained, feature_cols, split, win, xgb, gate, {**context, "window_size": window})
    return Outcome(bundle, _report(spec, gate, {**context, "window_size": window}, win, bundle, train_m, test_m, base_m, in_use_m, note, in_use))


def session_candidate(
    dataset: pd.DataFrame, xgb: XGBSettings, gate: GateSettings, in_use: dict | None, in_use_problem: str | None, context: dict
) -> Outcome:
    """Train the session-start candidate (rolling window) and decide whether it replaces the model in use."""
    spec = SESSION
    feature_cols = list(session_features.FEATURE_COLUMNS)
    trained_or, skipped = _train(spec, dataset, feature_cols, xgb, gate, context)
    if skipped:
        return skipped
    split, trained, win = trained_or

    def positive(proba: pd.DataFrame) -> np.ndarray:
        return proba[1].to_numpy() if 1 in proba.columns else np.zeros(len(proba))

    train_m = session_metrics(split.train[spec.target], positive(predict_proba(trained.model, trained.classes, split.train, feature_cols)), split.train["hour"])
    y_test, hours = split.test[spec.target], split.test["hour"]
    test_m = session_metrics(y_test, positive(predict_proba(trained.model, trained.classes, split.test, feature_cols)), hours)
    base_m = {name: session_metrics(y_test, s, hours) for name, s in session_baselines(split.train, split.test, spec.target).items()}
    test_start = split.test[spec.time_col].min()
    scores, note = _in_use_scores(spec, in_use, in_use_problem, split.test, test_start, {"timezone": context.get("timezone")})
    in_use_m = session_metrics(y_test, positive(scores), hours) if scores is not None else None
    bundle = _bundle(spec, trained, feature_cols, split, win, xgb, gate, context)
    return Outcome(bundle, _report(spec, gate, context, win, bundle, train_m, test_m, base_m, in_use_m, note, in_use))
