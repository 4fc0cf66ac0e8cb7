"""Fetching audio features for an import's tracks: batched, checkpointed, resumable.

Years of history mean tens of thousands of tracks, hundreds of ReccoBeats requests, and the chance of
rate limits, a lost network or a killed process along the way. What arrived is handed to `checkpoint`
every few seconds and whenever the loop stops, however it stops, so a re-run asks only for the rest.
The loop pauses (returns) when the source says it cannot serve now or the time budget is spent; any
other error propagates after the checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from ..plays.ingest import CACHE_COLUMNS, FEATURES_BATCH
from ..plays.parse import feature_rows


@dataclass(frozen=True)
class Progress:
    batches_done: int
    batches_total: int
    found: int  # tracks ReccoBeats answered in this run
    unknown: int  # tracks it does not know
    elapsed_seconds: float

    @property
    def eta_seconds(self) -> float | None:
        if self.batches_done == 0:
            return None
        return self.elapsed_seconds / self.batches_done * (self.batches_total - self.batches_done)


@dataclass
class FetchOutcome:
    batches: int
    found: int
    unknown: int
    remaining: list[str]  # tracks not asked yet (a paused fetch)
    paused: str | None  # why the fetch stopped early, None when it finished


def fetch_features(
    track_ids: Sequence[str],
    fetch: Callable[[list[str]], list[dict]],
    checkpoint: Callable[[pd.DataFrame, list[str]], None],
    now: pd.Timestamp,
    batch_size: int = FEATURES_BATCH,
    checkpoint_seconds: float = 10.0,
    budget_seconds: float | None = None,
    pause_on: tuple[type[BaseException], ...] = (),
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FetchOutcome:
    """Ask for `track_ids` in batches; `checkpoint(cache_rows, unknown_ids)` persists what arrived."""
    if not 1 <= batch_size <= FEATURES_BATCH:
        raise ValueError(f"batch_size must be 1 to {FEATURES_BATCH} (ReccoBeats' limit), not {batch_size}")
    ids = list(dict.fromkeys(track_ids))
    batches = [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    started = last_checkpoint = clock()
    found_frames: list[pd.DataFrame] = []
    unknown: list[str] = []
    totals = {"found": 0, "unknown": 0}
    done = 0
    paused = None

    def flush() -> None:
        nonlocal found_frames, unknown, last_checkpoint
        if found_frames or unknown:
            rows = pd.concat(found_frames, ignore_index=True) if found_frames else feature_rows([])
            checkpoint(rows.assign(fetched_at=now).reindex(columns=CACHE_COLUMNS), list(unknown))
        found_frames, unknown = [], []
        last_checkpoint = clock()

    try:
        for batch in batches:
            if budget_seconds is not None and clock() - started >= budget_seconds:
                paused = f"time budget of {budget_seconds / 60:g} min spent"
                break
            try:
                items = fetch(batch)
            except pause_on as exc:
                paused = f"{type(exc).__name__}: {exc}"
                break
            rows = feature_rows(items)
            rows = rows[rows["track_id"].isin(batch)]
            missing = sorted(set(batch) - set(rows["track_id"]))
            found_frames.append(rows)
            unknown += missing
            totals["found"] += len(rows)
            totals["unknown"] += len(missing)
            done += 1
            if clock() - last_checkpoint >= checkpoint_seconds:
                flush()
            if progress is not None:
                progress(Progress(done, len(batches), totals["found"], totals["unknown"], clock() - started))
    finally:
        flush()
    remaining = [i for batch in batches[done:] for i in batch]
    return FetchOutcome(done, totals["found"], totals["unknown"], remaining, paused)
