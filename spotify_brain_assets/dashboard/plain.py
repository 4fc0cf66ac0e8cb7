"""The models in plain words: one sentence a listener understands per model, from its evaluation.

Evaluations are written for engineers (metric names, gate reasons); the dashboard says what each
model guesses, whether it beats the simple rule it is compared with and by how much, or that the
rule makes the guesses because the model did not beat it. Any key may be missing (no model yet,
an older or newer evaluation format): the sentence then says less, never something false.
"""

from __future__ import annotations

from typing import Any

#: the baselines as a listener would put them; unknown names fall back to their words
RULES = {
    "majority_class": "always your most played mood",
    "same_as_previous": "the same mood as the last song",
    "persistence": "the same mood as the last song",
    "markov": "the mood that usually follows the last one",
    "markov_1": "the mood that usually follows the last one",
    "markov_2": "the mood that usually follows the last two",
    "markov_3": "the mood that usually follows the last three",
    "always_negative": "never expecting a session",
    "hour_of_day_prior": "how often you started listening at that hour",
    "hour_of_week_prior": "how often you started listening at that hour on that weekday",
    "hour_weekend_prior": "how often you started listening at that hour on weekdays or weekends",
}
#: metric → (name for people, higher is better, shown as a percentage)
METRICS = {
    "accuracy": ("correct guesses", True, True),
    "mistakes": ("mistakes", False, True),
    "log_loss": ("log loss", False, False),
    "brier": ("Brier score", False, False),
    "pr_auc": ("PR-AUC", True, False),
    "roc_auc": ("ROC-AUC", True, False),
    "macro_f1": ("macro F1", True, False),
    "f1": ("F1", True, False),
    "calibration_error": ("calibration error", False, False),
}
MODELS = {
    "mood": ("Next-mood model", "guesses the mood of your next song"),
    "session": ("Session-start model", "guesses in which hours you will start listening"),
}
#: the headline figure per metric, model first; mistakes = 1 − accuracy
FIGURES = {
    "mistakes": "mistakes in the next mood: {mine} vs {theirs}",
    "pr_auc": "score for picking the hours you start listening: {mine} vs {theirs} out of 1",
    "brier": "average error of its hourly chances: {mine} vs {theirs}, lower is better",
    "log_loss": "surprise at what actually happened: {mine} vs {theirs}, lower is better",
}


def rule_name(name: str | None) -> str | None:
    if not name:
        return None
    name = name.split(":", 1)[-1]  # predictions say "baseline:markov"
    return RULES.get(name, name.replace("_", " "))


def metric_label(metric: str) -> str:
    """"log loss (lower is better)"."""
    label, higher, _ = METRICS.get(metric, (metric.replace("_", " "), None, False))
    return label if higher is None else f"{label} ({'higher' if higher else 'lower'} is better)"


def _value(scores: dict | None, metric: str) -> float | None:
    scores = scores or {}
    if metric == "mistakes":
        accuracy = scores.get("accuracy")
        return None if not isinstance(accuracy, (int, float)) else 1.0 - accuracy
    value = scores.get(metric)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _shown(value: float, metric: str) -> str:
    percent = METRICS.get(metric, ("", None, False))[2]
    return f"{value * 100:.0f}%" if percent else f"{value:.2f}"


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _figure(kind: str, evaluation: dict, versus: str | None, promoted: bool | None) -> str | None:
    """"mistakes in the next mood: 21% vs 24%": the model's figure, then the rule's (`versus`).

    Mistakes say most to a listener; they are shown where they agree with the gate's verdict, which
    is decided on the primary metric, else that metric is."""
    primary = evaluation.get("primary_metric") or _get(evaluation, "decision", "metric")
    for metric in (["mistakes"] if kind == "mood" else []) + ([primary] if primary else []):
        mine = _value(_get(evaluation, "candidate", "test"), metric)
        theirs = _value(_get(evaluation, "baselines", versus), metric) if versus else None
        if mine is None or theirs is None:
            continue
        wins = mine > theirs if METRICS.get(metric, ("", True, False))[1] else mine < theirs
        if metric != primary and promoted is not None and wins != promoted:
            continue
        label, higher, _ = METRICS.get(metric, (metric.replace("_", " "), True, False))
        template = FIGURES.get(metric, label + ": {mine} vs {theirs}, " + ("higher" if higher else "lower") + " is better")
        return template.format(mine=_shown(mine, metric), theirs=_shown(theirs, metric))
    return None


def explain(kind: str, evaluation: dict | None, in_use: dict | None = None, serving: str | None = None) -> dict:
    """{title, summary, serving} for a model: `summary` is the listener's sentence; `serving` says who
    makes the guesses now ("model", "rule" or "nothing"). `in_use` is the model in use, if any;
    `serving` the predictions' source ("model", "baseline:<name>") when known."""
    title, what = MODELS[kind]
    evaluation = evaluation or {}
    decision = evaluation.get("decision") or {}
    has_model = bool(in_use) or (serving == "model")
    best = decision.get("best_baseline") or (serving.split(":", 1)[1] if serving and serving.startswith("baseline:") else None)
    rule = rule_name(best)

    if evaluation.get("status") != "trained":
        if has_model:
            return _out(title, f"The {title.lower()} {what}, and makes the guesses.", "model")
        if evaluation:  # evaluated, but training was skipped
            tail = f"; until then the simple rule “{rule}” makes the guesses." if rule else "."
            return _out(title, f"The {title.lower()} {what}. There is not enough listening yet to train it{tail}", "rule" if rule else "nothing")
        return _out(title, f"The {title.lower()} {what}. It has not been trained yet: that happens in the daily retrain.", "nothing")

    figure = _figure(kind, evaluation, best, decision.get("promoted"))
    said = f" ({figure})" if figure else ""
    if decision.get("promoted") is True:
        versus = f"it beats the best simple rule, “{rule}”" if rule else "it passed the comparison with the simple rules"
        return _out(title, f"The {title.lower()} {what}, and makes the guesses: {versus}{said}.", "model")
    if decision.get("promoted") is False:
        lost_to_rule = _lost_to_rule(decision)
        if has_model:
            reason = f"did not beat the simple rule “{rule}”{said}" if lost_to_rule and rule else "was not better than it"
            return _out(title, f"The {title.lower()} {what}. The model already in use keeps making the guesses: the newly trained one {reason}.", "model")
        if rule:
            return _out(title, f"The {title.lower()} {what}, but it did not beat the simple rule “{rule}”{said}, so that rule makes the guesses for now.", "rule")
        return _out(title, f"The {title.lower()} {what}, but it did not beat the simple rules, so a rule makes the guesses for now.", "rule")
    if has_model:
        return _out(title, f"The {title.lower()} {what}, and makes the guesses.", "model")
    return _out(title, f"The {title.lower()} {what}.", "rule" if rule else "nothing")


def _lost_to_rule(decision: dict) -> bool:
    """Whether the candidate lost to the best baseline (rather than only to the model in use)."""
    mine, theirs = decision.get("candidate"), decision.get("best_baseline_value")
    if not isinstance(mine, (int, float)) or not isinstance(theirs, (int, float)):
        return True
    higher = decision.get("higher_is_better")
    return mine < theirs if higher else mine > theirs if higher is False else True


def _out(title: str, summary: str, serving: str) -> dict:
    return {"title": title, "summary": summary, "serving": serving}


def details(evaluation: dict | None) -> dict | None:
    """The technical figures behind the page's details toggle: every metric of the model and of
    each baseline on the held-out window, named, with its direction."""
    if not evaluation or evaluation.get("status") != "trained":
        return None
    candidate = _get(evaluation, "candidate", "test") or {}
    baselines = evaluation.get("baselines") or {}
    metrics = [m for m in candidate if m in METRICS and _value(candidate, m) is not None]
    rows = [{"name": "this model", "key": "model", "values": {m: _value(candidate, m) for m in metrics}}]
    rows += [{"name": f"rule: {rule_name(k)}", "key": k, "values": {m: _value(v, m) for m in metrics}} for k, v in baselines.items()]
    test = _get(evaluation, "window", "test") or {}
    return {
        "primary_metric": evaluation.get("primary_metric"),
        "metrics": [{"key": m, "label": metric_label(m)} for m in metrics],
        "rows": rows,
        "test_rows": test.get("rows") if isinstance(test.get("rows"), int) else None,
        "test_start": test.get("start"),
        "test_end": test.get("end"),
    }


def prediction_note(next_mood: dict | None) -> str | None:
    """The next-mood card's note: who guessed, or why there is no guess (never a log line)."""
    nxt = next_mood or {}
    source = nxt.get("source") or ""
    if not nxt.get("available"):
        if nxt.get("reason") == "history is empty":
            return "Nothing played yet, so there is no mood to continue."
        return "No guess right now: it needs the last few songs of a listening session, each with a mood."
    if source.startswith("baseline:"):
        return f"Guessed by the simple rule “{rule_name(source)}”: no model has beaten it yet."
    return None


#: the online evaluation's tasks: (what the guesses are about, what one scored guess is)
LIVE_TASKS = {"next_mood": ("next-mood", "songs"), "session_start": ("session-start", "hours")}


def explain_live(live: dict) -> dict:
    """`live_quality` with a listener's `summary` per scored task: how the guesses shown on the page
    did against what happened, beside the best simple rule scored the same way."""
    window = str(live.get("window") or "")
    span = f"Over the last {window[:-1]} days" if window.endswith("d") and window[:-1].isdigit() else "Lately"
    out = dict(live)
    for task, (what, unit) in LIVE_TASKS.items():
        block = live.get(task)
        if not isinstance(block, dict):
            continue
        n, rule = block.get("n_scored") or 0, rule_name(block.get("best_baseline"))
        mine, theirs = _value(block, "model"), _value(block, "baseline")
        figure = f" ({FIGURES['log_loss'].format(mine=f'{mine:.2f}', theirs=f'{theirs:.2f}')})" if mine is not None and theirs is not None else ""
        if block.get("beats_baseline") is None or not rule:
            summary = f"{span}, {n} {what} guesses were checked against what happened: too few yet to compare with the simple rules."
        else:
            verdict = "did better than" if block["beats_baseline"] else "did no better than"
            summary = f"{span}, the {what} guesses shown here {verdict} the simple rule “{rule}” on {n} {unit}{figure}."
        out[task] = {**block, "summary": summary}
    return out
