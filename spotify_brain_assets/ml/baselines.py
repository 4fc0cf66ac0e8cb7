"""The baselines a model must beat, fitted on a training period and scored on later rows.

Every baseline is smoothed, so a cell seen a few times cannot claim certainty:

- mood (probabilities over the classes): `majority` (the training period's share of each mood),
  `persistence` (the same mood as the last play, with the training period's stay rate),
  `markov_1`, `markov_2`, `markov_3` (the next mood given the last 1, 2, 3 moods of the session;
  each order backs off to the one below: P_k = (counts + α·P_{k−1}) / (n + α), down to the shares);
- session start (a probability per row): `hour_of_day`, `hour_of_week`, `hour_x_weekend` (the start
  rate of the row's local hour; of its hour of the week; of its hour on weekdays or weekends), and
  `session_running` (the rate given whether a session was running at the prediction time and how
  far ahead the hour is: a session in progress delays the next one). Each cell is shrunk toward its
  parent cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .mood_features import TARGET as MOOD_TARGET
from .mood_features import mood_columns
from .session_features import PRIOR_STRENGTH, TARGET as SESSION_TARGET, smoothed_rate

MOOD_BASELINES = ["majority", "persistence", "markov_1", "markov_2", "markov_3"]
SESSION_BASELINES = ["hour_of_day", "hour_of_week", "hour_x_weekend", "session_running"]
#: pseudo-counts a Markov context needs before its own counts outweigh the lower order
MARKOV_STRENGTH = 2.0
#: lead bands of the session_running prior: the first hour, the second, the rest of the day
LEAD_BANDS = [1.0, 2.0]

#: what each baseline means, for a listener
PLAIN = {
    "majority": "always expecting your most common mood",
    "persistence": "expecting the same mood as the last track",
    "markov_1": "the usual next mood after the last one",
    "markov_2": "the usual next mood after the last two",
    "markov_3": "the usual next mood after the last three",
    "hour_of_day": "how often you start listening at each hour of the day",
    "hour_of_week": "how often you start listening at each hour of each weekday",
    "hour_x_weekend": "how often you start listening at each hour, weekdays and weekends apart",
    "session_running": "how often a session starts, given whether you are listening right now",
}


# --- mood -----------------------------------------------------------------------------------------


def _codes(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The index of each value in the sorted `keys`; len(keys) for a value not among them."""
    if len(keys) == 0:
        return np.zeros(np.shape(values), dtype="int64")
    idx = np.searchsorted(keys, values).clip(max=len(keys) - 1)
    return np.where(keys[idx] == values, idx, len(keys))


def _context_key(codes: np.ndarray, order: int, base: int) -> np.ndarray:
    """One integer per row for its newest `order` symbols (columns of `codes` are oldest first)."""
    key = np.zeros(len(codes), dtype="int64")
    for i in range(codes.shape[1] - order, codes.shape[1]):  # at most the window: a few columns
        key = key * base + codes[:, i]
    return key


def mood_baseline(name: str, train: pd.DataFrame, test: pd.DataFrame, classes, window: int) -> np.ndarray:
    """Probabilities (test rows × classes) of baseline `name` fitted on `train` (mood columns + target)."""
    classes = np.asarray(sorted(int(c) for c in classes), dtype="int64")
    if len(classes) == 0:
        raise ValueError("a mood baseline needs at least one class")
    if name not in MOOD_BASELINES[:2] and not (name.startswith("markov_") and name[7:].isdigit() and 1 <= int(name[7:]) <= window):
        raise ValueError(f"unknown mood baseline {name!r} for a window of {window}; choose one of {MOOD_BASELINES}")
    k, n = len(classes), len(test)
    cols = mood_columns(window)
    y = _codes(train[MOOD_TARGET].to_numpy(dtype="int64"), classes)
    train_ctx = _codes(train[cols].to_numpy(dtype="int64").reshape(len(train), window), classes)
    test_ctx = _codes(test[cols].to_numpy(dtype="int64").reshape(n, window), classes)
    seen = y < k  # a target mood outside the classes cannot be counted
    y, train_ctx = y[seen], train_ctx[seen]
    share = (np.bincount(y, minlength=k) + 0.5) / (len(y) + 0.5 * k)
    probs = np.tile(share, (n, 1))
    if name == "majority":
        return probs
    if name == "persistence":
        stay = float((y == train_ctx[:, -1]).mean()) if len(y) else 0.0
        return stay * (test_ctx[:, -1][:, None] == np.arange(k)[None, :]) + (1 - stay) * probs
    for order in range(1, int(name[7:]) + 1):  # back-off: each order refines the one below
        keys, inverse = np.unique(_context_key(train_ctx, order, k + 1), return_inverse=True)
        counts = np.zeros((len(keys) + 1, k))  # the last row: a context never seen in training
        np.add.at(counts, (inverse, y), 1.0)
        row = counts[_codes(_context_key(test_ctx, order, k + 1), keys)]
        probs = (row + MARKOV_STRENGTH * probs) / (row.sum(axis=1, keepdims=True) + MARKOV_STRENGTH)
    return probs


# --- session start --------------------------------------------------------------------------------


def _cells(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each row's cell under every prior: hour, hour of week, hour × weekend, running × lead band."""
    hour = df["hour"].to_numpy(dtype="int64")
    weekend = df["is_weekend"].to_numpy(dtype="int64") * 24 + hour
    band = np.digitize(df["lead_hours"].to_numpy(), LEAD_BANDS)
    return {
        "hour_of_day": hour,
        "hour_of_week": df["day_of_week"].to_numpy(dtype="int64") * 24 + hour,
        "hour_x_weekend": weekend,
        "session_running": df["session_running"].to_numpy(dtype="int64") * (len(LEAD_BANDS) + 1) + band,
    }


def session_baseline(name: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The probability per test row of prior `name`, fitted on the training rows: each cell's start
    rate shrunk toward its parent's (hour of week and hour × weekend toward the hour of day, the
    hour of day and the running cells toward the overall rate)."""
    if name not in SESSION_BASELINES:
        raise ValueError(f"unknown session baseline {name!r}; choose one of {SESSION_BASELINES}")
    y = train[SESSION_TARGET].to_numpy(dtype="float64")
    fit, use = _cells(train), _cells(test)

    def rates(cells: np.ndarray, size: int, parent: np.ndarray | float) -> np.ndarray:
        return smoothed_rate(np.bincount(cells, weights=y, minlength=size), np.bincount(cells, minlength=size), parent, PRIOR_STRENGTH)

    overall = float(y.mean()) if len(y) else 0.0
    by_hour = rates(fit["hour_of_day"], 24, overall)
    if name == "hour_of_day":
        per_cell = by_hour
    elif name == "hour_of_week":
        per_cell = rates(fit["hour_of_week"], 168, np.tile(by_hour, 7))
    elif name == "hour_x_weekend":
        per_cell = rates(fit["hour_x_weekend"], 48, np.tile(by_hour, 2))
    else:
        per_cell = rates(fit["session_running"], 2 * (len(LEAD_BANDS) + 1), overall)
    return per_cell[use[name]]
