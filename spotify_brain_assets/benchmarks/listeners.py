"""Synthetic listeners for the retrain benchmark and the ML tests, each with a known structure.

- `markov`: sessions at habitual hours of the week, each happening independently; within a
  session the mood follows a first-order Markov chain (the next mood depends on the last one only).
  Nothing beyond the hour-of-week prior and the Markov-1 chain is there to learn.
- `routine`: the same habits, plus what real people do: quiet spells of several days (travel,
  illness), follow-up sessions an hour or two after one ends, and a habit that moves mid-history;
  within a session the chance of leaving a mood grows with how long it has lasted, a switch often
  returns to the mood before, and the first mood depends on the habit (the hour). The next mood
  depends on more than the last one, and recency says much about the next sessions.
- `shuffled`: the `routine` listener with every session moved to a random instant of the history
  and the moods of all plays shuffled: nothing is learnable, so no model should ever be promoted.

Every listener is drawn from its seed (its habits too), so results never hinge on one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plays.schema import PLAY_COLUMNS, conform, tempo_norm
from ..sources.demo import MOOD_NAMES, catalog

KINDS = ("markov", "routine", "shuffled")
#: the demo catalog's moods these listeners play: four that clustering tells apart exactly (sunny pop,
#: calm acoustic, deep focus, dark energy), so a listener's moods are the clusters and nothing hides
#: in the audio features
MOODS = [MOOD_NAMES.index(m) for m in ("sunny pop", "calm acoustic", "deep focus", "dark energy")]
N_MOODS = len(MOODS)
MAX_LENGTH = 60
#: (weekend?, earliest hour, latest hour) of the habitual sessions drawn for a listener
HABIT_SLOTS = [(False, 6.5, 9.0), (False, 11.5, 13.5), (False, 16.5, 19.5), (False, 20.5, 23.0), (True, 9.5, 12.0), (True, 14.0, 17.5), (True, 20.5, 23.5)]


def _habits(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "weekend": [s[0] for s in HABIT_SLOTS],
            "hour": [rng.uniform(s[1], s[2]) for s in HABIT_SLOTS],
            "prob": rng.uniform(0.4, 0.85, len(HABIT_SLOTS)),
            "moods": list(rng.dirichlet(np.full(N_MOODS, 0.6), len(HABIT_SLOTS))),
        }
    )


def _quiet_days(rng: np.random.Generator, days: int, active_mean: float = 25.0, quiet_mean: float = 4.0) -> np.ndarray:
    """A two-state spell process over days: True on the days of a quiet spell."""
    lengths = np.empty(0, dtype="int64")
    while lengths.sum() < days:  # a few dozen spells for years of history
        lengths = np.r_[lengths, rng.geometric(1 / active_mean), rng.geometric(1 / quiet_mean)]
    state = np.repeat(np.arange(len(lengths)) % 2 == 1, lengths)
    return state[:days]


def _session_moods(rng: np.random.Generator, kind: str, lengths: np.ndarray, habit_moods: np.ndarray) -> np.ndarray:
    """Moods per session position (sessions × MAX_LENGTH), vectorized across sessions."""
    n = len(lengths)
    moods = np.zeros((n, MAX_LENGTH), dtype="int64")
    draw = lambda p: (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(max=N_MOODS - 1)  # noqa: E731
    if kind == "markov":
        transition = rng.dirichlet(np.full(N_MOODS, 0.5), N_MOODS) * 0.35 + np.eye(N_MOODS) * 0.65
        moods[:, 0] = draw(np.tile(rng.dirichlet(np.ones(N_MOODS)), (n, 1)))
        for i in range(1, MAX_LENGTH):  # a chain: each position depends on the one before
            moods[:, i] = draw(transition[moods[:, i - 1]])
        return moods
    stay_by_run = np.array([0.92, 0.82, 0.6, 0.35])
    moods[:, 0] = draw(habit_moods)
    run = np.ones(n, dtype="int64")
    before = np.full(n, -1)  # the mood before the current run
    for i in range(1, MAX_LENGTH):
        current = moods[:, i - 1]
        switch = rng.random(n) >= stay_by_run[np.minimum(run, 4) - 1]
        back = switch & (before >= 0) & (rng.random(n) < 0.6)
        fresh = draw(habit_moods)
        fresh = np.where(fresh == current, (fresh + 1 + rng.integers(0, N_MOODS - 1, n)) % N_MOODS, fresh)
        nxt = np.where(back, before, np.where(switch, fresh, current))
        before = np.where(nxt != current, current, before)
        run = np.where(nxt == current, run + 1, 1)
        moods[:, i] = nxt
    return moods


def _no_overlap(start: np.ndarray, duration: np.ndarray, pause: float = 35.0) -> np.ndarray:
    """Starts moved later where needed so that no session begins before the previous one ended plus
    `pause` minutes (one person plays one track at a time): s'_i = max(s_i, s'_{i-1} + d_{i-1} + pause),
    solved with a running maximum instead of a loop."""
    order = np.argsort(start, kind="stable")
    s, d = start[order], duration[order]
    shift = np.r_[0.0, np.cumsum(d[:-1] + pause)]
    out = np.empty_like(start)
    out[order] = np.maximum.accumulate(s - shift) + shift
    return out


def synthetic_listener(kind: str, days: int, end: pd.Timestamp, tz: str = "Europe/Stockholm", plays_per_day: float = 40.0, seed: int = 7) -> pd.DataFrame:
    """About `days × plays_per_day` plays of one listener of `kind`, ending before `end` (PLAY_COLUMNS)."""
    if kind not in KINDS:
        raise ValueError(f"unknown listener {kind!r}; choose one of {KINDS}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    habits = _habits(rng)
    dates = pd.date_range(end=(end.tz_convert(tz).normalize() - pd.Timedelta(days=1)).tz_localize(None), periods=days, freq="D")
    weekend = np.asarray(dates.day_of_week >= 5)
    hour = np.tile(habits["hour"].to_numpy(), (days, 1))
    prob = np.tile(habits["prob"].to_numpy(), (days, 1))
    if kind != "markov":
        prob = np.where(_quiet_days(rng, days)[:, None], prob * 0.08, prob)
        hour[days // 2 :, 2] += 2.0  # the evening habit moves two hours later
    happens = (habits["weekend"].to_numpy()[None, :] == weekend[:, None]) & (rng.random(prob.shape) < prob)
    day_ix, habit_ix = np.nonzero(happens)
    start_min = (dates[day_ix] - dates[0]).days.to_numpy() * 1440.0 + hour[day_ix, habit_ix] * 60 + rng.normal(0, 25, len(day_ix))
    mean_length = max(plays_per_day * days / max(len(day_ix), 1), 1.0)
    if kind != "markov":  # a third of the sessions get a follow-up an hour or two after they end
        follow = rng.random(len(day_ix)) < 0.35
        mean_length /= 1.35
        first_len = np.minimum(rng.geometric(1 / mean_length, len(day_ix)), MAX_LENGTH)
        follow_start = start_min[follow] + first_len[follow] * 4.0 + rng.uniform(45, 150, follow.sum())
        start_min = np.r_[start_min, follow_start]
        habit_ix = np.r_[habit_ix, habit_ix[follow]]
        lengths = np.r_[first_len, np.minimum(rng.geometric(1 / mean_length, follow.sum()), MAX_LENGTH)]
    else:
        lengths = np.minimum(rng.geometric(1 / mean_length, len(day_ix)), MAX_LENGTH)
    moods = _session_moods(rng, "routine" if kind == "shuffled" else kind, lengths, np.stack(habits["moods"].to_numpy())[habit_ix])
    if kind == "shuffled":
        start_min = rng.uniform(0, days * 1440.0, len(start_min))

    session = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mood = moods[session, position]
    if kind == "shuffled":
        mood = rng.permutation(mood)
    gap_min = rng.uniform(2.5, 5.5, len(session))
    gap_min[position == 0] = 0.0
    first_play = np.cumsum(lengths) - lengths
    offset = np.cumsum(gap_min) - np.repeat(np.cumsum(gap_min)[first_play], lengths)
    start_min = _no_overlap(start_min, offset[np.cumsum(lengths) - 1])
    local = pd.Timestamp(dates[0]) + pd.to_timedelta(start_min[session] + offset, unit="min")
    played = pd.DatetimeIndex(local).tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC")

    cat = catalog(seed)
    cat = cat[cat["has_features"] & cat["mood"].isin(MOODS)].copy()
    cat["_mood"] = cat["mood"].map({m: i for i, m in enumerate(MOODS)})
    cat = cat.sort_values("_mood", kind="stable").reset_index(drop=True)
    counts = np.bincount(cat["_mood"].to_numpy(), minlength=N_MOODS)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    plays = cat.iloc[first[mood] + (rng.random(len(mood)) * counts[mood]).astype("int64")].reset_index(drop=True)
    plays["played_at"] = played.floor("ms").as_unit("ms")
    plays["tempo_norm"] = tempo_norm(plays["tempo"])
    plays["origin"] = "demo"
    plays = plays.dropna(subset=["played_at"])
    plays = plays[plays["played_at"] < end].drop_duplicates(["track_id", "played_at"])
    return conform(plays.sort_values("played_at", kind="stable"), PLAY_COLUMNS)
