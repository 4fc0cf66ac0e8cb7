"""Time-based splits and XGBoost training with early stopping on the training period only.

The held-out window is the newest `test_fraction` of the rows and is never seen during training,
not even by early stopping: the validation slice that stops boosting is the newest
`validation_fraction` of the training period. When the rows belong to sessions, every boundary is
moved to a session start, so no session has rows on both sides.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb


class TrainingSkipped(Exception):
    """The data cannot train a model (too few rows, one class only): a reason, not a failure."""


@dataclass(frozen=True)
class XGBSettings:
    n_estimators: int = 100
    max_depth: int = 6
    learning_rate: float = 0.1
    seed: int = 42
    early_stopping_rounds: int = 10
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.n_estimators < 1 or self.max_depth < 1 or not 0 < self.learning_rate <= 1:
            raise ValueError("n_estimators >= 1, max_depth >= 1 and 0 < learning_rate <= 1 are required")
        if self.early_stopping_rounds < 1 or self.n_jobs < 1:
            raise ValueError("early_stopping_rounds >= 1 and n_jobs >= 1 are required")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame

    def window(self, time_col: str) -> dict:
        def span(df: pd.DataFrame) -> dict:
            if len(df) == 0:
                return {"start": None, "end": None, "rows": 0}
            return {"start": df[time_col].min().isoformat(), "end": df[time_col].max().isoformat(), "rows": len(df)}

        return {"train": span(self.train), "test": span(self.test)}


def time_split(df: pd.DataFrame, time_col: str, fraction: float, group_col: str | None = None) -> Split:
    """(older rows, newest `fraction` of rows) with no row in both; groups stay on one side.

    The cut falls before the row at position n × (1 − fraction) in time order; with `group_col`
    it moves back to the start of that row's group, so the group goes wholly to the newer side.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"split fraction must be between 0 and 1, got {fraction}")
    ordered = df.sort_values(time_col, kind="stable").reset_index(drop=True)
    n = len(ordered)
    cut = int(np.floor(n * (1 - fraction)))
    if n == 0 or cut >= n:
        return Split(ordered, ordered.iloc[:0])
    if group_col is None:
        return Split(ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True))
    group_start = ordered.groupby(group_col, sort=False)[time_col].transform("min")
    boundary = group_start.iloc[cut]
    older = (group_start < boundary).to_numpy()
    return Split(ordered[older].reset_index(drop=True), ordered[~older].reset_index(drop=True))


def data_hash(df: pd.DataFrame, columns: list[str]) -> str:
    """A content hash of the training rows: the same data gives the same hash."""
    hashed = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


@dataclass
class Trained:
    model: xgb.XGBClassifier
    classes: list[int]  # original labels, in the model's column order
    best_iteration: int
    fit_rows: int
    validation_rows: int
    validation_window: dict


def train_classifier(
    train: pd.DataFrame,
    feature_cols: list[str],
    target: str,
    time_col: str,
    settings: XGBSettings,
    validation_fraction: float,
    group_col: str | None = None,
) -> Trained:
    """XGBoost on `train`, early-stopped on its newest `validation_fraction` (by time, by group).

    Labels are re-encoded to 0..m−1 over the classes the fitting slice holds, so a class that never
    occurs in training cannot crash it; validation rows of classes the fit has not seen are left out
    of early stopping. Two classes train binary:logistic, more multi:softprob.
    """
    inner = time_split(train, time_col, validation_fraction, group_col)
    fit, val = inner.train, inner.test
    classes = np.unique(fit[target].to_numpy())
    if len(classes) < 2:
        raise TrainingSkipped(f"the training period holds {len(classes)} class(es) of {target}; a classifier needs two")
    encode = {c: i for i, c in enumerate(classes.tolist())}
    y_fit = fit[target].map(encode).to_numpy()
    val = val[val[target].isin(encode)]
    params = dict(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth,
        learning_rate=settings.learning_rate,
        random_state=settings.seed,
        n_jobs=settings.n_jobs,
        tree_method="hist",
    )
    if len(classes) == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", eval_metric="mlogloss")
    if len(val):
        params["early_stopping_rounds"] = settings.early_stopping_rounds
    model = xgb.XGBClassifier(**params)
    x_fit = fit[feature_cols].to_numpy(dtype="float64")
    if len(val):
        eval_set = [(val[feature_cols].to_numpy(dtype="float64"), val[target].map(encode).to_numpy())]
        model.fit(x_fit, y_fit, eval_set=eval_set, verbose=False)
        best = int(model.best_iteration)
    else:
        model.fit(x_fit, y_fit, verbose=False)
        best = settings.n_estimators - 1
    return Trained(model, [int(c) for c in classes], best, len(fit), len(val), Split(fit, val).window(time_col))


def predict_proba(model: xgb.XGBClassifier, classes: list[int], df: pd.DataFrame, feature_cols: list[str]) -> pd.DataFrame:
    """Probabilities with one column per original class label (best iteration when early-stopped)."""
    missing = [c for c in feature_cols if c not in df]
    if missing:
        raise ValueError(f"the model needs the feature columns {missing}, which the data lacks")
    if len(df) == 0:
        return pd.DataFrame(columns=classes, dtype="float64")
    proba = model.predict_proba(df[feature_cols].to_numpy(dtype="float32"))
    return pd.DataFrame(proba, columns=classes, index=df.index)


def settings_dict(settings: XGBSettings) -> dict:
    return asdict(settings)
