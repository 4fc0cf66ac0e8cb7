"""The keys the predecessor's website reads, with the predecessor's meaning, from our reports: pure.

Users of the script-based predecessor publish dashboard_data.json to a React page
(keremburakyilmaz/personal-website, route /spotify-brain) that reads the predecessor's key names; a
key it cannot find shows as 0.0%. These keys sit beside ours and are computed from the same
evaluation and predictions, never invented: a figure our reports do not hold is null.

"val" figures are held-out figures: the candidate's scores on the rolling-origin backtest's test
windows (or, in evaluations from before the backtest, on the held-out time window). "train"
figures exist only where the evaluation scored the model on its own training rows (the backtest
does not), else null.

The evaluation and predictions JSON changed shape once (one held-out window → rolling-origin
backtest; `source: "baseline:markov"` → `served: {kind, name, version}`): the accessors below read
both, and are the only place that knows their key names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the served answer is too uncertain to show a direction when its distribution is this close to
#: uniform (normalized entropy, 0 = certain, 1 = uniform) or its top probability is below this
ABSTAIN_ENTROPY = 0.9
ABSTAIN_TOP = 0.3
#: predictability bands of the normalized entropy: below the first "high", below the second "medium"
PREDICTABILITY = ((0.5, "high"), (0.8, "medium"))
BUCKETS = ("morning", "afternoon", "evening", "night")
#: our baselines that are the predecessor's, under its names
PREDECESSOR_NAMES = {"majority": "majority", "majority_class": "majority", "persistence": "persistence", "same_as_previous": "persistence"}
GLOBAL_BASELINES = {"majority", "majority_class"}  # no recent context at all
MOOD_KEYS = ("train_accuracy", "val_accuracy", "train_f1_macro", "val_f1_macro", "train_roc_auc", "val_roc_auc",
             "majority_val_accuracy", "persistence_val_accuracy", "model_beats_baseline")
SESSION_KEYS = ("train_roc_auc", "val_roc_auc", "val_pr_auc", "val_f1", "calibration_error", "baseline_neg_pr_auc",
                "baseline_hist_pr_auc", "model_beats_neg", "model_beats_hist")


# --- accessors: the only code that knows the reports' key names ------------------------------------


def _trained(ev: dict | None) -> bool:
    return bool(ev) and ev.get("status") == "trained"


def _candidate(ev: dict | None, part: str) -> dict:
    """The candidate's scores: "test" (held-out/backtest) or "train" (absent from backtest reports)."""
    return ((ev or {}).get("candidate") or {}).get(part) or {} if _trained(ev) else {}


def _baseline(ev: dict | None, *names: str) -> dict:
    """The first of `names` (new name first, then the pre-backtest one) the report scored."""
    scored = (ev or {}).get("baselines") or {} if _trained(ev) else {}
    return next((scored[n] for n in names if isinstance(scored.get(n), dict)), {})


def served(answer: dict) -> tuple[str | None, str | None, str | None]:
    """(kind "model"/"baseline", name, version) of what made `answer`, in either predictions shape."""
    if isinstance(answer.get("served"), dict):
        s = answer["served"]
        return s.get("kind"), s.get("name"), s.get("version")
    source = answer.get("source")
    if not source:
        return None, None, None
    kind, _, name = source.partition(":")
    return ("baseline", name, None) if kind == "baseline" else ("model", None, None)


def _served_scores(ev: dict | None, kind: str | None, name: str | None) -> dict:
    """The held-out scores of what serves: the serving baseline's, the model in use's when the
    gate kept it, else the candidate's (the promoted model)."""
    if kind == "baseline":
        return _baseline(ev, name or "")
    if not _trained(ev):
        return {}
    serving = ((ev.get("decision") or {}).get("serving") or {}).get("name")
    in_use = (ev.get("model_in_use") or {}).get("test")
    if serving == "model in use" and isinstance(in_use, dict):
        return in_use
    return _candidate(ev, "test")


# --- next prediction -------------------------------------------------------------------------------


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(float(value)) else round(float(value), 6)


def normalized_entropy(probabilities: list[float]) -> float | None:
    """Shannon entropy over log(K): 0 when one mood is certain, 1 when all K are equally likely."""
    p = np.asarray(probabilities, dtype="float64")
    if len(p) < 2 or p.sum() <= 0:
        return None
    p = p / p.sum()
    nz = p[p > 0]
    return _num(min(1.0, float(-(nz * np.log(nz)).sum() / np.log(len(p)))))


def prediction_source(kind: str | None, name: str | None) -> str | None:
    """`model`, or `<name>_baseline` with the predecessor's names where ours are its baselines."""
    if kind == "model":
        return "model"
    if kind == "baseline" and name:
        return f"{PREDECESSOR_NAMES.get(name, name)}_baseline"
    return None


def context_level(kind: str | None, name: str | None, moods: list) -> str | None:
    """How much recent context the answer used, on the predecessor's scale (seq3/seq2/last/global)."""
    if kind is None:
        return None
    if kind == "baseline" and name in GLOBAL_BASELINES:
        return "global"
    return {0: "global", 1: "last", 2: "seq2"}.get(len(moods), "seq3")


def prediction_keys(answer: dict | None, ev: dict | None, in_use_version: str | None = None) -> dict:
    """The predecessor's next_prediction keys for the served next-mood answer (nulls when none);
    `in_use_version` names the model for predictions that do not carry its version."""
    answer = answer or {}
    kind, name, version = served(answer)
    dist = [
        {"mood_cluster_id": int(p["cluster_id"]), "mood_label": p.get("label") or str(p["cluster_id"]), "probability": float(p["probability"])}
        for p in answer.get("probabilities") or []
    ] if answer.get("available") else []
    out = {
        "mood_distribution": dist,
        "prediction_source": prediction_source(kind, name) if answer.get("available") else None,
        "confidence_kind": None,
        "model_version": None,
        "validation_reliability": None,
        "validation_log_loss": None,
        "predictability": None,
        "normalized_entropy": None,
        "abstained": None,
        "switch_probability": None,
        "context_level": None,
        "recent_window_size": None,
    }
    if not dist:
        return out
    # our probabilities are the model's own (no calibration step is fitted): the backtest reports
    # their calibration error beside them
    out["confidence_kind"] = "uncalibrated_model_probability" if kind == "model" else "estimated_baseline_probability"
    out["model_version"] = (version or in_use_version) if kind == "model" else None
    scores = _served_scores(ev, kind, name)
    out["validation_reliability"] = _num(scores.get("accuracy"))
    out["validation_log_loss"] = _num(scores.get("log_loss"))
    probs = [d["probability"] for d in dist]
    entropy = normalized_entropy(probs)
    out["normalized_entropy"] = entropy
    if entropy is not None:
        out["predictability"] = next((label for bound, label in PREDICTABILITY if entropy < bound), "low")
        out["abstained"] = bool(entropy > ABSTAIN_ENTROPY or max(probs) < ABSTAIN_TOP)
    else:  # a single mood: nothing to be uncertain about
        out["predictability"], out["abstained"] = "high", False
    moods = list(answer.get("context_moods") or [])
    if moods:
        stay = next((d["probability"] for d in dist if d["mood_cluster_id"] == int(moods[-1])), 0.0)
        out["switch_probability"] = _num(1.0 - stay)
    out["context_level"] = context_level(kind, name, moods)
    out["recent_window_size"] = 0 if out["context_level"] == "global" else len(moods)
    return out


def with_images(tracks: list[dict], history: pd.DataFrame) -> list[dict]:
    """Tracks with `image_url`: the album image history holds for that track, else null
    (ReccoBeats gives none, and Spotify's batch track lookup is gone)."""
    images = history.drop_duplicates("track_id", keep="last").set_index("track_id")["image_url"] if len(history) else pd.Series(dtype=object)
    return [{**t, "image_url": t.get("image_url") or (images.get(t.get("track_id")) or None)} for t in tracks]


# --- metrics.latest --------------------------------------------------------------------------------


def _gt(a, b) -> bool | None:
    return None if a is None or b is None else bool(a > b)


def mood_model(ev: dict | None) -> dict:
    """The predecessor's mood_model figures; model_beats_baseline keeps its meaning (held-out
    accuracy above both majority and persistence), the gate's own verdict is under `baselines`."""
    test, train = _candidate(ev, "test"), _candidate(ev, "train")
    majority = _baseline(ev, "majority", "majority_class").get("accuracy")
    persistence = _baseline(ev, "persistence", "same_as_previous").get("accuracy")
    val = test.get("accuracy")
    beats = [_gt(val, b) for b in (majority, persistence) if b is not None]
    return {
        "train_accuracy": train.get("accuracy"),
        "val_accuracy": val,
        "train_f1_macro": train.get("macro_f1"),
        "val_f1_macro": test.get("macro_f1"),
        "train_roc_auc": train.get("roc_auc"),
        "val_roc_auc": test.get("roc_auc"),
        "majority_val_accuracy": majority,
        "persistence_val_accuracy": persistence,
        "model_beats_baseline": all(beats) if beats and val is not None else None,
    }


def _per_hour(test: dict) -> dict:
    """Per time of day (the pre-backtest report's breakdown); null figures where it has none."""
    rows = test.get("by_time_of_day") or {}
    return {
        b: {
            "pr_auc": (rows.get(b) or {}).get("pr_auc"),
            "roc_auc": (rows.get(b) or {}).get("roc_auc"),
            "n_samples": (rows.get(b) or {}).get("rows"),
            "n_positive": (rows.get(b) or {}).get("positives"),
        }
        for b in BUCKETS
    }


def session_model(ev: dict | None) -> dict:
    """The predecessor's session_model figures. Always-negative's PR-AUC is the held-out positive
    rate (every score tied), so it is known even where the report does not score that baseline."""
    test, train = _candidate(ev, "test"), _candidate(ev, "train")
    neg = _baseline(ev, "always_negative").get("pr_auc")
    if neg is None and test.get("rows"):
        neg = _num(test.get("positives", 0) / test["rows"])
    hist = _baseline(ev, "hour_of_day", "hour_of_day_prior").get("pr_auc")
    val = test.get("pr_auc")
    return {
        "train_roc_auc": train.get("roc_auc"),
        "val_roc_auc": test.get("roc_auc"),
        "val_pr_auc": val,
        "val_f1": test.get("f1"),
        "calibration_error": test.get("calibration_error"),
        "baseline_neg_pr_auc": neg,
        "baseline_hist_pr_auc": hist,
        "model_beats_neg": _gt(val, neg),
        "model_beats_hist": _gt(val, hist),
        "per_hour_metrics": _per_hour(test),
    }


def metrics_latest(latest: dict | None, history: pd.DataFrame, mood_ev: dict | None, session_ev: dict | None) -> dict:
    """metrics.latest with the predecessor's figures merged into our run entry (our keys kept)."""
    latest = dict(latest or {})
    latest.setdefault("run_at", None)
    latest.setdefault("num_tracks", int(len(history)))
    latest.setdefault("num_sessions", int(history["session_id"].nunique()) if len(history) else 0)
    latest["mood_model"] = {**(latest.get("mood_model") or {}), **mood_model(mood_ev)}
    latest["session_model"] = {**(latest.get("session_model") or {}), **session_model(session_ev)}
    return latest


def add_website_keys(
    data: dict, predictions: dict | None, mood_ev: dict | None, session_ev: dict | None, history: pd.DataFrame, mood_in_use: dict | None = None
) -> dict:
    """`data` (the built dashboard) with the predecessor website's keys added beside ours."""
    nxt = data["next_prediction"]
    nxt.update(prediction_keys((predictions or {}).get("next_mood"), mood_ev, (mood_in_use or {}).get("version")))
    nxt["recommended_tracks"] = with_images(nxt["recommended_tracks"], history)
    data["metrics"]["latest"] = metrics_latest(data["metrics"]["latest"], history, mood_ev, session_ev)
    return data
