"""Rolling-origin backtest: cut dates, pooled per-row scores, bootstrap intervals and the gate.

`folds` cut dates are spread evenly over the newest `span` of the history's time range. Fold i
trains on what happened strictly before its cut and is tested on what happens from its cut until
the next one (the last fold until the end), so the test windows tile the newest part of history
and every test row is scored once, by models that never saw it.

Intervals come from a paired cluster bootstrap: whole clusters of rows (listening sessions for the
mood, days for the session start, since rows within one are not independent) are resampled with
replacement, the same resamples for every scorer, so the interval of a *difference* of mean losses
reflects how consistently one scorer beats another.

The gate promotes only on evidence: the candidate's mean loss minus the best baseline's (and the
model in use's) must have the upper end of its interval below zero on every deciding metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .baselines import PLAIN
from .evaluation import HIGHER_IS_BETTER


@dataclass(frozen=True)
class BacktestSettings:
    folds: int = 6
    span: float = 0.5  # the newest share of the history's time range the cuts spread over
    bootstrap: int = 1000  # resamples for the intervals
    confidence: float = 0.95
    seed: int = 42
    min_train_rows: int = 100  # a fold with fewer training rows is left out
    min_test_rows: int = 20

    def __post_init__(self) -> None:
        if self.folds < 1 or not 0 < self.span < 1:
            raise ValueError(f"a backtest needs folds >= 1 and 0 < span < 1, got folds={self.folds}, span={self.span}")
        if self.bootstrap < 100 or not 0.5 < self.confidence < 1:
            raise ValueError("bootstrap >= 100 and 0.5 < confidence < 1 are required")


def cut_times(first: pd.Timestamp, last: pd.Timestamp, settings: BacktestSettings) -> list[pd.Timestamp]:
    """The fold cuts: evenly spaced over the newest `span` of [first, last]."""
    total = last - first
    start = first + total * (1 - settings.span)
    step = total * settings.span / settings.folds
    return [(start + step * i).floor("s") for i in range(settings.folds)]


def fold_windows(cuts: list[pd.Timestamp], last: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(cut, end) of each fold's test window: up to the next cut, the last one past `last`."""
    ends = list(cuts[1:]) + [last + pd.Timedelta(milliseconds=1)]
    return list(zip(cuts, ends))


@dataclass
class Scores:
    """Per-row losses of every scorer on the pooled test rows of all folds."""

    cluster: np.ndarray  # bootstrap cluster per row (session or day), any hashable values
    losses: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # scorer → metric → per-row loss

    def __post_init__(self) -> None:
        codes, self._codes = np.unique(self.cluster, return_inverse=True)
        self.n_clusters = len(codes)

    def resample_weights(self, settings: BacktestSettings) -> np.ndarray:
        """How often each cluster is drawn in each resample (resamples × clusters), paired for all scorers."""
        rng = np.random.default_rng(settings.seed)
        return rng.multinomial(self.n_clusters, np.full(self.n_clusters, 1 / self.n_clusters), size=settings.bootstrap).astype("float64")

    def interval(self, values: np.ndarray, weights: np.ndarray, confidence: float) -> tuple[float, float, float]:
        """(mean, low, high) of the row mean of `values` under cluster resampling."""
        sums = np.bincount(self._codes, weights=values, minlength=self.n_clusters)
        rows = np.bincount(self._codes, minlength=self.n_clusters).astype("float64")
        boot = (weights @ sums) / (weights @ rows)
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(boot, [tail, 100 - tail])
        return float(values.mean()), float(low), float(high)


def _r(x: float) -> float:
    return round(float(x), 6)


def evidence(scores: Scores, candidate: str, baselines: list[str], in_use: str | None, metrics: list[str], settings: BacktestSettings) -> dict:
    """Mean losses with intervals, and differences with intervals (negative: the first is better):
    the candidate against every baseline (`best` marks the best one, which decides) and against the
    model in use, and the model in use against the best baseline, on every deciding metric."""
    weights = scores.resample_weights(settings)
    out: dict = {"intervals": {}, "against": []}
    for scorer, by_metric in scores.losses.items():
        out["intervals"][scorer] = {m: dict(zip(("mean", "low", "high"), map(_r, scores.interval(by_metric[m], weights, settings.confidence)))) for m in metrics}
    for metric in metrics:
        if HIGHER_IS_BETTER[metric]:
            raise ValueError(f"the gate decides on losses (lower is better), not {metric!r}")
        best = min(baselines, key=lambda b: scores.losses[b][metric].mean())
        pairs = [("candidate_vs_baseline", candidate, b) for b in baselines]
        if in_use is not None and in_use != candidate:
            pairs += [("candidate_vs_in_use", candidate, in_use), ("in_use_vs_baseline", in_use, best)]
        for role, scorer, rival in pairs:
            mean, low, high = scores.interval(scores.losses[scorer][metric] - scores.losses[rival][metric], weights, settings.confidence)
            out["against"].append(
                {"role": role, "scorer": scorer, "rival": rival, "best": rival == best, "metric": metric,
                 "difference": _r(mean), "low": _r(low), "high": _r(high), "clear": bool(high < 0)}
            )
    return out


TASK_WORDS = {
    "mood_classifier": ("mood", "the mood of your next track"),
    "session_classifier": ("listening-times", "when you will start listening"),
}


def plain(name: str) -> str:
    return PLAIN.get(name, name)


def decide(kind: str, ev: dict, in_use_present: bool, folds: int) -> dict:
    """The gate's verdict: what serves next, why, and one sentence a listener understands.

    The candidate serves when it is clearly better than the best baseline and than the model in
    use (a candidate of the model in use's own recipe is that model refit on newer data). Else the
    model in use stays when it is itself clearly better than the best baseline; else the best
    baseline serves.
    """
    noun, what = TASK_WORDS[kind]
    by_role: dict[str, list[dict]] = {}
    for a in ev["against"]:
        if a["best"] or a["role"] != "candidate_vs_baseline":  # the other baselines do not decide
            by_role.setdefault(a["role"], []).append(a)
    best = by_role["candidate_vs_baseline"][0]["rival"]
    clear = lambda role: role in by_role and all(a["clear"] for a in by_role[role])  # noqa: E731
    periods = f"{folds} past period{'s' if folds != 1 else ''}"
    if clear("candidate_vs_baseline") and ("candidate_vs_in_use" not in by_role or clear("candidate_vs_in_use")):
        serving = "candidate"
        summary = f"Over {periods}, the new {noun} model predicted {what} clearly better than {plain(best)}, so it now makes the predictions."
    elif in_use_present and clear("in_use_vs_baseline"):
        serving = "model_in_use"
        summary = f"Over {periods}, the new {noun} model was not clearly better than the one already in use, so that one keeps making the predictions."
    else:
        serving = "baseline"
        instead = " instead of the previous model" if in_use_present else ""
        summary = f"Over {periods}, the new {noun} model was not clearly better than {plain(best)}, so that simple rule makes the predictions{instead}."
    reasons = [
        f"{a['metric']}: {a['scorer']} minus {a['rival']} is {a['difference']:+.4f} (interval {a['low']:+.4f} to {a['high']:+.4f}), not clearly below zero"
        for role in ("candidate_vs_baseline", "candidate_vs_in_use")
        for a in by_role.get(role, [])
        if not a["clear"]
    ]
    return {"promoted": serving == "candidate", "serving": serving, "best_baseline": best, "reasons": reasons, "summary": summary}
