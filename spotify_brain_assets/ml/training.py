"""What every trained model shares: the skip reason, its data hash, library versions, and
probabilities keyed by the original class labels."""

from __future__ import annotations

import hashlib
import platform

import numpy as np
import pandas as pd


class TrainingSkipped(Exception):
    """The data cannot train a model (too few rows, one class only): a reason, not a failure."""


def data_hash(df: pd.DataFrame, columns: list[str]) -> str:
    """A content hash of the training rows: the same data gives the same hash."""
    hashed = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    import sklearn
    import xgboost as xgb

    return {
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def predict_proba(model, classes: list[int], df: pd.DataFrame, feature_cols: list[str]) -> pd.DataFrame:
    """Probabilities with one column per original class label (XGBoost: its best iteration)."""
    missing = [c for c in feature_cols if c not in df]
    if missing:
        raise ValueError(f"the model needs the feature columns {missing}, which the data lacks")
    if len(df) == 0:
        return pd.DataFrame(columns=classes, dtype="float64")
    proba = model.predict_proba(df[feature_cols].to_numpy(dtype="float32"))  # what the families train on
    return pd.DataFrame(proba, columns=classes, index=df.index)
