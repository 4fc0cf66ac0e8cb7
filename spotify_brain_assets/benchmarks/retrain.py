"""Time `full_retrain` through the Dagster CLI on a synthetic history of a given size.

    python -m spotify_brain_assets.benchmarks.retrain --days 1095 --plays-per-day 40

For each size it writes a synthetic listener's plays (the demo catalog's moods, habitual session
hours in the listener's timezone, moods that mostly persist within a session) as one ingestion file
in a fresh data root, then runs `dagster job execute -j full_retrain` twice in a subprocess: a
cold run (merging the file, first fit) and a steady run (the daily refit, nothing new to merge).
It prints the wall time of each run including Dagster's start-up, the time of every step from the
run's event log, and the peak resident memory of the run's process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..plays.schema import PLAY_COLUMNS, conform, tempo_norm
from ..sources.demo import HABITS, MOOD_NAMES, catalog

REPO = Path(__file__).resolve().parents[2]
STEPS = [
    "plays", "mood_clusters", "history", "history_checks", "mood_dataset", "session_dataset",
    "mood_classifier", "session_classifier", "mood_evaluation", "session_evaluation", "drift_report", "predictions", "prediction_scores",
]
TARGETS = {"full_retrain": 30.0, "mood_dataset": 2.0, "session_dataset": 2.0, "mood_clusters": 5.0}
STAY = 0.85


def synthetic_plays(days: int, plays_per_day: float, end: pd.Timestamp, tz: str, seed: int = 7) -> pd.DataFrame:
    """About `days × plays_per_day` plays ending before `end`, every play with audio features."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=(end.tz_convert(tz).normalize() - pd.Timedelta(days=1)).tz_localize(None), periods=days, freq="D")
    weekend = np.asarray(dates.day_of_week >= 5)
    habit_weekend = np.array([h[0] for h in HABITS])
    habit_hour = np.array([h[1] for h in HABITS])
    habit_prob = np.array([h[2] for h in HABITS])
    habit_moods = np.array([h[3] for h in HABITS])
    # which habitual sessions happen on which day
    happens = (habit_weekend[None, :] == weekend[:, None]) & (rng.random((days, len(HABITS))) < habit_prob[None, :])
    day_ix, habit_ix = np.nonzero(happens)
    sessions_per_day = len(day_ix) / days
    lengths = np.maximum(1, rng.geometric(1 / max(plays_per_day / sessions_per_day, 1.0), len(day_ix)))
    start_local = dates[day_ix] + pd.to_timedelta(habit_hour[habit_ix] * 60 + rng.normal(0, 25, len(day_ix)), unit="min")
    start = start_local.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC")

    n = int(lengths.sum())
    session = np.repeat(np.arange(len(lengths)), lengths)
    first = np.r_[0, np.cumsum(lengths)[:-1]]
    gap_s = rng.integers(150, 330, n).astype("float64")
    gap_s[first] = 0.0
    offset = np.cumsum(gap_s) - np.repeat(np.cumsum(gap_s)[first], lengths)
    played = start[session] + pd.to_timedelta(offset, unit="s")

    # moods persist: a play switches (to a draw from the habit's weights) with probability 1 − STAY
    switch = rng.random(n) >= STAY
    switch[first] = True
    segment = np.cumsum(switch) - 1
    weights = habit_moods[habit_ix[session[switch]]]
    draws = (rng.random(len(weights))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    mood = np.minimum(draws, len(MOOD_NAMES) - 1)[segment]

    cat = catalog(seed)
    cat = cat[cat["has_features"]].sort_values("mood", kind="stable").reset_index(drop=True)
    counts = np.bincount(cat["mood"].to_numpy(), minlength=len(MOOD_NAMES))
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    rows = offsets[mood] + (rng.random(n) * counts[mood]).astype("int64")
    plays = cat.iloc[rows].reset_index(drop=True)
    plays["played_at"] = played.as_unit("ms")
    plays["tempo_norm"] = tempo_norm(plays["tempo"])
    plays["origin"] = "demo"
    plays = plays.dropna(subset=["played_at"])
    plays = plays[plays["played_at"] < end].drop_duplicates(["track_id", "played_at"])
    return conform(plays.sort_values("played_at"), PLAY_COLUMNS)


def run_full_retrain(env: dict[str, str], log: Path) -> tuple[float, float, bool]:
    """(wall seconds, peak RSS in MiB of the run's process, success); the CLI's output goes to `log`."""
    cmd = [sys.executable, "-m", "dagster", "job", "execute", "-m", "spotify_brain_assets", "-j", "full_retrain"]
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode == 0  # ru_maxrss is in KiB on Linux


def step_seconds(home: Path) -> dict[str, float]:
    """Step durations of the newest run in the Dagster instance at `home`."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run.run_id)}


def bench(days: int, plays_per_day: float, tz: str, workdir: Path) -> list[dict]:
    end = pd.Timestamp.now(tz="UTC").floor("min")
    root, home = workdir / f"data_{days}d", workdir / f"home_{days}d"
    for path in (root, home):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    started = time.perf_counter()
    plays = synthetic_plays(days, plays_per_day, end, tz)
    key = end.strftime("%Y%m%d_%H%M%S")
    (root / "ingestions").mkdir()
    plays.to_parquet(root / "ingestions" / f"ingestion_{key}.parquet", index=False)
    print(f"{days} days: {len(plays)} synthetic plays written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
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
        log = workdir / f"full_retrain_{days}d_{label}.log"
        wall, peak, ok = run_full_retrain(env, log)
        if not ok:
            raise SystemExit(f"full_retrain failed on {days} days ({label}):\n{log.read_text()[-3000:]}")
        rows.append({"days": days, "num_plays": len(plays), "run": label, "full_retrain": wall, "peak_rss_mib": peak, **step_seconds(home)})
    return rows


def table(rows: list[dict]) -> str:
    cols = ["days", "num_plays", "run", "full_retrain"] + STEPS + ["peak_rss_mib"]
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
    parser.add_argument("--days", type=int, nargs="+", default=[365], help="history lengths to benchmark (several: a row each)")
    parser.add_argument("--plays-per-day", type=float, default=40.0)
    parser.add_argument("--timezone", default="Europe/Stockholm")
    parser.add_argument("--workdir", type=Path, help="where the data roots go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spotify_brain_bench_"))
    try:
        rows = [row for days in args.days for row in bench(days, args.plays_per_day, args.timezone, workdir)]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"full_retrain through `dagster job execute` on {os.cpu_count()} cores; seconds, peak RSS in MiB")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
