"""Soak test: weeks of 30-minute ingestion slots against the local fake server, with faults and kills.

    python -m spotify_brain_assets.benchmarks.soak --days 30          # the full soak
    python -m spotify_brain_assets.benchmarks.soak --days 3 --seed 2  # a few minutes

A synthetic listener plays through the simulated days (habitual sessions, skips, plays that appear
late, now and then a binge of 55-110 plays while the machine is off, so Spotify's 50-play window
drops plays). Every slot runs the real `update` job with the real Spotify resource against the fake
server (spotify_brain_assets/fakes/server.py), its clock frozen to the slot: most in this process
through the CLI's own code path, a sample as real `spotify-brain update` subprocesses, half of which
are SIGKILLed at a random moment (while starting up, inside a step, or as the run ends). A random
fault schedule adds 429s with and without Retry-After, 5xx, answers slower than the client's
timeout, access tokens expiring mid-run, malformed JSON, a spent quota, refresh-token rotation,
hours-long ReccoBeats and Spotify outages, machine-off spans, a full disk during a subprocess run,
and the daily `full_retrain` at 00:15.

The disk is real: where `unshare` allows it, the script re-runs itself in a private mount namespace
and keeps the data root and DAGSTER_HOME on a tmpfs of their own, filled up with a ballast file so
that a run's writes fail with ENOSPC wherever they happen to be (our files or Dagster's storage);
elsewhere a subprocess gets RLIMIT_FSIZE with SIGXFSZ ignored (EFBIG). One DAGSTER_HOME, with the
repository's dagster.yaml, serves every run, so dead runs and their pool slots are met for real.

At the end it checks that every play the API showed to a run that stored its ingestion is in
history, pending features or the unavailable record exactly once; that the plays that never were
visible to such a run are inside a span of metrics/ingestion_gaps.json ("lost to the window,
reported": Spotify's limit, not ours); that nothing stored is a duplicate or a play never listed;
that `spotify-brain doctor` passes and every file under the data root loads; that no run is left
in progress and no pool slot claimed; that no credential is in any file or console log. It prints
the figures and exits 1 when anything is lost, duplicated, stuck, unreadable or leaked.
Not part of the test suite: it takes minutes to an hour.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
INNER_ENV = "SPOTIFY_BRAIN_SOAK_DISK"  # set when the script runs inside its own mount namespace
BALLAST = ".soak-ballast"  # fills a disk for one slot
TIMEZONE = "Europe/Stockholm"
TRACKS = 400
MOODS = np.array([  # valence, energy, danceability, acousticness, instrumentalness, tempo
    [0.80, 0.80, 0.75, 0.10, 0.02, 124], [0.25, 0.30, 0.35, 0.75, 0.20, 82], [0.50, 0.90, 0.55, 0.05, 0.60, 140],
    [0.60, 0.45, 0.65, 0.40, 0.05, 100], [0.15, 0.70, 0.45, 0.15, 0.30, 150], [0.70, 0.25, 0.50, 0.85, 0.70, 70],
])
#: (local hour, probability per day, mean plays): the listener's habits
HABITS = [(7.5, 0.8, 12), (12.2, 0.6, 10), (16.0, 0.6, 15), (20.0, 0.9, 28), (23.0, 0.4, 10)]
SECRET_MARKERS = (b"fake-access-", b"fake-refresh-", b"fake-client-secret")  # every credential the fake has
GRACE_S = 125  # dead runs younger than this are left alone by the reaper (runtime/runs.py): wait it out
LIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


# -- the listener ---------------------------------------------------------------------------------
def listener(rng: np.random.Generator, start: pd.Timestamp, days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(plays, catalog, binges): every play made, listed or not (`listed`: over 30 s)."""
    from ..fakes.server import random_track_id

    catalog = pd.DataFrame({
        "track_id": [random_track_id(rng) for _ in range(TRACKS)],
        "mood": rng.integers(0, len(MOODS), TRACKS),
        "duration_ms": rng.integers(140_000, 320_000, TRACKS),
    })
    features = MOODS[catalog["mood"]] + rng.normal(0, [0.06, 0.06, 0.06, 0.06, 0.04, 8], (TRACKS, 6))
    catalog[["valence", "energy", "danceability", "acousticness", "instrumentalness", "tempo"]] = np.clip(features, [0, 0, 0, 0, 0, 50], [1, 1, 1, 1, 1, 220])
    kind = rng.random(TRACKS)
    catalog["analysed_at"] = pd.NaT  # when ReccoBeats knows the track: from the start, later, or never
    catalog["analysed_at"] = pd.to_datetime(catalog["analysed_at"], utc=True)
    catalog.loc[kind >= 0.03, "analysed_at"] = start - pd.Timedelta(days=365)
    late = (kind >= 0.03) & (kind < 0.07)
    catalog.loc[late, "analysed_at"] = start + pd.to_timedelta(rng.uniform(0.5, max(days - 0.5, 0.6), late.sum()), unit="D")

    local_days = pd.date_range((start.tz_convert(TIMEZONE)).normalize().tz_localize(None), periods=days, freq="D")
    habit = np.array(HABITS)
    happens = rng.random((days, len(HABITS))) < habit[:, 1]
    day_ix, habit_ix = np.nonzero(happens)
    lengths = rng.geometric(1 / habit[habit_ix, 2])
    starts = local_days[day_ix] + pd.to_timedelta(habit[habit_ix, 0] * 60 + rng.normal(0, 20, len(day_ix)), unit="min")
    binge_days = np.union1d(np.nonzero(rng.random(days) < 0.3)[0], [1] if days > 1 else []).astype(int)
    binge_len = rng.integers(55, 111, len(binge_days))
    binge_starts = local_days[binge_days] + pd.to_timedelta(rng.uniform(9, 17, len(binge_days)) * 60, unit="min")
    sessions = pd.DataFrame({
        "start": np.concatenate([starts, binge_starts]), "plays": np.concatenate([lengths, binge_len]),
        "binge": np.r_[np.zeros(len(lengths), bool), np.ones(len(binge_len), bool)], "day": np.r_[day_ix, binge_days],
    })
    sessions["start"] = sessions["start"].dt.tz_localize(TIMEZONE, ambiguous="NaT", nonexistent="shift_forward").dt.tz_convert("UTC")
    sessions = sessions.dropna()
    sessions["end"] = sessions["start"] + pd.to_timedelta(sessions["plays"] * 250, unit="s")
    # one thing at a time: habits give way to binges, then a session overlapping an earlier one is dropped
    habit_s, binge_s = sessions[~sessions["binge"]], sessions[sessions["binge"]]
    clash = (habit_s["start"].to_numpy()[:, None] < binge_s["end"].to_numpy()[None, :]) & (
        habit_s["end"].to_numpy()[:, None] > binge_s["start"].to_numpy()[None, :])
    sessions = pd.concat([habit_s[~clash.any(axis=1)], binge_s]).sort_values("start").reset_index(drop=True)
    sessions = sessions[~(sessions["start"] < sessions["end"].shift().cummax())].reset_index(drop=True)

    n = int(sessions["plays"].sum())
    session = np.repeat(np.arange(len(sessions)), sessions["plays"])
    track = rng.integers(0, TRACKS, n)
    skipped = rng.random(n) < 0.07
    played_ms = np.where(skipped, rng.integers(4_000, 30_000, n), catalog["duration_ms"].to_numpy()[track])
    elapsed = pd.Series(played_ms + rng.integers(300, 6_000, n)).groupby(session).cumsum().to_numpy()
    played_at = (sessions["start"].iloc[session].reset_index(drop=True) + pd.to_timedelta(elapsed, unit="ms")).dt.floor("ms")
    late = rng.random(n) < 0.05
    visible_at = played_at + pd.to_timedelta(np.where(late, rng.integers(5, 90, n), 0), unit="min")
    plays = pd.DataFrame({
        "track_id": catalog["track_id"].to_numpy()[track], "played_at": played_at, "visible_at": visible_at,
        "ms_played": played_ms, "session": session,
    })
    plays = plays[plays["played_at"] < start + pd.Timedelta(days=days)].reset_index(drop=True)
    plays["listed"] = plays["ms_played"] > 30_000
    binges = sessions[sessions["binge"]].assign(end=lambda s: s["start"] + pd.to_timedelta(s["plays"] * 240, unit="s"))
    return plays, catalog, binges


# -- the schedule of things going wrong -----------------------------------------------------------
def spans(rng: np.random.Generator, start: pd.Timestamp, days: int, per_day: float, hours: tuple[float, float]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    count = rng.poisson(per_day * days)
    begin = start + pd.to_timedelta(rng.uniform(0.2, days, count), unit="D")
    return sorted(zip(begin, begin + pd.to_timedelta(rng.uniform(*hours, count), unit="h")))


def inside(moment: pd.Timestamp, periods: list[tuple[pd.Timestamp, pd.Timestamp]]) -> bool:
    return any(a <= moment < b for a, b in periods)


#: one-shot faults of an in-process slot: (probability, kind, endpoint, fault factory, times)
def _one_shot_faults():
    from ..fakes import Fault

    return [
        (0.05, "429 with Retry-After", "recently_played", lambda r: Fault.rate_limited(retry_after=str(r.integers(0, 2))), 1),
        (0.04, "429 with Retry-After", "audio_features", lambda r: Fault.rate_limited(retry_after="1"), 1),
        (0.02, "429 with Retry-After", "token", lambda r: Fault.rate_limited(retry_after="0"), 1),
        (0.03, "429 without Retry-After", "recently_played", lambda r: Fault.rate_limited(retry_after=None), 1),
        (0.03, "429 without Retry-After", "audio_features", lambda r: Fault.rate_limited(retry_after=None), 2),
        (0.04, "5xx", "recently_played", lambda r: Fault.server_error(int(r.choice([500, 502, 503]))), 2),
        (0.04, "5xx", "audio_features", lambda r: Fault.server_error(int(r.choice([500, 502, 503]))), 1),
        (0.02, "5xx", "token", lambda r: Fault.server_error(503), 1),
        (0.01, "5xx past the retries", "recently_played", lambda r: Fault.server_error(502), 8),
        (0.03, "slow answer past the timeout", "recently_played", lambda r: Fault.slow(1.2), 1),
        (0.02, "slow answer past the timeout", "audio_features", lambda r: Fault.slow(1.2), 1),
        (0.03, "access token expired mid-run", "recently_played", lambda r: Fault.token_expired(), 1),
        (0.01, "malformed JSON", "recently_played", lambda r: Fault.malformed_json(), 1),
        (0.005, "quota exceeded", "recently_played", lambda r: Fault.rate_limited(retry_after=None, quota=True), 1),
    ]


#: faults a subprocess slot can afford with the resource's production timeouts (20 s reads, 1 s backoff)
CLI_FAULTS = {"429 with Retry-After", "429 without Retry-After", "5xx", "access token expired mid-run", "quota exceeded"}


@dataclass
class Figures:
    slots: Counter = field(default_factory=Counter)
    runs: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    disk_full: list = field(default_factory=list)
    retrains: Counter = field(default_factory=Counter)
    recovered: int = 0
    failed_streak: int = 0
    longest_failed_streak: int = 0
    shown: list = field(default_factory=list)  # windows seen by runs that stored their ingestion
    seconds: dict = field(default_factory=dict)  # wall seconds of each kind of slot


# -- the disk -------------------------------------------------------------------------------------
def private_disk_available() -> bool:
    """Whether this process may mount a tmpfs in a mount namespace of its own."""
    if os.environ.get(INNER_ENV):
        return True
    try:
        return subprocess.run(_unshare(["true"]), capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _unshare(argv: list[str]) -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "--propagation", "private", "--", *argv]


class Disk:
    """The data root and DAGSTER_HOME, each on a tmpfs of its own when possible, and a way to fill them.

    Two filesystems, as a data root on a full disk meets ENOSPC in our writes, while a full disk under
    both fails Dagster's storage first (it writes an event every few milliseconds).
    """

    def __init__(self, workdir: Path, size_mb: int):
        self.root = workdir / "disk"
        self.data, self.home = self.root / "data", self.root / "home"
        self.tmpfs = bool(os.environ.get(INNER_ENV))
        for folder in (self.data, self.home):
            folder.mkdir(parents=True, exist_ok=True)
            if self.tmpfs:
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "soak-disk", str(folder)], check=True)

    @staticmethod
    def free(folder: Path) -> int:
        stat = os.statvfs(folder)
        return stat.f_bavail * stat.f_frsize

    def fill(self, folder: Path, leave: int) -> None:
        """Leave only `leave` bytes free on `folder`'s tmpfs (a ballast file takes the rest).

        In steps, as a run may be writing meanwhile: a step that no longer fits means the disk is full.
        """
        size = 0
        with open(folder / BALLAST, "wb") as handle:
            while (room := self.free(folder) - leave) > 4096:
                step = min(room, 64 << 20)
                try:
                    os.posix_fallocate(handle.fileno(), size, step)
                except OSError:
                    return
                size += step

    def empty(self) -> None:
        for folder in (self.data, self.home):
            (folder / BALLAST).unlink(missing_ok=True)

    @staticmethod
    def write_limit(leave: int):
        """Without a disk of our own: a process whose writes past `leave` bytes of a file fail (EFBIG)."""
        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (leave, leave))

        return limit

    def keep(self, to: Path) -> None:
        if self.tmpfs:
            shutil.copytree(self.root, to, symlinks=True, dirs_exist_ok=True)


# -- the soak -------------------------------------------------------------------------------------
class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        import dagster as dg

        from ..fakes import FakeServer
        from ..runtime.runs import prepare_instance

        self.args, self.rng = args, np.random.default_rng(args.seed)
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.disk = Disk(workdir, args.disk_mb)
        self.home, self.data = self.disk.home, self.disk.data
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")
        self.figures = Figures()
        self.start = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=args.days)
        self.end = self.start + pd.Timedelta(days=args.days)
        self.authorized_at = (self.start - pd.Timedelta(days=20)).isoformat()

        self.plays, self.catalog, binges = listener(self.rng, self.start, args.days)
        self.fake = FakeServer().start()
        self._load_fake()
        # hours without any run (machine off); a binge is often listened to away from the machine
        # (always the one of the second day, so that even a short soak meets Spotify's window)
        away = binges[(self.rng.random(len(binges)) < 0.6) | (binges["day"] == 1)]
        self.off = spans(self.rng, self.start, args.days, 0.12, (2, 8)) + sorted(
            zip(away["start"] - pd.Timedelta(minutes=20), away["end"] + pd.to_timedelta(self.rng.uniform(-30, 60, len(away)), unit="min"))
        )
        # random spans, plus one of each early on, so that a soak of 3 days meets them all
        def once(day: int, hour: float, hours: float) -> list:
            begin = self.start + pd.Timedelta(days=day, hours=hour)
            return [(begin, begin + pd.Timedelta(hours=hours))] if args.days > day else []

        self.recco_down = once(1, 5, 10) + spans(self.rng, self.start, args.days, 0.2, (2, 20))
        self.spotify_down = once(2, 8, 3.5) + spans(self.rng, self.start, args.days, 0.12, (1, 5))
        self.rotating = once(0, 6, 30) + spans(self.rng, self.start, args.days, 0.3, (12, 72))
        self.features_pending = self.catalog[self.catalog["analysed_at"] > self.start - pd.Timedelta(days=1)].copy()

        os.environ.update(self.env_common())  # the in-process resource reads the same variables
        self.instance = prepare_instance(self.home)
        self.dg = dg
        self.last_kill = 0.0
        self.cli_seconds: list[float] = []  # `spotify-brain update` from start to exit
        self.run_seconds: list[float] = []  # an update run from its start to its end

    def _load_fake(self) -> None:
        from ..fakes import make_track

        used = self.catalog
        tracks = [make_track(t, f"Soak Song {i}", [f"Soak Artist {i % 37}"], f"Soak Album {i % 61}", int(d))
                  for i, (t, d) in enumerate(zip(used["track_id"], used["duration_ms"]))]
        self.fake.add_plays(self.plays[["track_id", "played_at", "visible_at", "ms_played"]], tracks)
        known = used[used["analysed_at"] <= self.start]
        for row in known.itertuples():  # one call per track of the catalog (the fake's API)
            self.fake.set_features(row.track_id, valence=row.valence, energy=row.energy, danceability=row.danceability,
                                   acousticness=row.acousticness, instrumentalness=row.instrumentalness, tempo=row.tempo)

    def env_common(self) -> dict[str, str]:
        return {
            **self.fake.env(),
            "DAGSTER_HOME": str(self.home),
            "SPOTIFY_BRAIN_DATA_DIR": str(self.data),
            "SPOTIFY_BRAIN_TIMEZONE": TIMEZONE,
            "SPOTIFY_BRAIN_SOURCE": "spotify",
            "SPOTIFY_BRAIN_ENV_FILE": os.devnull,
            "SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT": self.authorized_at,
        }

    def resources(self, clock: pd.Timestamp) -> dict:
        """The real Spotify resource, pointed at the fake, clock frozen, with short waits (in-process)."""
        import dagster as dg

        from ..defs.reporting.dashboard import WebsiteDeployment
        from ..resources import DataStore
        from ..sources.spotify_resource import SpotifyResource

        source = SpotifyResource(
            client_id=dg.EnvVar("SPOTIFY_CLIENT_ID"), client_secret=dg.EnvVar("SPOTIFY_CLIENT_SECRET"),
            refresh_token=dg.EnvVar("SPOTIFY_REFRESH_TOKEN"), clock=clock.isoformat(),
            connect_timeout_s=2.0, read_timeout_s=0.6, max_attempts=4, backoff_s=0.02, backoff_max_s=0.1,
            retry_after_floor_s=0.02, max_total_wait_s=3.0,
        )
        # never a website a developer's .env names: the soak's dashboard stays in its own export/
        return {"store": DataStore(root=str(self.data), timezone=TIMEZONE), "listening_source": source, "website": WebsiteDeployment()}

    # -- one slot ---------------------------------------------------------------------------------
    def prepare(self, moment: pd.Timestamp, cli: bool) -> None:
        """The fake as it is at `moment`: tracks analysed by now, token rotation, outages, faults."""
        due = self.features_pending[self.features_pending["analysed_at"] <= moment]
        for row in due.itertuples():  # a few tracks over the whole soak
            self.fake.set_features(row.track_id, valence=row.valence, energy=row.energy, danceability=row.danceability,
                                   acousticness=row.acousticness, instrumentalness=row.instrumentalness, tempo=row.tempo)
        self.features_pending = self.features_pending.drop(due.index)
        self.fake.clear_faults()
        self.fake.set_clock(moment)
        rotating = inside(moment, self.rotating)
        if rotating and not self.fake.rotate_refresh_tokens:
            self.figures.faults["refresh token rotation switched on"] += 1
        self.fake.rotate_refresh_tokens = rotating
        from ..fakes import Fault

        if inside(moment, self.recco_down):
            self.fake.inject("audio_features", Fault.server_error(503), times=None)
            self.figures.faults["ReccoBeats down (slots)"] += 1
        if inside(moment, self.spotify_down):
            self.fake.inject("recently_played", Fault.server_error(503), times=None)
            self.figures.faults["Spotify down (slots)"] += 1
        for p, kind, endpoint, make, times in _one_shot_faults():
            if cli and kind not in CLI_FAULTS:
                continue
            if self.rng.random() < p:
                self.fake.inject(endpoint, make(self.rng), times=times)
                self.figures.faults[kind] += 1

    def slot(self, moment: pd.Timestamp, mode: str) -> None:
        from ..defs.automation import slot_key

        key = slot_key(moment)
        window = self.fake.visible_plays()[["track_id", "played_at"]]
        created_after = pd.Timestamp.now(tz="UTC").floor("ms").to_pydatetime()
        began = time.monotonic()
        if mode == "in-process":
            self.in_process("update", moment, key)
        else:
            self.command(["update"], moment, key, kill=mode == "cli-kill", full_disk=mode == "cli-disk-full")
        self.figures.seconds.setdefault(mode, []).append(time.monotonic() - began)
        runs = self.instance.get_run_records(self.dg.RunsFilter(job_name="update", tags={"dagster/partition": key}, created_after=created_after))
        if not runs:
            self.figures.runs[f"update {mode}: no run created"] += 1
            return
        ok = any(r.dagster_run.status == self.dg.DagsterRunStatus.SUCCESS for r in runs)
        self.run_seconds += [r.end_time - r.start_time for r in runs if ok and r.start_time and r.end_time]
        if any(self.stored_ingestion(r.dagster_run.run_id) for r in runs):
            self.figures.shown.append(window)
        self.figures.runs[f"update {mode}: " + ("succeeded" if ok else "failed or killed")] += 1
        for r in runs:
            if r.dagster_run.status == self.dg.DagsterRunStatus.FAILURE:
                self.figures.failures[self.failure_reason(r.dagster_run.run_id)] += 1
        if ok and self.figures.failed_streak:
            self.figures.recovered += 1
        self.figures.failed_streak = 0 if ok else self.figures.failed_streak + 1
        self.figures.longest_failed_streak = max(self.figures.longest_failed_streak, self.figures.failed_streak)

    def stored_ingestion(self, run_id: str) -> bool:
        """Whether the run wrote its ingestion (the `ingestions` materialization, not a skipped one)."""
        events = self.instance.get_records_for_run(run_id, of_type=self.dg.DagsterEventType.ASSET_MATERIALIZATION).records
        for record in events:
            mat = record.event_log_entry.dagster_event.step_materialization_data.materialization
            if mat.asset_key.to_user_string() == "ingestions" and "skipped" not in mat.metadata:
                return True
        return False

    def failure_reason(self, run_id: str) -> str:
        text = " ".join(
            (r.event_log_entry.user_message or "") + " " + repr(getattr(r.event_log_entry.dagster_event, "event_specific_data", ""))
            for r in self.instance.get_records_for_run(run_id, of_type={self.dg.DagsterEventType.STEP_FAILURE, self.dg.DagsterEventType.RUN_FAILURE}).records
        )
        for pattern, reason in [
            (r"No space left|File too large|database or disk is full|disk I/O error", "disk full"),
            (r"process running it .* is gone", "killed (marked failed by the next run)"),
            (r"not valid JSON", "malformed JSON"),
            (r"answered 5\d\d|Service unavailable|Bad gateway|Server error", "Spotify 5xx past the retries"),
            (r"[Tt]imed? ?out", "timeout past the retries"),
            (r"refused the refresh token|invalid_grant", "refresh token refused"),
        ]:
            if re.search(pattern, text):
                return reason
        return "other: " + text.strip()[:200]

    def in_process(self, job: str, moment: pd.Timestamp, key: str | None = None) -> bool:
        from .. import cli

        with open(self.logs / "in_process.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            print(f"--- {job} at {moment}", flush=True)
            if job == "update":
                return cli.run_update(self.instance, key, wait_minutes=2, resources=self.resources(moment))
            return cli.run_full_retrain(self.instance, wait_minutes=2, resources=self.resources(moment))

    def command(self, command: list[str], moment: pd.Timestamp, key: str | None, kill: bool = False, full_disk: bool = False) -> int | None:
        """`spotify-brain <command>` at `moment`; SIGKILLed at a random moment when `kill`; with the
        disk filling up before it starts or once its run has begun when `full_disk`."""
        exe = Path(sys.executable).with_name("spotify-brain")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}
        env.update(self.env_common(), SPOTIFY_BRAIN_CLOCK=moment.isoformat())
        log = open(self.logs / f"cli_{moment:%Y%m%d_%H%M%S}_{command[0]}.log", "w")
        # free space somewhere between nothing and what a run needs (its new files beside the old ones),
        # on the data root's disk or on both; from the start or as one of the steps that write most begins
        biggest = max((p.stat().st_size for p in self.data.rglob("*") if p.is_file()), default=0)
        leave = int(np.exp(self.rng.uniform(np.log(2_048), np.log(max(2 * biggest, 65_536)))))
        disks = [self.data] if self.rng.random() < 0.6 else [self.data, self.home]
        fill_step = None if self.rng.random() < 0.3 else str(self.rng.choice(["ingestions", "plays", "history", "dashboard"]))
        limit = Disk.write_limit(leave) if full_disk and not self.disk.tmpfs else None
        started = time.monotonic()
        with log:
            try:
                if full_disk and self.disk.tmpfs and fill_step is None:
                    for disk in disks:
                        self.disk.fill(disk, leave)
                proc = subprocess.Popen([str(exe), *command], env=env, cwd=self.workdir, stdout=log, stderr=log, preexec_fn=limit)
                if full_disk and self.disk.tmpfs and fill_step is not None:
                    self.wait_for_step(proc, key, started, fill_step)
                    for disk in disks:
                        self.disk.fill(disk, leave)
                if kill:
                    self.kill_at_random(proc, key, started)
                code = proc.wait(timeout=900)
            finally:
                self.disk.empty()
        if command == ["update"] and not kill and not full_disk:
            self.cli_seconds.append(time.monotonic() - started)
        if full_disk:
            text = Path(log.name).read_text(errors="replace")
            error = re.search(r"[^\n]{0,80}(No space left on device|File too large)[^\n]{0,80}", text) or re.search(
                r"[^\n]{0,80}(database or disk is full|disk I/O error)[^\n]{0,80}", text)
            step = re.search(r'Execution of step "(\w+)" failed', text)
            self.figures.disk_full.append({
                "full": ("data root" if len(disks) == 1 else "data root and DAGSTER_HOME") if self.disk.tmpfs else "RLIMIT_FSIZE",
                "filled": f"as step {fill_step} began" if fill_step and self.disk.tmpfs else "before the run", "free_bytes": leave, "exit": code, "error": error.group(0).strip() if error else "none: the run fit",
                "where": f"step {step.group(1)}" if step else "Dagster's storage" if error else "",
            })
        return code

    def kill_at_random(self, proc: subprocess.Popen, key: str | None, started: float) -> None:
        """SIGKILL `proc` while it starts up (a quarter of kills) or at a random moment once its run began."""
        run = float(np.median(self.run_seconds[-50:])) if self.run_seconds else 4.0
        startup = max(float(np.median(self.cli_seconds[-20:])) - run, 1.0) if self.cli_seconds else 6.0
        if self.rng.random() < 0.25:
            time.sleep(self.rng.uniform(0.05, 1.0) * startup)
        else:
            self.wait_for_run(proc, key, started)
            time.sleep(self.rng.uniform(0, 1.1) * run)
        if proc.poll() is not None:
            self.figures.kills["missed (the process had already exited)"] += 1
            return
        phase = self._phase(key, started)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.last_kill = time.monotonic()
        self.figures.kills[phase] += 1

    def wait_for_run(self, proc: subprocess.Popen, key: str | None, started: float) -> None:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not self._run_started(key, started):
            time.sleep(0.05)

    def wait_for_step(self, proc: subprocess.Popen, key: str | None, started: float, step: str) -> None:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            runs = self._runs_since(key, started)
            starts = self.instance.get_records_for_run(runs[0].dagster_run.run_id, of_type=self.dg.DagsterEventType.STEP_START).records if runs else []
            if any(r.event_log_entry.step_key == step for r in starts):
                return
            time.sleep(0.02)

    def _runs_since(self, key: str | None, started: float):
        since = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=time.monotonic() - started + 1)).floor("ms")
        tags = {"dagster/partition": key} if key else {}
        return self.instance.get_run_records(self.dg.RunsFilter(tags=tags, created_after=since.to_pydatetime()))

    def _run_started(self, key: str | None, started: float) -> bool:
        return any(r.dagster_run.status.value == "STARTED" for r in self._runs_since(key, started))

    def _phase(self, key: str | None, started: float) -> str:
        runs = self._runs_since(key, started)
        if not runs:
            return "while starting up (no run yet)"
        run = runs[0].dagster_run
        if run.status.value != "STARTED":
            return f"as the run ended ({run.status.value})"
        steps = self.instance.get_records_for_run(run.run_id, of_type={self.dg.DagsterEventType.STEP_START}).records
        return f"inside the run, step {steps[-1].event_log_entry.step_key}" if steps else "inside the run, before its first step"

    def retrain(self, moment: pd.Timestamp, cli: bool) -> None:
        self.prepare(moment, cli=True)  # the retrain itself asks nothing of the services
        self.fake.clear_faults()
        ok = self.command(["full-retrain"], moment, None) == 0 if cli else self.in_process("full_retrain", moment)
        self.figures.retrains[("CLI " if cli else "in-process ") + ("succeeded" if ok else "FAILED")] += 1

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> int:
        began = time.monotonic()
        slots = pd.date_range(self.start, self.end, freq=pd.Timedelta(days=1) / self.args.slots_per_day, inclusive="left")
        for n, slot in enumerate(slots):
            moment = slot + pd.Timedelta(seconds=7)
            if slot.hour == 0 and slot.minute == 0 and n:
                retrain_at = slot + pd.Timedelta(minutes=15)
                if not inside(retrain_at, self.off):
                    self.retrain(retrain_at, cli=self.rng.random() < 0.2)
            if inside(moment, self.off):
                self.figures.slots["skipped: machine off"] += 1
                continue
            draw = self.rng.random()
            share = self.args.cli_share
            mode = "in-process" if draw >= share else "cli-disk-full" if draw < share * 0.3 else "cli-kill" if draw < share * 0.75 else "cli"
            self.prepare(moment, cli=mode != "in-process")
            self.slot(moment, mode)
            self.figures.slots["run"] += 1
            if mode == "cli-kill" and self.rng.random() < 0.4:  # cron (or the user) tries the slot again at once
                self.prepare(moment + pd.Timedelta(minutes=3), cli=True)
                self.slot(moment + pd.Timedelta(minutes=3), "cli")
                self.figures.slots["run again after a kill"] += 1
            if slot.hour == 23 and slot.minute == 30:
                self.day_line(slot, began)
        # settle: one clean slot after the last, once any dead run is old enough to be reaped
        time.sleep(max(0.0, GRACE_S - (time.monotonic() - self.last_kill)) if self.last_kill else 0)
        self.prepare(self.end + pd.Timedelta(minutes=1), cli=True)
        self.fake.clear_faults()
        self.slot(self.end + pd.Timedelta(minutes=1), "cli")
        self.figures.slots["final clean slot"] += 1
        return self.verify(time.monotonic() - began)

    def day_line(self, slot: pd.Timestamp, began: float) -> None:
        f = self.figures
        print(f"day {slot:%Y-%m-%d} done; so far {f.slots['run']} slots run, {sum(f.kills.values())} kills, "
              f"{sum(f.failures.values())} failed runs, {time.monotonic() - began:.0f} s", flush=True)

    # -- the checks -------------------------------------------------------------------------------
    def verify(self, wall: float) -> int:
        from ..plays.schema import KEY
        from ..runtime.runs import slot_holders
        from ..storage.files import read_json
        from ..storage.paths import DataPaths

        paths = DataPaths.at(self.data)
        end_clock = self.end + pd.Timedelta(minutes=1)
        listed = self.plays[self.plays["listed"] & (self.plays["visible_at"] <= end_clock)]
        history = pd.read_parquet(paths.history)
        pending = pd.read_parquet(paths.pending_features) if paths.pending_features.exists() else history.iloc[:0]
        unavailable = pd.read_parquet(paths.unavailable_features) if paths.unavailable_features.exists() else history.iloc[:0]
        gaps = read_json(paths.ingestion_gaps, [])
        shown = pd.concat(self.figures.shown, ignore_index=True).drop_duplicates(KEY) if self.figures.shown else listed.iloc[:0][KEY]

        def keys(df: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"track_id": df["track_id"].astype(str).reset_index(drop=True),
                                 "played_at": pd.to_datetime(df["played_at"], utc=True).dt.as_unit("ms").reset_index(drop=True)})

        stored = pd.concat([keys(history).assign(where="history"), keys(pending).assign(where="pending"),
                            keys(unavailable).assign(where="unavailable")], ignore_index=True)
        truth = keys(listed)
        marks = truth.merge(stored.drop_duplicates(KEY), on=KEY, how="left")
        marks["shown"] = marks.merge(keys(shown).drop_duplicates(), on=KEY, how="left", indicator=True)["_merge"].eq("both").to_numpy()
        in_gap = np.zeros(len(marks), bool)
        for g in gaps:  # a handful of spans
            in_gap |= ((marks["played_at"] > pd.Timestamp(g["from"])) & (marks["played_at"] < pd.Timestamp(g["to"]))).to_numpy()
        missing = marks["where"].isna().to_numpy()
        lost_reported = missing & in_gap & ~marks["shown"].to_numpy()
        lost = missing & ~lost_reported
        duplicates = int(stored.duplicated(KEY).sum())
        phantom = int(stored.merge(truth, on=KEY, how="left", indicator=True)["_merge"].eq("left_only").sum())

        statuses = Counter(r.status.value for r in self.instance.get_runs())
        stuck = sum(statuses[s] for s in LIVE)
        holders = slot_holders(self.instance)
        doctor = subprocess.run([str(Path(sys.executable).with_name("spotify-brain")), "doctor"], cwd=self.workdir, capture_output=True, text=True,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "DAGSTER_"))}, **self.env_common()})
        (self.logs / "doctor.log").write_text(doctor.stdout + doctor.stderr)
        unreadable = unreadable_files(self.data)
        leaks = secrets_in(self.disk.root, skip={paths.root / ".secrets" / "spotify_refresh_token.json"}) + secrets_in(self.logs)
        temporaries = [p for p in self.data.rglob("*.tmp")]
        # runs never overlap here: a slot "already done" by a run in progress was done by a dead run
        done_by_dead = [m for log in self.logs.glob("cli_*.log") for m in re.findall(r"already done by run \S+ \((?!SUCCESS)\w+\)", log.read_text(errors="replace"))]

        f = self.figures
        figures = {
            "simulated days": self.args.days,
            "slots": dict(f.slots),
            "update runs": dict(f.runs),
            "full_retrain runs": dict(f.retrains),
            "faults injected": dict(f.faults),
            "kills (SIGKILL)": dict(f.kills),
            "failed runs by reason": dict(f.failures),
            "disk-full runs": f.disk_full,
            "slots that failed, then a later slot succeeded": f.recovered,
            "longest run of failing slots": f.longest_failed_streak,
            "plays made": len(self.plays),
            "plays listed by the API (over 30 s)": int(len(listed)),
            "plays shown to a run that stored its ingestion": int(marks["shown"].sum()),
            "plays in history": int((marks["where"] == "history").sum()),
            "plays pending features": int((marks["where"] == "pending").sum()),
            "plays recorded unavailable": int((marks["where"] == "unavailable").sum()),
            "plays lost to the window, reported": int(lost_reported.sum()),
            "gaps recorded / plays they estimate": f"{len(gaps)} / {sum(g['estimated_plays'] for g in gaps)}",
            "LOST (not stored, not reported)": int(lost.sum()),
            "DUPLICATED": duplicates,
            "STORED BUT NEVER LISTED": phantom,
            "runs by status": dict(statuses),
            "STUCK runs (in progress)": stuck,
            "CLAIMED pool slots": len(holders),
            "doctor exit code": doctor.returncode,
            "UNREADABLE files": unreadable,
            "SECRETS found": leaks,
            "temporary files left (removed once 5 min old)": len(temporaries),
            "SLOTS TAKEN AS DONE BY A DEAD RUN": len(done_by_dead),
            "disk": "tmpfs in a private mount namespace (ENOSPC)" if self.disk.tmpfs else "this machine's disk (RLIMIT_FSIZE for the disk-full run)",
            "median seconds per slot": {mode: round(float(np.median(v)), 1) for mode, v in f.seconds.items()},
            "wall time (s)": round(wall),
        }
        (self.logs / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print("\nsoak figures")
        for name, value in figures.items():
            print(f"  {name}: {value}")
        if lost.any():
            print(marks[lost].head(20).to_string())
        bad = lost.any() or duplicates or phantom or stuck or holders or doctor.returncode or unreadable or leaks or done_by_dead
        print("\nRESULT: " + ("FAILED" if bad else "zero lost, duplicated or stuck") + f"  (logs in {self.logs})")
        return 1 if bad else 0


def unreadable_files(root: Path) -> list[str]:
    """Every parquet and JSON file under the data root that does not load (quarantine/ holds bad ones on purpose)."""
    bad = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp") or "quarantine" in path.relative_to(root).parts:
            continue
        try:
            if path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())
        except Exception as exc:  # anything that stops a reader is the finding
            bad.append(f"{path.relative_to(root)}: {exc}")
    return bad


def secrets_in(root: Path, skip: set[Path] = frozenset()) -> list[str]:
    pattern = re.compile(b"|".join(re.escape(m) for m in SECRET_MARKERS))
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and p not in skip and pattern.search(p.read_bytes())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spotify_brain_assets.benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slots-per-day", type=int, default=48)
    parser.add_argument("--cli-share", type=float, default=0.06, help="share of slots run as `spotify-brain update` subprocesses")
    parser.add_argument("--workdir", type=Path, help="where the disk and logs go (default: a new temporary folder)")
    parser.add_argument("--disk-mb", type=int, default=4096, help="size of the tmpfs disk")
    parser.add_argument("--keep", action="store_true", help="copy the disk's contents next to the logs at the end (always on failure)")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="spotify-brain-soak-"))).resolve()
    if not os.environ.get(INNER_ENV) and private_disk_available():
        argv = [*(argv if argv is not None else sys.argv[1:]), "--workdir", str(workdir)]
        inner = _unshare([sys.executable, "-m", "spotify_brain_assets.benchmarks.soak", *argv])
        return subprocess.run(inner, env={**os.environ, INNER_ENV: "1"}).returncode
    print(f"soak: {args.days} days × {args.slots_per_day} slots, seed {args.seed}, in {workdir}", flush=True)
    soak = Soak(args, workdir)
    try:
        code = soak.run()
    finally:
        soak.fake.stop()
    if code or args.keep:
        soak.disk.keep(workdir / "disk-kept")
    return code


if __name__ == "__main__":
    sys.exit(main())
