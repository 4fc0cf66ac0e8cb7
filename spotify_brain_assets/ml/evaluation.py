"""Scores of probabilistic predictions: the proper scoring rules that decide, and the figures reported.

Log loss (mood and session start) and the Brier score (session start) are proper: they are best
in expectation only for the true probabilities, so they reward calibrated, sharp predictions and
decide the gate. Accuracy, macro F1, PR-AUC, ROC-AUC and the calibration error are reported beside
them. Every metric knows whether higher is better.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HIGHER_IS_BETTER = {
    "log_loss": False,
    "brier": False,
    "accuracy": True,
    "macro_f1": True,
    "roc_auc": True,
    "pr_auc": True,
    "calibration_error": False,
}
MOOD_METRICS = ["log_loss", "accuracy", "macro_f1", "roc_auc", "calibration_error"]
SESSION_METRICS = ["log_loss", "brier", "pr_auc", "roc_auc", "calibration_error"]
EPS = 1e-6
BINS = 10


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC-AUC as the Mann–Whitney statistic (ties count half); None without both outcomes."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(score).rank(method="average").to_numpy()  # scipy.stats' rankdata, without importing SciPy
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(positive: np.ndarray, score: np.ndarray) -> float | None:
    """PR-AUC as average precision (precision at each positive, ranked by score; ties as one step)."""
    positive = np.asarray(positive, dtype="float64")
    if positive.sum() == 0:
        return None
    order = np.argsort(-np.asarray(score, dtype="float64"), kind="stable")
    s, y = np.asarray(score)[order], positive[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each run of tied scores
    tp = np.cumsum(y)[last]
    seen = np.flatnonzero(last) + 1
    gained = np.diff(np.r_[0.0, tp])
    return float((gained * tp / seen).sum() / positive.sum())


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro F1 over the classes present in `y` or predicted."""
    classes, codes = np.unique(np.r_[y, pred], return_inverse=True)
    k = len(classes)
    t, p = codes[: len(y)], codes[len(y) :]
    tp = np.bincount(t[t == p], minlength=k).astype("float64")
    denominator = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
    return float(np.mean(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)))


def _true_class_probability(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The probability each row gave its true class (0 for a class the model does not know)."""
    idx = np.searchsorted(classes, y).clip(max=len(classes) - 1)
    known = classes[idx] == y
    return np.where(known, proba[np.arange(len(y)), idx], 0.0)


def mood_losses(y, proba: np.ndarray, classes) -> dict[str, np.ndarray]:
    """Per-row log loss (probabilities clipped at 1e-6 and renormalized)."""
    y, classes = np.asarray(y, dtype="int64"), np.asarray(classes, dtype="int64")
    clipped = np.clip(proba, EPS, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    p = _true_class_probability(y, clipped, classes)
    return {"log_loss": -np.log(np.maximum(p, EPS))}


def session_losses(y, p) -> dict[str, np.ndarray]:
    """Per-row log loss and Brier score of a start probability."""
    y, p = np.asarray(y, dtype="float64"), np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
    return {"log_loss": -(y * np.log(p) + (1 - y) * np.log(1 - p)), "brier": (p - y) ** 2}


def calibration_error(observed: np.ndarray, p: np.ndarray, bins: int = BINS) -> float | None:
    """Expected calibration error: |mean predicted − observed rate| over equal-width bins, row-weighted."""
    if len(observed) == 0:
        return None
    table = reliability(observed, p, bins)
    return float(sum(r["rows"] * abs(r["mean_predicted"] - r["observed"]) for r in table) / len(observed))


def reliability(observed: np.ndarray, p: np.ndarray, bins: int = BINS) -> list[dict]:
    """The reliability table: per bin of predicted probability, its rows, mean prediction and
    observed rate. A calibrated model has mean_predicted ≈ observed in every bin."""
    p = np.asarray(p, dtype="float64")
    which = np.minimum((p * bins).astype("int64"), bins - 1)
    count = np.bincount(which, minlength=bins)
    mean_p = np.bincount(which, weights=p, minlength=bins)
    mean_y = np.bincount(which, weights=np.asarray(observed, dtype="float64"), minlength=bins)
    return [
        {"bin": f"{i / bins:.1f}-{(i + 1) / bins:.1f}", "rows": int(count[i]), "mean_predicted": round(mean_p[i] / count[i], 6), "observed": round(mean_y[i] / count[i], 6)}
        for i in range(bins)
        if count[i]
    ]


def mood_metrics(y, proba: np.ndarray, classes) -> dict:
    """Log loss, accuracy, macro F1, one-vs-rest ROC-AUC (macro over classes present) and the
    calibration error of the top prediction (its confidence against how often it was right)."""
    y, classes = np.asarray(y, dtype="int64"), np.asarray(classes, dtype="int64")
    if len(y) == 0:
        return {"rows": 0, **{m: None for m in MOOD_METRICS}}
    pred = classes[proba.argmax(axis=1)]
    aucs = [a for a in (roc_auc(y == c, proba[:, j]) for j, c in enumerate(classes)) if a is not None]  # a dozen moods at most
    return {
        "rows": int(len(y)),
        "log_loss": _num(mood_losses(y, proba, classes)["log_loss"].mean()),
        "accuracy": _num(float((pred == y).mean())),
        "macro_f1": _num(macro_f1(y, pred)),
        "roc_auc": _num(float(np.mean(aucs))) if aucs else None,
        "calibration_error": _num(calibration_error(pred == y, proba.max(axis=1))),
    }


def mood_reliability(y, proba: np.ndarray, classes) -> list[dict]:
    """Reliability of the top prediction: its confidence against how often it was the next mood."""
    classes = np.asarray(classes, dtype="int64")
    return reliability(classes[proba.argmax(axis=1)] == np.asarray(y, dtype="int64"), proba.max(axis=1)) if len(proba) else []


def session_metrics(y, p) -> dict:
    """Log loss, Brier score, PR-AUC, ROC-AUC and calibration error of start probabilities."""
    y, p = np.asarray(y, dtype="int64"), np.asarray(p, dtype="float64")
    if len(y) == 0:
        return {"rows": 0, "positives": 0, **{m: None for m in SESSION_METRICS}}
    losses = session_losses(y, p)
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "log_loss": _num(losses["log_loss"].mean()),
        "brier": _num(losses["brier"].mean()),
        "pr_auc": _num(average_precision(y, p)),
        "roc_auc": _num(roc_auc(y, p)),
        "calibration_error": _num(calibration_error(y, p)),
    }


# --- the metrics history --------------------------------------------------------------------------


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
