"""Candidates trained on a rolling-origin backtest, a gate that decides on evidence, and the refit.

Every recipe (a model family with its settings and features) and every baseline is trained on each
fold's past and scored on its future; the recipe with the lowest mean log loss is the candidate.
The gate (`backtest.decide`) compares it with the best baseline and the model in use. The candidate
is then refit on all rows (XGBoost with the median number of trees its folds chose): promoted, it
serves; otherwise it is kept in models/candidates/ for inspection, and the report names what serves.

Pure: the callers read the data and the model in use, and write what comes back. The report is
the single record of a training run: the evaluation assets publish it, the promotion check reads
its decision and `predictions` reads what serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..plays.schema import CLUSTER_FEATURES
from . import mood_features, session_features
from .assign import nearest_cluster
from .backtest import BacktestSettings, Scores, cut_times, decide, evidence, fold_windows, plain
from .baselines import MOOD_BASELINES, SESSION_BASELINES, mood_baseline, session_baseline
from .clusters import fold_centroids
from .evaluation import (
    HIGHER_IS_BETTER,
    MOOD_METRICS,
    SESSION_METRICS,
    calibration_error,
    mood_losses,
    mood_metrics,
    reliability,
    session_losses,
    session_metrics,
)
from .families import Fitted, Recipe, fit, predict, recency_weights
from .training import TrainingSkipped, data_hash, library_versions

MOOD_RECIPES = (Recipe("xgboost", "mood+audio"), Recipe("xgboost", "mood"))
SESSION_RECIPES = (Recipe("xgboost", "session"), Recipe("logistic", "session"))
MOOD_DECIDING = ["log_loss"]
SESSION_DECIDING = ["log_loss", "brier"]
IN_USE = "model in use"
#: what serves when nothing could be tested
DEFAULT_BASELINE = {"mood_classifier": "markov_1", "session_classifier": "hour_of_week"}
#: lead bands the session report breaks its scores down by (hours ahead)
LEAD_BANDS = [(0, 1), (1, 2), (2, 6), (6, 24)]


@dataclass(frozen=True)
class TrainSettings:
    recipes: tuple[Recipe, ...]
    backtest: BacktestSettings = BacktestSettings()
    recency_half_life_days: float | None = None  # weight older training rows down (None: all equal)

    def __post_init__(self) -> None:
        if not self.recipes:
            raise ValueError("at least one model recipe is needed")


@dataclass
class Outcome:
    bundle: dict[str, Any] | None  # the candidate refit on all rows; None when none could be trained
    report: dict[str, Any]


@dataclass
class _Fold:
    """What one fold contributes: per scorer, its per-row losses and what the report shows."""

    number: int
    cut: pd.Timestamp
    end: pd.Timestamp
    train_rows: int
    test_rows: int
    train_until: pd.Timestamp  # the newest play any training row (or the fold's clusters) used
    y: np.ndarray
    cluster: np.ndarray
    lead_hours: np.ndarray | None = None  # session: how far ahead each test row's hour is
    proba: dict[str, np.ndarray] = field(default_factory=dict)  # scorer → probabilities
    classes: np.ndarray | None = None  # mood: the fold's classes (columns of proba)
    trees: dict[str, int | None] = field(default_factory=dict)


def _in_use(in_use: dict | None, problem: str | None, expected: dict, recipes: tuple[Recipe, ...]) -> tuple[Recipe | None, str]:
    """The model in use's recipe, retrained on every fold to compare it fairly, or None and why not.

    A model trained on the folds' test windows cannot be scored on them as it is, so its recipe is
    backtested instead; a model whose features meant something else (another window or timezone),
    or that predates recipes, is not compared.
    """
    if in_use is None:
        return None, problem or "no model in use yet"
    meta = in_use.get("metadata", {})
    for key, value in expected.items():
        if meta.get(key) != value:
            return None, f"the model in use was trained with {key}={meta.get(key)!r}, the data now has {value!r}: not comparable"
    if "recipe" not in meta:
        return None, "the model in use predates the backtest (no recipe recorded): not comparable, the candidate is judged against the baselines"
    try:
        recipe = Recipe(**meta["recipe"])
    except (TypeError, ValueError) as exc:
        return None, f"the model in use has a recipe this version cannot train ({exc}): not comparable"
    same = next((r for r in recipes if r == recipe), None)
    return recipe, f"its recipe ({recipe.name}) was retrained on every fold" + (" (it is one of this run's recipes)" if same else "")


def _pooled(folds: list[_Fold], key: str) -> np.ndarray:
    """A per-row field (y, cluster, lead_hours) over all folds' test rows."""
    return np.concatenate([getattr(f, key) for f in folds])


def _median_trees(folds: list[_Fold], name: str) -> int | None:
    trees = [f.trees.get(name) for f in folds if f.trees.get(name)]
    return int(np.median(trees)) if trees else None


def _fold_entry(f: _Fold, scores: dict) -> dict:
    return {
        "fold": f.number,
        "cut": f.cut.isoformat(),
        "test_end": f.end.isoformat(),
        "train_rows": f.train_rows,
        "test_rows": f.test_rows,
        "train_until": f.train_until.isoformat(),
        "trees": {k: v for k, v in f.trees.items() if v is not None},
        "scores": scores,
    }


def _comparison(overall: dict, candidate: str, baselines: list[str], metrics: list[str], ev: dict) -> list[dict]:
    """One row per (baseline, reported metric): both values and whether the candidate is better;
    on a deciding metric against the best baseline, also the difference and its interval."""
    intervals = {(a["rival"], a["metric"]): a for a in ev["against"] if a["role"] == "candidate_vs_baseline"}
    rows = []
    for name in baselines:
        for metric in metrics:
            a, b = overall[candidate].get(metric), overall[name].get(metric)
            better = None if a is None or b is None else (a > b if HIGHER_IS_BETTER[metric] else a < b)
            row = {"baseline": name, "metric": metric, "model": a, "baseline_value": b, "model_beats": better}
            if (name, metric) in intervals:
                iv = intervals[(name, metric)]
                row.update(difference=iv["difference"], low=iv["low"], high=iv["high"], clearly_better=iv["clear"])
            rows.append(row)
    return rows


def skipped_outcome(kind: str, reason: str, context: dict, in_use_present: bool) -> Outcome:
    """Nothing could be trained: the model in use stays, else the task's default baseline serves."""
    noun = "mood" if kind == "mood_classifier" else "listening-times"
    fallback = DEFAULT_BASELINE[kind]
    serving = "the model already in use keeps making the predictions" if in_use_present else f"{plain(fallback)} makes the predictions"
    summary = f"There is not enough listening history yet to test a {noun} model ({reason}), so {serving}."
    decision = {
        "promoted": False,
        "serving": {"kind": "model", "name": IN_USE} if in_use_present else {"kind": "baseline", "name": fallback},
        "best_baseline": None,
        "reasons": [reason],
        "summary": summary,
    }
    return Outcome(None, {"model": kind, "status": "skipped", "skipped_reason": reason, **context, "summary": summary, "decision": decision})


def _decide_and_report(
    kind: str,
    folds: list[_Fold],
    recipes: tuple[Recipe, ...],
    baselines: list[str],
    deciding: list[str],
    reported: list[str],
    metrics_of: Callable[[np.ndarray, np.ndarray, Any], dict],
    losses_of: Callable[[np.ndarray, np.ndarray, Any], dict],
    in_use_recipe: Recipe | None,
    in_use_note: str,
    in_use_present: bool,
    settings: TrainSettings,
    context: dict,
) -> tuple[dict, Recipe]:
    """Scores, intervals, the verdict and the report, from the folds' probabilities."""
    names = [r.name for r in recipes]
    in_use_name = None
    if in_use_recipe is not None:
        in_use_name = in_use_recipe.name if in_use_recipe in recipes else IN_USE
    scorers = names + ([IN_USE] if in_use_name == IN_USE else []) + baselines
    losses = {s: {m: np.concatenate([losses_of(f.y, f.proba[s], f.classes)[m] for f in folds]) for m in deciding} for s in scorers}
    scores = Scores(_pooled(folds, "cluster"), losses)
    candidate = min(names, key=lambda n: losses[n]["log_loss"].mean())
    ev = evidence(scores, candidate, baselines, in_use_name, deciding, settings.backtest)
    verdict = decide(kind, ev, in_use_present, len(folds))
    fold_scores = [{s: metrics_of(f.y, f.proba[s], f.classes) for s in scorers} for f in folds]
    overall = _overall(folds, fold_scores, scorers, metrics_of)
    for s in scorers:
        overall[s]["interval"] = ev["intervals"][s]
    recipe = next(r for r in recipes if r.name == candidate)
    best = verdict["best_baseline"]
    report = {
        "model": kind,
        "status": "trained",
        "skipped_reason": None,
        **context,
        "summary": verdict["summary"],
        "primary_metric": "log_loss",
        "deciding_metrics": deciding,
        "higher_is_better": False,
        "backtest": {
            "folds": len(folds),
            "folds_configured": settings.backtest.folds,
            "span": settings.backtest.span,
            "cuts": [f.cut.isoformat() for f in folds],
            "resampled": "listening sessions" if kind == "mood_classifier" else "days",
            "bootstrap": settings.backtest.bootstrap,
            "confidence": settings.backtest.confidence,
            "recency_half_life_days": settings.recency_half_life_days,
        },
        "window": {"test": {"start": folds[0].cut.isoformat(), "end": folds[-1].end.isoformat(), "rows": int(sum(f.test_rows for f in folds))}},
        "folds": [_fold_entry(f, s) for f, s in zip(folds, fold_scores)],
        "recipes": {n: {"recipe": r.as_dict(), "test": overall[n], "trees": _median_trees(folds, n)} for n, r in zip(names, recipes)},
        "candidate": {"name": candidate, "family": recipe.family, "recipe": recipe.as_dict(), "test": overall[candidate], "trees": _median_trees(folds, candidate)},
        "baselines": {b: overall[b] for b in baselines},
        "comparison": _comparison(overall, candidate, baselines, reported, ev),
        "evidence": ev["against"],
        "model_in_use": {"present": in_use_present, "compared": in_use_name is not None, "scorer": in_use_name, "test": overall.get(in_use_name) if in_use_name else None, "note": in_use_note},
        "reliability": {s: _reliability(folds, s, kind) for s in [candidate, best] + ([in_use_name] if in_use_name and in_use_name not in (candidate, best) else [])},
    }
    report["beats_baselines"] = {
        b: all(a["clear"] for a in ev["against"] if a["role"] == "candidate_vs_baseline" and a["rival"] == b) for b in baselines
    }
    report["beats_all_baselines"] = all(report["beats_baselines"].values())
    report["decision"] = {
        **verdict,
        "metric": "log_loss",
        "candidate": overall[candidate]["log_loss"],
        "best_baseline_value": overall[best]["log_loss"],
        "model_in_use": overall[in_use_name]["log_loss"] if in_use_name else None,
        "model_in_use_note": in_use_note,
        "serving": _serving(verdict, candidate, best, in_use_name),
    }
    if kind == "session_classifier":
        report["by_lead"] = _by_lead(folds, [candidate, best])
    return report, recipe


def _serving(verdict: dict, candidate: str, best: str, in_use_name: str | None) -> dict:
    if verdict["serving"] == "candidate":
        return {"kind": "model", "name": candidate}
    if verdict["serving"] == "model_in_use":
        return {"kind": "model", "name": in_use_name}
    return {"kind": "baseline", "name": best}


def _overall(folds: list[_Fold], fold_scores: list[dict], scorers: list[str], metrics_of) -> dict:
    """Per scorer, the figures over all folds' test rows: pooled where the predictions are on one
    scale (every session metric; mood log loss, accuracy, calibration), else the row-weighted mean
    of the folds (mood macro F1 and ROC-AUC, whose classes are each fold's own clusters)."""
    out = {}
    weights = np.array([f.test_rows for f in folds], dtype="float64")
    for s in scorers:
        if folds[0].classes is None:
            out[s] = metrics_of(_pooled(folds, "y"), np.concatenate([f.proba[s] for f in folds]), None)
            continue
        correct = np.concatenate([f.classes[f.proba[s].argmax(axis=1)] == f.y for f in folds])
        conf = np.concatenate([f.proba[s].max(axis=1) for f in folds])
        log_loss = np.concatenate([mood_losses(f.y, f.proba[s], f.classes)["log_loss"] for f in folds])
        mean = lambda m: _weighted([fs[s][m] for fs in fold_scores], weights)  # noqa: E731
        out[s] = {
            "rows": int(len(correct)),
            "log_loss": round(float(log_loss.mean()), 6),
            "accuracy": round(float(correct.mean()), 6),
            "macro_f1": mean("macro_f1"),
            "roc_auc": mean("roc_auc"),
            "calibration_error": round(float(calibration_error(correct, conf)), 6),
        }
    return out


def _weighted(values: list, weights: np.ndarray) -> float | None:
    ok = [i for i, v in enumerate(values) if v is not None]
    return round(float(np.average([values[i] for i in ok], weights=weights[ok])), 6) if ok else None


def _reliability(folds: list[_Fold], scorer: str, kind: str) -> list[dict]:
    if kind == "session_classifier":
        return reliability(_pooled(folds, "y"), np.concatenate([f.proba[scorer] for f in folds]))
    correct = np.concatenate([f.classes[f.proba[scorer].argmax(axis=1)] == f.y for f in folds])
    return reliability(correct, np.concatenate([f.proba[scorer].max(axis=1) for f in folds]))


def _by_lead(folds: list[_Fold], scorers: list[str]) -> list[dict]:
    lead = _pooled(folds, "lead_hours")
    y = _pooled(folds, "y")
    rows = []
    for lo, hi in LEAD_BANDS:
        mask = (lead >= lo) & (lead < hi)
        for s in scorers:
            p = np.concatenate([f.proba[s] for f in folds])[mask]
            m = session_metrics(y[mask], p)
            rows.append({"hours_ahead": f"{lo}-{hi}", "scorer": s, **{k: m[k] for k in ("rows", "positives", "log_loss", "brier", "pr_auc")}})
    return rows


def _bundle(kind: str, recipe: Recipe, fitted: Fitted, feature_cols: list[str], rows: pd.DataFrame, target: str, time_col: str, extra: dict) -> dict:
    return {
        "model": fitted.model,
        "feature_cols": feature_cols,
        "metadata": {
            "kind": kind,
            "trained_at": datetime.now(timezone.utc).isoformat(),
            "classes": fitted.classes,
            "recipe": recipe.as_dict(),
            "family": recipe.family,
            "trees": fitted.trees,
            "window": {"train": {"start": rows[time_col].min().isoformat(), "end": rows[time_col].max().isoformat(), "rows": len(rows)}},
            "train_rows": len(rows),
            "data_hash": data_hash(rows, feature_cols + [target]),
            "libraries": library_versions(),
            **extra,
        },
    }


def _refit(kind, recipe, rows, feature_cols, target, time_col, trees, settings, report, extra) -> dict:
    """The candidate refit on every row (the newest `max_train_rows` of them), with the number of
    trees its folds chose."""
    if recipe.max_train_rows is not None:
        rows = rows.iloc[-recipe.max_train_rows :]  # what `fit` keeps: the metadata describes these rows
    fitted = fit(recipe, rows, feature_cols, target, recency_weights(rows[time_col], settings.recency_half_life_days), trees=trees if recipe.family == "xgboost" else None)
    bundle = _bundle(kind, recipe, fitted, feature_cols, rows, target, time_col, extra)
    report["candidate"].update(trained_at=bundle["metadata"]["trained_at"], data_hash=bundle["metadata"]["data_hash"], train_rows=len(rows), classes=fitted.classes)
    report["window"]["train"] = bundle["metadata"]["window"]["train"]
    return bundle


def _fit_predict(recipe: Recipe, train: pd.DataFrame, test: pd.DataFrame, cols: list[str], target: str, time_col: str, settings: TrainSettings) -> tuple[np.ndarray, list[int], int | None]:
    fitted = fit(recipe, train, cols, target, recency_weights(train[time_col], settings.recency_half_life_days))
    return predict(fitted, test, cols), fitted.classes, fitted.trees


# --- next mood ------------------------------------------------------------------------------------


@dataclass
class MoodFold:
    number: int
    cut: pd.Timestamp
    end: pd.Timestamp
    cluster_plays: pd.DataFrame  # the plays the fold's clusters were fitted on: all before the cut
    k: int
    train: pd.DataFrame  # contexts whose target play is before the cut, labelled with the fold's clusters
    test: pd.DataFrame  # contexts whose target play is in [cut, end)


def mood_folds(history: pd.DataFrame, ctx: mood_features.Contexts, k: int, settings: BacktestSettings):
    """The backtest's folds, one at a time: clusters (K = `k`) fitted on the plays before the cut,
    every play relabelled with them, and the contexts split by their target play's time."""
    played = history["played_at"]
    for number, (cut, end) in enumerate(fold_windows(cut_times(played.min(), played.max(), settings), played.max()), start=1):
        before = history[played < cut]
        if len(before) == 0:
            continue
        centroids = pd.DataFrame(fold_centroids(before, k, seed=settings.seed), columns=CLUSTER_FEATURES)
        labels = nearest_cluster(history, centroids)
        rows = mood_features.with_moods(ctx, labels, range(len(centroids)))
        yield MoodFold(number, cut, end, before, len(centroids), rows[rows["played_at"] < cut], rows[(rows["played_at"] >= cut) & (rows["played_at"] < end)])


def mood_candidate(
    history: pd.DataFrame, centroids: pd.DataFrame, window: int, settings: TrainSettings, in_use: dict | None, in_use_problem: str | None, context: dict
) -> Outcome:
    """Backtest the mood recipes and baselines (each fold with clusters fitted before its cut) and
    decide what predicts the next track's mood."""
    kind, target = "mood_classifier", mood_features.TARGET
    tz = context.get("timezone") or "UTC"
    recipe_in_use, note = _in_use(in_use, in_use_problem, {"window_size": window, "timezone": context.get("timezone")}, settings.recipes)
    recipes = settings.recipes + ((recipe_in_use,) if recipe_in_use is not None and recipe_in_use not in settings.recipes else ())
    bt = settings.backtest
    history = history.sort_values("played_at", kind="stable").reset_index(drop=True)
    ctx = mood_features.contexts(history, window, tz)
    ids = sorted(int(c) for c in centroids.index)
    full = mood_features.with_moods(ctx, history["mood_cluster_id"].to_numpy(), ids)
    if len(full) < bt.min_train_rows + bt.min_test_rows:
        return skipped_outcome(kind, f"too little data: {len(full)} next-track rows, a backtest needs at least {bt.min_train_rows + bt.min_test_rows}", context, in_use is not None)
    folds = []
    for mf in mood_folds(history, ctx, len(ids), bt):
        train, test = mf.train, mf.test
        if len(train) < bt.min_train_rows or len(test) < bt.min_test_rows or train[target].nunique() < 2:
            continue
        classes = np.arange(mf.k)
        train_until = max(mf.cluster_plays["played_at"].max(), train["played_at"].max())
        fold = _Fold(mf.number, mf.cut, mf.end, len(train), len(test), train_until, test[target].to_numpy(), test["session_id"].to_numpy(), classes=classes)
        for recipe in recipes:
            cols = mood_features.feature_columns(window, classes, audio=recipe.features == "mood+audio")
            proba, fitted_classes, trees = _fit_predict(recipe, train, test, cols, target, "played_at", settings)
            aligned = np.zeros((len(test), mf.k))
            aligned[:, fitted_classes] = proba
            name = recipe.name if recipe in settings.recipes else IN_USE
            fold.proba[name], fold.trees[name] = aligned, trees
        for name in MOOD_BASELINES[: 2 + window]:
            fold.proba[name] = mood_baseline(name, train, test, classes, window)
        folds.append(fold)
    if not folds:
        return skipped_outcome(kind, f"too little data: no backtest fold had {bt.min_train_rows} training and {bt.min_test_rows} test rows", context, in_use is not None)
    report, recipe = _decide_and_report(
        kind, folds, settings.recipes, MOOD_BASELINES[: 2 + window], MOOD_DECIDING, MOOD_METRICS, mood_metrics, mood_losses,
        recipe_in_use, note, in_use is not None, settings, {**context, "window_size": window},
    )
    cols = mood_features.feature_columns(window, ids, audio=recipe.features == "mood+audio")
    try:
        bundle = _refit(kind, recipe, full, cols, target, "played_at", report["candidate"]["trees"], settings, report,
                        {**context, "window_size": window, "cluster_ids": ids})
    except TrainingSkipped as exc:
        return skipped_outcome(kind, str(exc), context, in_use is not None)
    return Outcome(bundle, report)


# --- session start --------------------------------------------------------------------------------


def session_folds(rows: pd.DataFrame, settings: BacktestSettings):
    """The backtest's folds, one at a time: (number, cut, end, train, test). Training rows are those
    whose hour was over by the cut (so their outcome was known); test rows are the prediction times
    from the cut until the next one."""
    known_until = rows["hour_start"].max() + session_features.HOUR
    for number, (cut, end) in enumerate(fold_windows(cut_times(rows["origin"].min(), known_until, settings), known_until), start=1):
        yield number, cut, end, rows[rows["hour_start"] + session_features.HOUR <= cut], rows[(rows["origin"] >= cut) & (rows["origin"] < end)]


def session_candidate(dataset: pd.DataFrame, settings: TrainSettings, in_use: dict | None, in_use_problem: str | None, context: dict) -> Outcome:
    """Backtest the session-start recipes and priors on the day-ahead outlook's rows and decide what
    predicts when a session starts."""
    kind, target = "session_classifier", session_features.TARGET
    recipe_in_use, note = _in_use(in_use, in_use_problem, {"timezone": context.get("timezone")}, settings.recipes)
    recipes = settings.recipes + ((recipe_in_use,) if recipe_in_use is not None and recipe_in_use not in settings.recipes else ())
    bt = settings.backtest
    rows = dataset.sort_values(["origin", "hour_start"], kind="stable").reset_index(drop=True)
    if len(rows) < bt.min_train_rows + bt.min_test_rows or rows[target].nunique() < 2:
        reason = f"too little data: {len(rows)} outlook rows with {int(rows[target].sum()) if len(rows) else 0} session starts"
        return skipped_outcome(kind, f"{reason}, a backtest needs at least {bt.min_train_rows + bt.min_test_rows} rows and both outcomes", context, in_use is not None)
    cols = session_features.FEATURE_COLUMNS
    folds = []
    for number, cut, end, train, test in session_folds(rows, bt):
        if len(train) < bt.min_train_rows or len(test) < bt.min_test_rows or train[target].nunique() < 2:
            continue
        day = test["origin"].dt.floor("D").to_numpy()
        fold = _Fold(number, cut, end, len(train), len(test), train["hour_start"].max() + session_features.HOUR, test[target].to_numpy(), day, test["lead_hours"].to_numpy())
        for recipe in recipes:
            proba, fitted_classes, trees = _fit_predict(recipe, train, test, cols, target, "origin", settings)
            name = recipe.name if recipe in settings.recipes else IN_USE
            fold.proba[name], fold.trees[name] = proba[:, fitted_classes.index(1)], trees
        for name in SESSION_BASELINES:
            fold.proba[name] = session_baseline(name, train, test)
        folds.append(fold)
    if not folds:
        return skipped_outcome(kind, f"too little data: no backtest fold had {bt.min_train_rows} training and {bt.min_test_rows} test rows with both outcomes", context, in_use is not None)
    report, recipe = _decide_and_report(
        kind, folds, settings.recipes, SESSION_BASELINES, SESSION_DECIDING, SESSION_METRICS,
        lambda y, p, _: session_metrics(y, p), lambda y, p, _: session_losses(y, p),
        recipe_in_use, note, in_use is not None, settings, context,
    )
    bundle = _refit(kind, recipe, rows, list(cols), target, "origin", report["candidate"]["trees"], settings, report, dict(context))
    return Outcome(bundle, report)
