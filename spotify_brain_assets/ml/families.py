"""Model recipes: a family (XGBoost, or a regularized logistic regression), its settings and its
feature set. The backtest trains every recipe on every fold; the served model is the winning
recipe refit on all rows.

XGBoost is early-stopped on the newest `validation_fraction` of its training rows (by time, never
on a test window); the refit on all rows uses the number of trees the folds chose. The logistic
regression sees a design built from the same feature columns (one-hot hour × weekend, lead bands,
logits of the priors, logs of the counts and minutes), standardized, with an L2 penalty.

Every recipe trains on the newest `max_train_rows` rows at most, so a fit costs no more after
years of history than after a few; XGBoost uses the cores the machine leaves idle.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .training import TrainingSkipped

# scikit-learn and XGBoost are imported by `fit`, so loading the definitions stays fast

FAMILIES = ("xgboost", "logistic")


@dataclass(frozen=True)
class Recipe:
    """What the backtest compares and the served model is: a family, its settings, its features."""

    family: str
    features: str  # the feature set's name: "session", "mood", "mood+audio"
    n_estimators: int = 300  # XGBoost: at most this many trees (early stopping picks fewer)
    max_depth: int = 4
    learning_rate: float = 0.2
    early_stopping_rounds: int = 10
    validation_fraction: float = 0.1
    c: float = 0.1  # logistic regression: inverse L2 strength
    seed: int = 42
    # train on the newest rows only, at most this many (None: all): the fit's cost stops growing with
    # history; chosen on the backtest of ten-year listeners (README, "Training rows")
    max_train_rows: int | None = 150_000

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; choose one of {FAMILIES}")
        if self.n_estimators < 1 or self.max_depth < 1 or not 0 < self.learning_rate <= 1 or self.early_stopping_rounds < 1:
            raise ValueError("n_estimators >= 1, max_depth >= 1, 0 < learning_rate <= 1 and early_stopping_rounds >= 1 are required")
        if not 0 < self.validation_fraction < 1 or self.c <= 0:
            raise ValueError("0 < validation_fraction < 1 and c > 0 are required")
        if self.max_train_rows is not None and self.max_train_rows < 100:
            raise ValueError(f"max_train_rows must be at least 100 (or None for all rows), got {self.max_train_rows}")

    @property
    def name(self) -> str:
        suffix = {"mood": " (moods only)", "mood+audio": " (moods and audio)"}.get(self.features, "")
        return f"{self.family}{suffix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fitted:
    model: Any  # predict_proba(X) → rows × len(classes)
    classes: list[int]
    trees: int | None  # XGBoost: trees used (early-stopped or given); None for logistic regression


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def session_design(x: np.ndarray, columns: list[str]) -> np.ndarray:
    """The logistic regression's view of the session features: one-hot hour × weekend and lead band
    (the band also with "a session is running"), log-odds of the priors, logs of counts and minutes
    (the recency ones also per near lead band, where they matter)."""
    col = {c: x[:, i] for i, c in enumerate(columns)}
    bands = np.eye(6, dtype="float32")[np.digitize(col["lead_hours"], [1, 2, 3, 6, 12])]
    parts = [bands, bands * col["session_running"][:, None]]
    parts += [col[c][:, None] for c in ("rolling_listening_frequency_7d", "rolling_listening_frequency_30d", "hour_of_week_starts_4w", "hour_of_week_starts_12w", "starts_last_24h", "starts_last_7d", "is_weekend")]
    parts += [_log_odds(col[c])[:, None] for c in ("hour_of_day_rate", "hour_of_week_rate")]
    for c in ("minutes_since_last_play", "minutes_since_last_session_end", "total_tracks_last_7d", "total_tracks_last_30d", "avg_session_duration_last_7d"):
        parts.append(np.log1p(col[c])[:, None])
    for c in ("minutes_since_last_play", "minutes_since_last_session_end"):  # recency matters in the next hours
        parts.append(np.log1p(col[c])[:, None] * bands[:, :3])
    return np.hstack(parts).astype("float32")


DESIGNS = {"session": session_design}


def training_threads() -> int:
    """XGBoost's threads: the cores this process may run on (its affinity, not the machine's count)
    that the machine leaves idle. The OpenMP threads spin while they wait for each other, so a
    second thread on a 2-core machine whose cores were taken made a fit 6x slower in CPU and wall
    time (measured); on idle cores they share the work. The count does not change the model."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, int(cores + 1 - load)))  # + 1: this process's own thread is part of the load


def _time_order_split(n: int, fraction: float) -> int:
    """Rows before this index fit, the rest (the newest `fraction`, rows sorted by time) validate."""
    return int(np.floor(n * (1 - fraction)))


def fit(recipe: Recipe, train: pd.DataFrame, feature_cols: list[str], target: str, weights: np.ndarray | None = None, trees: int | None = None) -> Fitted:
    """Train `recipe` on `train` (sorted by time). XGBoost early-stops on the newest rows unless
    `trees` is given (the refit on all rows). Labels are re-encoded to 0..m−1 over the classes the
    training rows hold, so a class absent from training cannot crash it."""
    if recipe.max_train_rows is not None and len(train) > recipe.max_train_rows:
        start = len(train) - recipe.max_train_rows
        train = train.iloc[start:]
        weights = None if weights is None else np.asarray(weights)[start:]
    classes = np.unique(train[target].to_numpy())
    if len(classes) < 2:
        raise TrainingSkipped(f"the training rows hold {len(classes)} class(es) of {target}; a classifier needs two")
    y = np.searchsorted(classes, train[target].to_numpy()).astype("float32")
    x = np.ascontiguousarray(train[feature_cols].to_numpy(dtype="float32"))  # what XGBoost works in: no copy inside
    w = None if weights is None else np.asarray(weights, dtype="float64")
    if recipe.family == "logistic":
        if recipe.features not in DESIGNS:
            raise ValueError(f"no logistic design for the feature set {recipe.features!r}")
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler
        from threadpoolctl import threadpool_limits

        model = Pipeline(
            [
                ("design", FunctionTransformer(DESIGNS[recipe.features], kw_args={"columns": list(feature_cols)})),
                ("scale", StandardScaler()),
                ("fit", LogisticRegression(C=recipe.c, solver="newton-cholesky", max_iter=100)),
            ]
        )
        with threadpool_limits(limits=1):  # BLAS threads fight over a busy 2-core machine
            model.fit(x, y, fit__sample_weight=w)
        return Fitted(model, [int(c) for c in classes], None)
    import xgboost as xgb

    params = dict(
        max_depth=recipe.max_depth,
        learning_rate=recipe.learning_rate,
        random_state=recipe.seed,
        n_jobs=training_threads(),
        tree_method="hist",
        max_bin=32,
        min_child_weight=5,
    )
    if len(classes) == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", eval_metric="mlogloss")
    if trees is not None:
        model = xgb.XGBClassifier(n_estimators=trees, **params)
        model.fit(x, y, sample_weight=w, verbose=False)
        return Fitted(model, [int(c) for c in classes], trees)
    cut = _time_order_split(len(y), recipe.validation_fraction)
    if len(np.unique(y[:cut])) < len(classes) or cut == len(y):  # a class only in the newest rows: no slice to stop on
        model = xgb.XGBClassifier(n_estimators=recipe.n_estimators, **params)
        model.fit(x, y, sample_weight=w, verbose=False)
        return Fitted(model, [int(c) for c in classes], recipe.n_estimators)
    model = xgb.XGBClassifier(n_estimators=recipe.n_estimators, early_stopping_rounds=recipe.early_stopping_rounds, **params)
    model.fit(x[:cut], y[:cut], sample_weight=None if w is None else w[:cut], eval_set=[(x[cut:], y[cut:])], verbose=False)
    return Fitted(model, [int(c) for c in classes], int(model.best_iteration) + 1)


def predict(fitted: Fitted, frame: pd.DataFrame, feature_cols: list[str]) -> np.ndarray:
    """Probabilities (rows × fitted.classes)."""
    if len(frame) == 0:
        return np.empty((0, len(fitted.classes)))
    return fitted.model.predict_proba(frame[feature_cols].to_numpy(dtype="float32"))


def recency_weights(times: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """0.5 ** (age / half-life), age measured back from the newest row; None without a half-life."""
    if half_life_days is None:
        return None
    if half_life_days <= 0:
        raise ValueError(f"the recency half-life must be positive, got {half_life_days}")
    age = (times.max() - times).dt.total_seconds().to_numpy() / 86400.0
    return 0.5 ** (age / half_life_days)
