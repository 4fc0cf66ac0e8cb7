"""Time the export import's own work on ten years of heavy listening (the API's share excluded).

    python -m spotify_brain_assets.benchmarks.export_import --plays 150000 --tracks 30000 --years 10

Writes a synthetic export the way Spotify delivers it — extended history in files of ~16k plays in a
zip, with podcasts, audiobooks, plays under 30 s, incognito plays, null `skipped`, seconds and
milliseconds `offline_timestamp` — plus an older `endsong_*.json` export overlapping its first half
(shifted copies) and a year of account data (minute precision, names only). A store of the last 60
days as polled from the API (end times 0-50 s off) stands for the history already there. It then
times each step of an import in this process: finding and parsing the files, deduplication and
identification, attaching cached features, writing export_plays.parquet, merging into the store with
the tolerance (what `plays` does), and the feature-fetch loop's own overhead per request with an
instant answer and a checkpoint after every request. Prints wall times and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..imports.features import fetch_features
from ..imports.importer import complete_plays, features_known, plan_import, read_export, tracks_to_fetch
from ..imports.output import conform_export, write_export_plays
from ..plays.ingest import CACHE_COLUMNS, conform_cache
from ..plays.merge import merge_plays
from ..plays.schema import AUDIO_FEATURES, PLAY_COLUMNS, SESSIONIZED_COLUMNS, conform, tempo_norm
from ..storage.files import write_parquet

BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
PER_FILE = 16_000  # plays per extended-history file, as Spotify splits them


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array(["".join(row) for row in BASE62[rng.integers(0, 62, size=(n, 22))]])


def synthetic_export(folder: Path, plays: int, tracks: int, years: float, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the export under `folder`; returns (the catalog with features, the clean music plays)."""
    rng = np.random.default_rng(seed)
    catalog = pd.DataFrame({"track_id": _ids(rng, tracks), "duration": rng.integers(140_000, 330_000, tracks)})
    catalog["track_name"] = "Track " + pd.Series(np.arange(tracks)).astype(str)
    catalog["artist_name"] = "Artist " + pd.Series(rng.integers(0, tracks // 8, tracks)).astype(str)
    for name in AUDIO_FEATURES:
        catalog[name] = rng.random(tracks) * (200 if name == "tempo" else 1)
    weights = rng.pareto(1.2, tracks) + 1
    end = pd.Timestamp("2026-01-01", tz="UTC")
    start = end - pd.Timedelta(days=365.25 * years)
    pick = rng.choice(tracks, size=plays, p=weights / weights.sum())
    df = catalog.iloc[pick].reset_index(drop=True)
    full = rng.random(plays) < 0.7
    df["ms_played"] = np.where(full, df["duration"], rng.integers(1_000, 200_000, plays))
    # sessions of back-to-back plays (a few seconds apart), separated by breaks that fill the years
    breaks = rng.random(plays) < 0.08
    listening = (df["ms_played"].to_numpy() / 1000 + rng.integers(0, 10, plays)).sum()
    pause = rng.exponential(1.0, plays) * breaks
    pause *= ((end - start).total_seconds() - listening) / pause.sum()
    steps = df["ms_played"].to_numpy() / 1000 + np.where(breaks, pause, rng.integers(0, 10, plays))
    seconds = np.cumsum(steps).astype("int64")
    df["ts"] = (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = rng.choice(["music", "podcast", "audiobook", "incognito"], size=plays, p=[0.95, 0.03, 0.01, 0.01])
    old = seconds < seconds[int(plays * 0.3)]
    records = pd.DataFrame(
        {
            "ts": df["ts"], "platform": "android", "ms_played": df["ms_played"], "conn_country": "SE",
            "ip_addr": "203.0.113.x",
            "master_metadata_track_name": df["track_name"].where(kind != "podcast"),
            "master_metadata_album_artist_name": df["artist_name"].where(kind != "podcast"),
            "master_metadata_album_album_name": "Album",
            "spotify_track_uri": ("spotify:track:" + df["track_id"]).where(~np.isin(kind, ["podcast", "audiobook"])),
            "episode_name": pd.Series("Episode", index=df.index).where(kind == "podcast"),
            "episode_show_name": None,
            "spotify_episode_uri": pd.Series("spotify:episode:5m5v6w7x8y9z0a1b2c3d4e", index=df.index).where(kind == "podcast"),
            "audiobook_title": None,
            "audiobook_uri": pd.Series("spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe", index=df.index).where(kind == "audiobook"),
            "audiobook_chapter_uri": None, "audiobook_chapter_title": None,
            "reason_start": np.where(full, "trackdone", "clickrow"), "reason_end": np.where(full, "trackdone", "fwdbtn"),
            "shuffle": rng.random(plays) < 0.4,
            "skipped": pd.Series(~full, dtype="object").where(~old),  # null in the oldest years
            "offline": False,
            "offline_timestamp": np.where(old, (seconds + start.timestamp()) * 1000, seconds + start.timestamp()).astype("int64"),
            "incognito_mode": kind == "incognito",
        }
    )
    archive_path = folder / "my_spotify_data.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for n, at in enumerate(range(0, plays, PER_FILE)):
            part = records.iloc[at : at + PER_FILE]
            archive.writestr(f"Spotify Extended Streaming History/Streaming_History_Audio_{n}.json", part.to_json(orient="records"))
    # an older export of the first half, ts shifted by a second here and there
    half = records.iloc[: plays // 2].drop(columns=[c for c in records if c.startswith("audiobook")]).copy()
    shift = pd.to_timedelta(rng.integers(0, 2, len(half)), unit="s")
    half["ts"] = (pd.to_datetime(half["ts"], utc=True) + shift).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    (folder / "older").mkdir()
    for n, at in enumerate(range(0, len(half), PER_FILE)):
        (folder / "older" / f"endsong_{n}.json").write_text(half.iloc[at : at + PER_FILE].to_json(orient="records"))
    # a year of account data: the same plays, minute precision, names only
    music = (kind == "music") & (df["ms_played"].to_numpy() >= 30_000)
    last_year = music & (seconds >= seconds[-1] - 365 * 86400)
    account = pd.DataFrame(
        {
            "endTime": pd.to_datetime(df.loc[last_year, "ts"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
            "artistName": df.loc[last_year, "artist_name"], "trackName": df.loc[last_year, "track_name"],
            "msPlayed": df.loc[last_year, "ms_played"],
        }
    )
    (folder / "Spotify Account Data").mkdir()
    (folder / "Spotify Account Data" / "StreamingHistory_music_0.json").write_text(account.to_json(orient="records"))
    clean = df[music].assign(played_at=pd.to_datetime(df.loc[music, "ts"], utc=True).dt.as_unit("ms"))
    return catalog, clean


def polled_store(clean: pd.DataFrame, days: int, seed: int = 4) -> pd.DataFrame:
    """The last `days` of plays as the API recorded them: end times 0-50 s off, origin spotify."""
    rng = np.random.default_rng(seed)
    recent = clean[clean["played_at"] >= clean["played_at"].max() - pd.Timedelta(days=days)].copy()
    recent["played_at"] = recent["played_at"] + pd.to_timedelta(rng.integers(-50, 50, len(recent)), unit="s")
    recent["tempo_norm"] = tempo_norm(recent["tempo"])
    recent = recent.assign(image_url="https://i.scdn.co/image/x", origin="spotify")
    store, _ = merge_plays(conform(recent.iloc[:0], SESSIONIZED_COLUMNS), conform(recent, PLAY_COLUMNS))
    return store


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(work: Path, plays: int, tracks: int, years: float, polled_days: int) -> None:
    folder = work / "imports"
    folder.mkdir()
    t = time.perf_counter()
    catalog, clean = synthetic_export(folder, plays, tracks, years)
    store = polled_store(clean, polled_days)
    catalog.to_parquet(work / "catalog.parquet")
    clean[["track_id", "played_at"]].to_parquet(work / "expected.parquet")
    store.to_parquet(work / "store.parquet")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"synthetic export: {plays} plays of {tracks} tracks over {years:g} years, an older export of the first "
          f"half (shifted copies) and a year of account data; {size / 2**20:.0f} MB on disk (zip deflated); "
          f"{len(store)} plays already polled from the API; generated in {time.perf_counter() - t:.1f} s")


def measure(work: Path) -> None:
    """The import's steps on `work`, in a process that did nothing else before."""
    catalog = pd.read_parquet(work / "catalog.parquet")
    expected = pd.read_parquet(work / "expected.parquet")
    store = pd.read_parquet(work / "store.parquet")
    base = peak_mb()
    timings = []

    def step(name, fn):
        t0 = time.perf_counter()
        out = fn()
        timings.append((name, time.perf_counter() - t0, peak_mb()))
        return out

    tolerance = pd.Timedelta(seconds=60)
    parsed = step("find and parse files", lambda: read_export(work / "imports"))
    previous = conform_export(pd.DataFrame(columns=PLAY_COLUMNS + ["ms_played"]))
    plan = step("dedupe and identify", lambda: plan_import(parsed.plays, previous, store, tolerance))
    cache = conform_cache(catalog.assign(fetched_at=pd.Timestamp("2026-01-01", tz="UTC"))[CACHE_COLUMNS])
    features = step("features from the cache", lambda: features_known(cache, previous))
    todo = tracks_to_fetch(plan.plays, features, pd.Index([]))
    none = pd.DataFrame({"track_id": pd.Series(dtype="string"), "played_at": pd.Series(dtype="datetime64[ms, UTC]")})
    done = step("attach features", lambda: complete_plays(plan, features, pd.Index([]), none, pd.Timestamp.now(tz="UTC")))
    step("write export_plays.parquet", lambda: write_export_plays(done.plays, work / "export_plays.parquet", 60))
    merged, added = step("merge into the store (plays)", lambda: merge_plays(store, conform(done.plays, PLAY_COLUMNS), tolerance=tolerance))

    # the fetch loop's own cost: an instant ReccoBeats and a checkpoint (cache write) after every request
    answers = {r.track_id: {"href": f"https://open.spotify.com/track/{r.track_id}", **{f: getattr(r, f) for f in AUDIO_FEATURES}} for r in catalog.itertuples()}
    grown = [cache.iloc[:0]]

    def checkpoint(rows, unknown):
        grown[0] = pd.concat([grown[0], conform_cache(rows)], ignore_index=True)
        write_parquet(grown[0], work / "audio_features.parquet")

    fetch = lambda: fetch_features(list(catalog["track_id"]), lambda batch: [answers[i] for i in batch], checkpoint, pd.Timestamp.now(tz="UTC"), checkpoint_seconds=0)
    fetched = step("fetch loop without the API", fetch)

    key = lambda df: set(zip(df["track_id"], pd.to_datetime(df["played_at"], utc=True)))
    print(f"parsed {len(parsed.plays)} music plays from {len(parsed.discovery.files)} files; rows skipped: "
          + ", ".join(f"{k} {v}" for k, v in parsed.skipped.most_common()))
    print(f"plan: {plan.stats}")
    print(f"every synthetic play exactly once: {key(done.plays) == key(expected) and len(done.plays) == len(expected)}; "
          f"tracks still needing features with a full cache: {len(todo)}")
    print(f"merge: {len(added)} added to {len(store)} polled plays, {len(done.plays) - len(added)} recognised as the "
          f"API's; store now {len(merged)} (expected {len(expected)})")
    print(f"\n{'step':<32}{'seconds':>9}{'peak RSS MB':>13}")
    for name, seconds, peak in timings:
        print(f"{name:<32}{seconds:>9.2f}{peak:>13.0f}")
    total = sum(s for n, s, _ in timings if not n.startswith("fetch loop"))
    print(f"{'import without the API':<32}{total:>9.2f}")
    peak = max(p for _, _, p in timings)
    print(f"\npeak RSS {base:.0f} MB before the import (Python, pandas, Dagster and the inputs loaded), {peak:.0f} MB "
          f"during it (+{peak - base:.0f} MB); fetch loop: {fetched.batches} requests of 40 ids, "
          f"{1000 * timings[-1][1] / max(fetched.batches, 1):.0f} ms each with a cache write after every one")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=150_000)
    parser.add_argument("--tracks", type=int, default=30_000)
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--polled-days", type=int, default=60)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: time an already generated folder
    args = parser.parse_args(argv)
    if args.measure:
        measure(Path(args.measure))
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.plays, args.tracks, args.years, args.polled_days)
        subprocess.run([sys.executable, "-m", __spec__.name, "--measure", tmp], check=True)


if __name__ == "__main__":
    main()
