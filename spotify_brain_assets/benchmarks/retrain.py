"""Time `full_retrain` through the Dagster CLI on synthetic listeners, and measure the ML targets.

    python -m spotify_brain_assets.benchmarks.retrain --days 1095 --listeners routine markov shuffled

For each listener (see `listeners.py`: `markov` has nothing beyond hourly habits and a first-order
mood chain, `routine` has quiet spells, follow-up sessions, a moving habit and moods that depend on
more than the last one, `shuffled` has nothing learnable) and each history length, it writes the
listener's plays as one ingestion file in a fresh data root, then runs `dagster job execute -j
full_retrain` twice in a subprocess: a cold run (merging the file, first fit) and a steady run (the
daily refit). It prints the wall time of each run including Dagster's start-up, every step's time
from the run's event log and the run's peak resident memory; then, from the evaluation reports,
the backtest figures the targets are stated in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from .listeners import KINDS, synthetic_listener

REPO = Path(__file__).resolve().parents[2]
STEPS = [
    "plays", "mood_clusters", "history", "history_checks", "mood_dataset", "session_dataset",
    "mood_classifier", "session_classifier", "mood_evaluation", "session_evaluation", "drift_report", "predictions", "prediction_scores",
]
TARGETS = {"full_retrain": 30.0, "mood_dataset": 2.0, "session_dataset": 2.0, "mood_clusters": 5.0}


def run_full_retrain(env: dict[str, str], log: Path) -> tuple[float, float, float, bool]:
    """(wall seconds, CPU seconds, peak RSS in MiB of the run's process, success); the CLI's output
    goes to `log`. On a busy shared machine the CPU time is what the run would take alone."""
    cmd = [sys.executable, "-m", "dagster", "job", "execute", "-m", "spotify_brain_assets", "-j", "full_retrain"]
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode == 0  # ru_maxrss is in KiB on Linux


def step_seconds(home: Path) -> dict[str, float]:
    """Step durations of the newest run in the Dagster instance at `home`."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run.run_id)}


def bench(kind: str, days: int, plays_per_day: float, tz: str, workdir: Path, seed: int) -> tuple[list[dict], dict]:
    end = pd.Timestamp.now(tz="UTC").floor("min")
    root, home = workdir / f"data_{kind}_{days}d", workdir / f"home_{kind}_{days}d"
    for path in (root, home):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    started = time.perf_counter()
    plays = synthetic_listener(kind, days, end, tz, plays_per_day, seed)
    key = end.strftime("%Y%m%d_%H%M%S")
    (root / "ingestions").mkdir()
    plays.to_parquet(root / "ingestions" / f"ingestion_{key}.parquet", index=False)
    print(f"{kind}, {days} days: {len(plays)} synthetic plays written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "SPOTIFY_BRAIN_DATA_DIR": str(root),
        "SPOTIFY_BRAIN_TIMEZONE": tz,
        "SPOTIFY_BRAIN_SOURCE": "demo",
        "SPOTIFY_BRAIN_DEMO_CLOCK": end.isoformat(),
    }
    rows = []
    for label in ("cold", "steady"):
        log = workdir / f"full_retrain_{kind}_{days}d_{label}.log"
        wall, cpu, peak, ok = run_full_retrain(env, log)
        if not ok:
            raise SystemExit(f"full_retrain failed on {kind}, {days} days ({label}):\n{log.read_text()[-3000:]}")
        rows.append({"listener": kind, "days": days, "num_plays": len(plays), "run": label, "full_retrain": wall, "cpu": cpu, "peak_rss_mib": peak, **step_seconds(home)})
    return rows, figures(root, kind, days)


def cap_study(root: Path, kind: str, days: int, caps: list[int], tz: str) -> list[dict]:
    """Both tasks' backtest folds, each recipe trained on all its training rows and on the newest
    `cap` rows only: the fits' CPU seconds and the difference in log loss (capped − all rows) with
    the gate's paired bootstrap interval (sessions resampled for the mood, days for the start).
    The default `max_train_rows` of the recipes is chosen from these figures."""
    from ..ml import mood_features, session_features
    from ..ml.assign import read_centroids
    from ..ml.backtest import BacktestSettings, Scores
    from ..ml.classifiers import TrainSettings, _fit_predict, mood_folds, session_folds
    from ..ml.evaluation import mood_losses, session_losses
    from ..ml.families import Recipe

    bt = BacktestSettings()
    settings = TrainSettings((Recipe("xgboost", "mood"),), bt)
    losses: dict[tuple, list] = defaultdict(list)
    cpu: dict[tuple, float] = defaultdict(float)
    groups: dict[str, list] = defaultdict(list)
    train_rows: dict[str, list] = defaultdict(list)

    def score(task, recipe, train, test, cols, target, time_col, loss_of):
        for cap in [None, *caps]:
            started = time.process_time()
            proba, fitted_classes, _ = _fit_predict(Recipe(recipe.family, recipe.features, max_train_rows=cap), train, test, cols, target, time_col, settings)
            cpu[(task, recipe.name, cap)] += time.process_time() - started
            losses[(task, recipe.name, cap)].append(loss_of(proba, fitted_classes))

    history = pd.read_parquet(root / "history.parquet").sort_values("played_at", kind="stable").reset_index(drop=True)
    window, target = mood_features.DEFAULT_WINDOW, mood_features.TARGET
    ctx = mood_features.contexts(history, window, tz)
    for mf in mood_folds(history, ctx, len(read_centroids(root / "models" / "mood_clusters.json")), bt):
        if len(mf.train) < bt.min_train_rows or len(mf.test) < bt.min_test_rows or mf.train[target].nunique() < 2:
            continue
        classes = np.arange(mf.k)
        groups["mood"].append(mf.test["session_id"].to_numpy())
        train_rows["mood"].append(len(mf.train))

        def mood_loss(proba, fitted_classes, test=mf.test, classes=classes):
            aligned = np.zeros((len(test), len(classes)))
            aligned[:, fitted_classes] = proba
            return mood_losses(test[target].to_numpy(), aligned, classes)["log_loss"]

        for features in ("mood+audio", "mood"):
            cols = mood_features.feature_columns(window, classes, audio=features == "mood+audio")
            score("mood", Recipe("xgboost", features), mf.train, mf.test, cols, target, "played_at", mood_loss)
    rows = pd.read_parquet(root / "processed" / "session_start_train.parquet").sort_values(["origin", "hour_start"], kind="stable").reset_index(drop=True)
    target = session_features.TARGET
    for _, _, _, train, test in session_folds(rows, bt):
        if len(train) < bt.min_train_rows or len(test) < bt.min_test_rows or train[target].nunique() < 2:
            continue
        groups["session"].append(test["origin"].dt.floor("D").to_numpy())
        train_rows["session"].append(len(train))
        for family in ("xgboost", "logistic"):
            score("session", Recipe(family, "session"), train, test, session_features.FEATURE_COLUMNS, target, "origin",
                  lambda proba, fitted_classes, test=test: session_losses(test[target].to_numpy(), proba[:, fitted_classes.index(1)])["log_loss"])
    out = []
    for task in groups:
        scores = Scores(np.concatenate(groups[task]), {})
        weights = scores.resample_weights(bt)
        for (t, name, cap), parts in losses.items():
            if t != task:
                continue
            loss, full = np.concatenate(parts), np.concatenate(losses[(t, name, None)])
            mean, low, high = scores.interval(loss - full, weights, bt.confidence)
            out.append({"listener": kind, "days": days, "task": task, "recipe": name, "train_rows": f"{min(train_rows[task]):,}–{max(train_rows[task]):,}",
                        "cap": cap, "fit_cpu": cpu[(t, name, cap)], "log_loss": float(loss.mean()), "delta": (mean, low, high)})
    return out


def cap_table(rows: list[dict]) -> str:
    lines = ["| listener | days | task | recipe | fold training rows | cap | fits' CPU s | log loss | Δ vs all rows [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = "" if r["cap"] is None else f"{r['delta'][0]:+.4f} [{r['delta'][1]:+.4f}, {r['delta'][2]:+.4f}]"
        lines.append(f"| {r['listener']} | {r['days']} | {r['task']} | {r['recipe']} | {r['train_rows']} | {r['cap'] or 'all'} | {r['fit_cpu']:.1f} | {r['log_loss']:.4f} | {d} |")
    return "\n".join(lines)


def _against(report: dict, rival: str | None, metric: str) -> dict | None:
    """The candidate's difference to `rival` (None: the best baseline) on `metric`, with its interval."""
    return next((a for a in report.get("evidence", []) if a["role"] == "candidate_vs_baseline" and a["metric"] == metric and (a["rival"] == rival if rival else a["best"])), None)


def figures(root: Path, kind: str, days: int) -> dict:
    """The targets' figures, from the newest evaluation reports of a data root."""
    session = json.loads((root / "metrics" / "session_evaluation.json").read_text())
    mood = json.loads((root / "metrics" / "mood_evaluation.json").read_text())
    out = {"listener": kind, "days": days}
    for name, report in (("session", session), ("mood", mood)):
        out[f"{name}_served"] = f"{report['served']['kind']}: {report['served']['name']}"
        out[f"{name}_promoted"] = report["decision"]["promoted"]
    if session["status"] == "trained":
        test = session["candidate"]["test"]
        for metric in ("log_loss", "brier"):
            out[f"session_{metric}_vs_best_prior"] = _against(session, None, metric)
        out["session_pr_auc_ratio"] = test["pr_auc"] / session["baselines"]["hour_of_week"]["pr_auc"]
        out["session_calibration_error"] = test["calibration_error"]
        out["session_candidate"] = session["candidate"]["name"]
    if mood["status"] == "trained":
        out["mood_log_loss_vs_markov_3"] = _against(mood, "markov_3", "log_loss")
        out["mood_candidate"] = mood["candidate"]["name"]
    return out


def _ci(a: dict | None) -> str:
    return "n/a" if a is None else f"{a['difference']:+.4f} [{a['low']:+.4f}, {a['high']:+.4f}] vs {a['rival']}"


def figures_table(rows: list[dict]) -> str:
    lines = [
        "| listener | days | session served | log loss Δ [95% CI] | Brier Δ [95% CI] | PR-AUC / hour-of-week | calibration error | mood served | mood log loss Δ vs Markov-3 [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['listener']} | {r['days']} | {r['session_served']} | {_ci(r.get('session_log_loss_vs_best_prior'))} | {_ci(r.get('session_brier_vs_best_prior'))} "
            f"| {r.get('session_pr_auc_ratio', float('nan')):.3f} | {r.get('session_calibration_error', float('nan')):.4f} | {r['mood_served']} | {_ci(r.get('mood_log_loss_vs_markov_3'))} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[dict]) -> list[str]:
    """The issue's targets, each checked where it applies (the longest routine history for sessions)."""
    out = []
    routine = [r for r in rows if r["listener"] == "routine"]
    if routine:
        r = max(routine, key=lambda r: r["days"])
        ll, brier = r.get("session_log_loss_vs_best_prior"), r.get("session_brier_vs_best_prior")
        out.append(f"session, routine {r['days']} d: beats the best prior with intervals below zero on log loss and Brier: {bool(ll and brier and ll['high'] < 0 and brier['high'] < 0)}")
        out.append(f"session, routine {r['days']} d: PR-AUC >= 1.1 x hour-of-week prior: {r.get('session_pr_auc_ratio', 0) >= 1.1} ({r.get('session_pr_auc_ratio', 0):.3f})")
        out.append(f"session, routine {r['days']} d: calibration error <= 0.03: {r.get('session_calibration_error', 1) <= 0.03} ({r.get('session_calibration_error', 1):.4f})")
        m = r.get("mood_log_loss_vs_markov_3")
        out.append(f"mood, routine {r['days']} d (depends on more than the last mood): log loss below Markov-3: {bool(m and m['high'] < 0)}")
    for r in rows:
        if r["listener"] == "markov":
            out.append(f"mood, markov {r['days']} d (depends on the last mood only): the gate keeps a baseline: {not r['mood_promoted']} ({r['mood_served']})")
        if r["listener"] == "shuffled":
            out.append(f"shuffled {r['days']} d (nothing learnable): nothing promoted: {not r['mood_promoted'] and not r['session_promoted']}")
    return out


def table(rows: list[dict]) -> str:
    cols = ["listener", "days", "num_plays", "run", "full_retrain", "cpu"] + STEPS + ["peak_rss_mib"]
    lines = ["| " + " | ".join(c if c not in TARGETS else f"{c} (≤ {TARGETS[c]:g} s)" for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            value = row.get(c)
            cells.append(f"{value:.2f}" if isinstance(value, float) and c != "peak_rss_mib" else f"{value:.0f}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1095], help="history lengths to benchmark (several: a row each)")
    parser.add_argument("--listeners", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--plays-per-day", type=float, default=40.0)
    parser.add_argument("--timezone", default="Europe/Stockholm")
    parser.add_argument("--seed", type=int, default=7, help="draws each listener (its habits too)")
    parser.add_argument("--workdir", type=Path, help="where the data roots go (default: a temporary folder, removed)")
    parser.add_argument("--train-caps", type=int, nargs="*", default=[], help="also backtest every recipe trained on the newest this many rows only (see cap_study)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spotify_brain_bench_"))
    rows, figs, caps = [], [], []
    try:
        for kind in args.listeners:
            for days in args.days:
                timed, fig = bench(kind, days, args.plays_per_day, args.timezone, workdir, args.seed)
                rows += timed
                figs.append(fig)
                if args.train_caps:
                    caps += cap_study(workdir / f"data_{kind}_{days}d", kind, days, args.train_caps, args.timezone)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"full_retrain through `dagster job execute` on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); wall seconds, the run's CPU seconds, step wall seconds, peak RSS in MiB")
    print(table(rows))
    print("\nBacktest figures of the candidate (Δ = candidate − rival, mean over all test rows; negative is better)")
    print(figures_table(figs))
    if caps:
        print("\nTraining rows capped: the fits' CPU seconds over the folds, and log loss capped − all rows (negative: the cap is better)")
        print(cap_table(caps))
    print("\nTargets")
    print("\n".join(f"- {v}" for v in verdicts(figs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
