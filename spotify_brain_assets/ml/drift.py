"""Drift: the last days of listening against the days before them.

Behaviour (session duration, sessions and tracks per day, start-hour entropy), labels (the
session-start rate the session model predicts, the share of days with a session, each local hour's
start frequency) and the distribution of each audio feature (population stability index). A metric
is flagged when its relative change exceeds the threshold (an hour's start frequency also needs to
move by more than one day's worth), a feature when its PSI exceeds its threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..plays.schema import AUDIO_FEATURES
from .local_time import to_local
from .session_features import sessions_table

PSI_EPS = 1e-4


@dataclass(frozen=True)
class DriftSettings:
    current_days: int = 7
    reference_days: int = 30
    threshold: float = 0.2  # relative change that flags a metric
    psi_threshold: float = 0.2  # PSI above this flags a feature (0.1 slight, 0.2 significant)
    psi_bins: int = 10
    min_plays_for_psi: int = 20

    def __post_init__(self) -> None:
        if self.current_days < 1 or self.reference_days < 1:
            raise ValueError("drift windows must be at least one day long")
        if self.threshold <= 0 or self.psi_threshold <= 0 or self.psi_bins < 2:
            raise ValueError("threshold > 0, psi_threshold > 0 and psi_bins >= 2 are required")


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def entropy_bits(counts: np.ndarray) -> float | None:
    total = counts.sum()
    if total == 0:
        return None
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float | None:
    """Population stability index over the reference's quantile bins."""
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if len(reference) == 0 or len(current) == 0:
        return None
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    ref, cur = np.clip(ref, PSI_EPS, None), np.clip(cur, PSI_EPS, None)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def _window_stats(plays: pd.DataFrame, sessions: pd.DataFrame, end: pd.Timestamp, days: int, tz: ZoneInfo) -> dict:
    """Days are the 24-hour periods counted back from the window's end, so a 7-day window has
    exactly 7 whatever the time of day; hours are the listener's local hours."""
    duration = (sessions["end"] - sessions["start"]).dt.total_seconds() / 60.0
    local_hour = to_local(sessions["start"], tz).dt.hour.to_numpy()
    day = ((end - sessions["start"]) // pd.Timedelta(days=1)).to_numpy(dtype="int64")
    hour_counts = np.bincount(local_hour, minlength=24) if len(local_hour) else np.zeros(24, dtype="int64")
    # distinct (day, local hour) slots with a start: the rate the session model predicts
    slots = pd.DataFrame({"day": day, "hour": local_hour}).drop_duplicates()
    per_hour_days = np.bincount(slots["hour"].to_numpy(dtype="int64"), minlength=24)
    return {
        "session_duration_mean": _num(duration.mean()) if len(duration) else None,
        "session_duration_std": _num(duration.std(ddof=0)) if len(duration) else None,
        "sessions_per_day": len(sessions) / days,
        "tracks_per_day": len(plays) / days,
        "start_hour_entropy": _num(entropy_bits(hour_counts)),
        "session_start_rate": len(slots) / (days * 24),
        "share_of_days_with_session": slots["day"].nunique() / days,
        "_per_hour": per_hour_days / days,
    }


def _change(reference: float | None, current: float | None) -> float | None:
    if reference is None or current is None:
        return None
    if reference == 0:
        return 0.0 if current == 0 else None
    return (current - reference) / abs(reference)


def _metric(name: str, kind: str, reference, current, threshold: float, at: str, min_abs_change: float = 0.0) -> dict:
    change = _change(reference, current)
    appeared = reference == 0 and current not in (None, 0)
    moved = reference is not None and current is not None and abs(current - reference) > min_abs_change
    flagged = moved and (appeared or (change is not None and abs(change) > threshold))
    return {
        "metric": name,
        "kind": kind,
        "reference": _num(reference) if reference is not None else None,
        "current": _num(current) if current is not None else None,
        "change": _num(change),
        "note": "absent in the reference window" if appeared else None,
        "flagged": bool(flagged),
        "flagged_at": at if flagged else None,
    }


def drift_report(history: pd.DataFrame, as_of: pd.Timestamp, tz: ZoneInfo | str, settings: DriftSettings = DriftSettings(), generated_at: str | None = None) -> dict:
    """The current window [as_of − current_days, as_of) against the reference window before it."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    as_of = pd.Timestamp(as_of).tz_convert("UTC")
    at = generated_at or pd.Timestamp.now(tz="UTC").isoformat()
    cur_start = as_of - pd.Timedelta(days=settings.current_days)
    ref_start = cur_start - pd.Timedelta(days=settings.reference_days)
    played = history["played_at"]
    sessions = sessions_table(history)
    windows = {
        "reference": (ref_start, cur_start, settings.reference_days),
        "current": (cur_start, as_of, settings.current_days),
    }
    stats, plays_in = {}, {}
    for name, (start, end, days) in windows.items():
        plays_in[name] = history[(played >= start) & (played < end)]
        in_window = sessions[(sessions["start"] >= start) & (sessions["start"] < end)]
        stats[name] = _window_stats(plays_in[name], in_window, end, days, tz)

    behaviour = ["session_duration_mean", "session_duration_std", "sessions_per_day", "tracks_per_day", "start_hour_entropy"]
    labels = ["session_start_rate", "share_of_days_with_session"]
    metrics = [_metric(m, "behaviour", stats["reference"][m], stats["current"][m], settings.threshold, at) for m in behaviour]
    metrics += [_metric(m, "label", stats["reference"][m], stats["current"][m], settings.threshold, at) for m in labels]
    # an hour's frequency moves in steps of one day out of current_days: a change of a single day
    # is noise, not drift, however large relative to a rare hour
    one_day = 1.0 / settings.current_days + 1e-9
    per_hour = [
        {
            "hour": h,
            **_metric(
                f"start_frequency_hour_{h:02d}",
                "label",
                float(stats["reference"]["_per_hour"][h]),
                float(stats["current"]["_per_hour"][h]),
                settings.threshold,
                at,
                one_day,
            ),
        }
        for h in range(24)
    ]
    features = []
    for f in AUDIO_FEATURES:
        ref, cur = plays_in["reference"][f].to_numpy(dtype="float64"), plays_in["current"][f].to_numpy(dtype="float64")
        enough = len(ref) >= settings.min_plays_for_psi and len(cur) >= settings.min_plays_for_psi
        value = psi(ref, cur, settings.psi_bins) if enough else None
        flagged = value is not None and value > settings.psi_threshold
        features.append(
            {
                "feature": f,
                "psi": _num(value),
                "reference_mean": _num(ref.mean()) if len(ref) else None,
                "current_mean": _num(cur.mean()) if len(cur) else None,
                "note": None if enough else f"fewer than {settings.min_plays_for_psi} plays in a window",
                "flagged": bool(flagged),
                "flagged_at": at if flagged else None,
            }
        )
    flagged = [m["metric"] for m in metrics + per_hour if m["flagged"]] + [f"psi_{f['feature']}" for f in features if f["flagged"]]
    return {
        "generated_at": at,
        "as_of": as_of.isoformat(),
        "timezone": str(tz),
        "windows": {
            name: {"start": start.isoformat(), "end": end.isoformat(), "days": days, "plays": len(plays_in[name])}
            for name, (start, end, days) in windows.items()
        },
        "settings": asdict(settings),
        "metrics": metrics,
        "per_hour_start_frequency": per_hour,
        "feature_psi": features,
        "flagged": flagged,
        "drift_detected": bool(flagged),
    }
