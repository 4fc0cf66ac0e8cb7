"""`plays` (merged, sessionized) and `history` (plays with their observed mood cluster)."""

import dagster as dg
import pandas as pd

from ...imports.output import EXPORT_LEDGER_KEY, export_tolerance, record_replaced, unmerged_export
from ...ml.assign import load_centroids, nearest_cluster
from ...plays.merge import merge_plays
from ...plays.schema import HISTORY_COLUMNS, KEY, UNASSIGNED_MOOD, conform, is_demo
from ...plays.sessions import DEFAULT_GAP_MINUTES
from ...plays.store import fingerprint, load_history, load_plays, read_ingestion_files, read_ledger, unmerged_files
from ...resources import DataStore
from ...storage.files import keep_previous, parquet_metadata, remove_stale_temporaries, write_json, write_parquet, writer_lock
from ..common import table, table_metadata
from ..factory import ingestion_partitions_name, listener_asset, per_listener
from ..ingestion.ingestions import FILES_READABLE, files_readable_check, quarantine_table

CLUSTERS_FINGERPRINT = "spotify_brain.mood_clusters"
GAP_MINUTES = "spotify_brain.gap_minutes"


class SessionConfig(dg.Config):
    gap_minutes: int = DEFAULT_GAP_MINUTES  # a longer pause than this starts a new listening session


@listener_asset(
    deps=["ingestions", "spotify_export"],
    group_name="history",
    kinds={"parquet"},
    code_version="1",  # bump when a release changes merging or sessionizing
    check_specs=[dg.AssetCheckSpec(FILES_READABLE, asset="plays", description="Every ingestion file merged; unreadable ones are moved to quarantine/")],
)
def plays(context: dg.AssetExecutionContext, config: SessionConfig, store: DataStore) -> dg.MaterializeResult:
    """Every play with complete audio features, sessionized: `plays.parquet`, the layer under history.

    Merges only the ingestion files it has not merged yet (a ledger records each file's version).
    A predecessor's `history.parquet` found in an empty data root is adopted as is, and its
    ingestion files become partitions of `ingestions`. Plays imported from Spotify's data export
    (`spotify_export`) join the same way; where an imported play meets the API's record of the same
    play, the API's wins, and a replaced play is kept in `replaced_plays.parquet`. An unreadable
    ingestion file is moved to `quarantine/` (its bytes kept) and the others are merged.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        removed = remove_stale_temporaries(paths.root)
        current, adopted = load_plays(paths)
        ledger = read_ledger(paths)
        frames, quarantined = read_ingestion_files(paths, unmerged_files(paths, ledger))
        todo = {key: paths.ingestion_file(key) for key in frames}
        incoming = list(frames.values())
        files = paths.ingestion_files()
        exported, export_version = unmerged_export(paths, ledger)
        incoming += [exported] if exported is not None else []
        merged, added = merge_plays(
            current, pd.concat(incoming) if incoming else current.iloc[:0], config.gap_minutes, export_tolerance(paths)
        )
        replaced = record_replaced(paths, current, merged, pd.Timestamp.now(tz="UTC"))
        write_parquet(merged, paths.plays, {GAP_MINUTES: str(config.gap_minutes)})
        ledger.update({key: fingerprint(path) for key, path in todo.items()})
        ledger.update({EXPORT_LEDGER_KEY: export_version} if export_version else {})
        write_json({"merged": dict(sorted(ledger.items()))}, paths.plays_ledger)

    partitions = ingestion_partitions_name(context.asset_key)
    unregistered = sorted(set(files) - set(context.instance.get_dynamic_partitions(partitions)))
    if unregistered:
        context.instance.add_dynamic_partitions(partitions, unregistered)
    for q in quarantined:
        context.log.error(f"{q['original_path']} is unreadable ({q['reason']}): moved to {q['quarantined_path']}, not merged")
    return dg.MaterializeResult(
        check_results=[files_readable_check(quarantined)],
        metadata={
            **table_metadata(merged),
            "added": len(added),
            "files_merged": len(todo),
            "export_merged": export_version is not None,
            "replaced_by_more_precise_record": replaced,
            "sessions": int(merged["session_id"].nunique()),
            "adopted_predecessor_history": adopted,
            "partitions_registered": len(unregistered),
            "demo_data": is_demo(merged["origin"]),
            "quarantined_files": len(quarantined),
            "quarantined": quarantine_table(quarantined),
            "stale_temporaries_removed": len(removed),
            "path": dg.MetadataValue.path(str(paths.plays)),  # written above, also when empty
        },
    )


def assign_moods(plays_df: pd.DataFrame, previous: pd.DataFrame | None, centroids: pd.DataFrame | None, refit: bool) -> pd.DataFrame:
    """Plays with `mood_cluster_id`: kept from `previous` unless the clusters were refitted; new plays
    go to the nearest existing centroid; -1 while no clusters exist yet."""
    out = plays_df.copy()
    out["mood_cluster_id"] = UNASSIGNED_MOOD
    if previous is not None and not refit and len(previous):
        kept = out[KEY].merge(previous[KEY + ["mood_cluster_id"]], on=KEY, how="left")["mood_cluster_id"]
        out["mood_cluster_id"] = kept.fillna(UNASSIGNED_MOOD).to_numpy()
    if centroids is not None:
        todo = out["mood_cluster_id"].to_numpy() == UNASSIGNED_MOOD
        out.loc[todo, "mood_cluster_id"] = nearest_cluster(out[todo], centroids)
    return conform(out, HISTORY_COLUMNS)


@listener_asset(
    deps=[plays, "mood_clusters"],
    group_name="history",
    kinds={"parquet"},
    code_version="1",  # bump when a release changes how moods are assigned
)
def history(context: dg.AssetExecutionContext, store: DataStore) -> dg.MaterializeResult:
    """The one clean history: every play with features, its session and its observed mood cluster.

    `history.parquet`, the predecessor's format. When the mood clusters were refitted since the last
    write (full_retrain), every play is reassigned; otherwise only new plays are, to the nearest
    existing centroid (update). `mood_cluster_id` is always observed, never a prediction.
    """
    paths = store.paths
    with writer_lock(paths.lock):
        plays_df, _ = load_plays(paths)
        previous = load_history(paths)
        loaded = load_centroids(paths.mood_clusters)
        centroids, clusters_fp = loaded if loaded else (None, "none")
        previous_fp = parquet_metadata(paths.history).get(CLUSTERS_FINGERPRINT) if previous is not None else None
        refit = previous_fp is not None and previous_fp != clusters_fp
        out = assign_moods(plays_df, previous, centroids, refit)
        keep_previous(paths.history, paths.history_previous)
        gap = parquet_metadata(paths.plays).get(GAP_MINUTES, str(DEFAULT_GAP_MINUTES)) if paths.plays.exists() else str(DEFAULT_GAP_MINUTES)
        write_parquet(out, paths.history, {CLUSTERS_FINGERPRINT: clusters_fp, GAP_MINUTES: gap})

    added = len(out) - (len(previous) if previous is not None else 0)
    unassigned = int((out["mood_cluster_id"] == UNASSIGNED_MOOD).sum())
    if centroids is None:
        context.log.warning("no mood clusters yet: plays carry mood_cluster_id -1 until full_retrain fits them")
    per_cluster = out["mood_cluster_id"].value_counts().rename_axis("mood_cluster_id").reset_index(name="plays")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(out),
            "added": added,
            "sessions": int(out["session_id"].nunique()),
            **({"first_play": str(out["played_at"].min()), "last_play": str(out["played_at"].max())} if len(out) else {}),
            "reassigned_all_moods": refit,
            "unassigned_moods": unassigned,
            "demo_data": is_demo(out["origin"]),
            "plays_per_mood": table(per_cluster.sort_values("mood_cluster_id")),
            "path": dg.MetadataValue.path(str(paths.history)),  # written above, also when empty
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return per_listener(plays, history)
