"""The models in plain words: one sentence per model state, never a log line, robust to missing keys."""

import re

import pytest

from spotify_brain_assets.dashboard.plain import details, explain, explain_live, prediction_note

pytestmark = pytest.mark.fast


def evaluation(promoted, candidate, baselines, metric="log_loss", higher=False, in_use_value=None, best=None):
    best = best or min(baselines, key=lambda b: baselines[b][metric] * (-1 if higher else 1))
    return {
        "status": "trained",
        "primary_metric": metric,
        "candidate": {"test": candidate},
        "baselines": baselines,
        "window": {"test": {"start": "2026-11-10T17:13:53+00:00", "end": "2026-11-30T06:30:22+00:00", "rows": 320}},
        "decision": {
            "promoted": promoted, "metric": metric, "higher_is_better": higher, "candidate": candidate[metric],
            "best_baseline": best, "best_baseline_value": baselines[best][metric], "model_in_use": in_use_value,
            "summary": "not promoted, the model in use stays: the candidate's log_loss 0.3590 is worse than …",
        },
    }


def plain(sentence):
    """Never a log line: no raw metric or baseline names, no paths, no asset names."""
    assert not re.search(r"[a-z]+_[a-z]+|/|\.pkl|\.json|promoted|candidate", sentence), sentence
    return sentence


MARKOV_WINS = evaluation(
    False,
    {"accuracy": 0.79, "log_loss": 0.36},
    {"majority_class": {"accuracy": 0.3, "log_loss": 1.3}, "markov": {"accuracy": 0.76, "log_loss": 0.35}},
)


def test_a_model_that_lost_to_the_rule_says_the_rule_makes_the_guesses():
    out = explain("mood", MARKOV_WINS)
    assert out["serving"] == "rule" and out["title"] == "Next-mood model"
    assert plain(out["summary"]) == (
        "The next-mood model guesses the mood of your next song, but it did not beat the simple rule "
        "“the mood that usually follows the last one” (surprise at what actually happened: 0.36 vs 0.35, lower is better), "
        "so that rule makes the guesses for now."
    )  # fewer mistakes (21% vs 24%) would contradict the verdict: the deciding figure is shown instead


def test_a_promoted_model_says_by_how_much_it_beats_the_rule_in_mistakes():
    won = evaluation(True, {"accuracy": 0.79, "log_loss": 0.30}, {"same_as_previous": {"accuracy": 0.76, "log_loss": 0.4}})
    out = explain("mood", won, {"version": "abc"})
    assert out["serving"] == "model"
    assert plain(out["summary"]) == (
        "The next-mood model guesses the mood of your next song, and makes the guesses: it beats the best simple rule, "
        "“the same mood as the last song” (mistakes in the next mood: 21% vs 24%)."
    )


def test_a_session_model_in_use_that_a_new_one_did_not_improve_on_keeps_serving():
    beaten_by_old = evaluation(
        False, {"pr_auc": 0.47}, {"hour_of_week_prior": {"pr_auc": 0.39}}, metric="pr_auc", higher=True, in_use_value=0.5
    )
    out = explain("session", beaten_by_old, {"version": "abc", "trained_at": "2026-11-29T00:15:00+00:00"})
    assert out["serving"] == "model"
    assert plain(out["summary"]) == (
        "The session-start model guesses in which hours you will start listening. The model already in use keeps "
        "making the guesses: the newly trained one was not better than it."
    )
    lost = evaluation(False, {"pr_auc": 0.30}, {"hour_of_week_prior": {"pr_auc": 0.39}}, metric="pr_auc", higher=True)
    assert "did not beat the simple rule “how often you started listening at that hour on that weekday” (score for picking " \
           "the hours you start listening: 0.30 vs 0.39 out of 1)" in plain(explain("session", lost, {"version": "abc"})["summary"])


@pytest.mark.parametrize(
    "evaluation_, in_use, serving, says, who",
    [
        (None, None, None, "It has not been trained yet: that happens in the daily retrain.", "nothing"),
        ({"status": "skipped", "skipped_reason": "too few rows: 12 < 50"}, None, "baseline:markov",
         "There is not enough listening yet to train it; until then the simple rule “the mood that usually follows the last one” makes the guesses.", "rule"),
        ({"status": "trained"}, {"version": "abc"}, "model", "and makes the guesses.", "model"),  # an evaluation without a decision
        ({"status": "trained", "decision": {"promoted": False}}, None, None, "did not beat the simple rules, so a rule makes the guesses for now.", "rule"),
        ({"status": "trained", "decision": {"promoted": True, "best_baseline": "markov_3"}, "primary_metric": "log_loss"}, None, None,
         "it beats the best simple rule, “the mood that usually follows the last three”.", "model"),  # no figures to show
    ],
)
def test_missing_keys_make_the_sentence_shorter_never_false(evaluation_, in_use, serving, says, who):
    out = explain("mood", evaluation_, in_use, serving)
    assert plain(out["summary"]).endswith(says) and out["serving"] == who


def test_details_name_every_metric_with_its_direction():
    d = details(MARKOV_WINS)
    assert [m["label"] for m in d["metrics"]] == ["correct guesses (higher is better)", "log loss (lower is better)"]
    assert [r["name"] for r in d["rows"]] == ["this model", "rule: always your most played mood", "rule: the mood that usually follows the last one"]
    assert d["rows"][2]["values"] == {"accuracy": 0.76, "log_loss": 0.35} and d["test_rows"] == 320
    assert details(None) is None and details({"status": "skipped"}) is None


def test_the_next_mood_note_says_who_guessed_or_why_there_is_no_guess():
    assert plain(prediction_note({"available": True, "source": "baseline:markov"})) == (
        "Guessed by the simple rule “the mood that usually follows the last one”: no model has beaten it yet.")
    assert prediction_note({"available": True, "source": "model"}) is None
    assert plain(prediction_note({"available": False, "reason": "the newest play has no mood cluster yet (run full_retrain)"})).startswith("No guess right now")
    assert prediction_note({"available": False, "reason": "history is empty"}) == "Nothing played yet, so there is no mood to continue."


def test_live_quality_says_how_the_guesses_did_against_what_happened():
    live = {
        "window": "30d",
        "next_mood": {"metric": "log_loss", "model": 0.52, "best_baseline": "markov", "baseline": 0.61, "n_scored": 340, "beats_baseline": True},
        "session_start": {"metric": "log_loss", "model": 0.2, "best_baseline": None, "baseline": None, "n_scored": 4, "beats_baseline": None},
    }
    out = explain_live(live)
    assert plain(out["next_mood"]["summary"]) == (
        "Over the last 30 days, the next-mood guesses shown here did better than the simple rule “the mood that usually "
        "follows the last one” on 340 songs (surprise at what actually happened: 0.52 vs 0.61, lower is better).")
    assert plain(out["session_start"]["summary"]).endswith("4 session-start guesses were checked against what happened: too few yet to compare with the simple rules.")
    assert out["next_mood"]["n_scored"] == 340 and out["window"] == "30d"  # the figures stay beside the sentence
    assert explain_live({"window": "30d", "next_mood": None, "session_start": None}) == {"window": "30d", "next_mood": None, "session_start": None}
