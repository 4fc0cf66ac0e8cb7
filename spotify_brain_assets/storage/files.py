"""Atomic writes and the writer lock.

Every file under the data root is written to a temporary file in the same folder and renamed over
the target, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: what a plain open() would create; mkstemp's 0600 would hide export/ from a web server
_NEW_FILE_MODE = _default_mode()


class CorruptFileError(RuntimeError):
    """A file under the data root cannot be read as what it should be."""


#: temporaries of `_atomic_target` (`.<name>.<8 random>.tmp`) and `keep_previous` (`.<name>.tmp`) for
#: the kinds of file Spotify Brain writes; nothing else is ever removed
TEMPORARY_RE = re.compile(r"^\.[^/]+\.(?:parquet|json|html|pkl)(?:\.[a-z0-9_]{8})?\.tmp$")
#: a temporary untouched this long belongs to a dead writer: live writes fill theirs without pause,
#: and every writer of the data root holds the lock the cleaner holds
STALE_TEMPORARY_SECONDS = 5 * 60


@contextlib.contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with _atomic_target(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: Path, required: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet file we wrote (or the predecessor did), naming the file when it is not one."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for foreign or truncated files
        raise CorruptFileError(f"{path} is not a readable parquet file ({exc})") from exc
    missing = [c for c in (required or []) if c not in df.columns]
    if missing:
        raise CorruptFileError(f"{path} lacks the columns {missing}; it was not written by Spotify Brain")
    return df


def read_parquet_or_empty(path: Path, columns: list[str]) -> pd.DataFrame:
    """`read_parquet`, or an empty frame of `columns` when the file was never written."""
    return read_parquet(path, columns) if path.exists() else pd.DataFrame(columns=columns)


def parquet_metadata(path: Path) -> dict[str, str]:
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"pandas")}


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_bytes(data: bytes, path: Path) -> None:
    with _atomic_target(path) as tmp:
        tmp.write_bytes(data)


def write_text(text: str, path: Path) -> None:
    write_bytes(text.encode("utf-8"), path)


def json_text(obj: Any) -> str:
    """Strict JSON (NaN and infinities become null), stable key order: the text `write_json` writes."""
    return json.dumps(_strict(obj), indent=2, allow_nan=False, default=str) + "\n"


def write_json(obj: Any, path: Path) -> None:
    write_text(json_text(obj), path)


def read_json(path: Path, missing: Any = ...) -> Any:
    """The parsed file; `missing` (when given) stands in for a file that was never written."""
    if missing is not ... and not path.exists():
        return missing
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path} is not readable JSON ({exc})") from exc


def keep_previous(path: Path, previous: Path) -> None:
    """Keep the current version of `path` as `previous` (a hard link when it can: no copy)."""
    if not path.exists():
        return
    tmp = previous.with_name(f".{previous.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        import shutil

        shutil.copy2(path, tmp)
    os.replace(tmp, previous)


def stale_temporaries(root: Path, older_than_s: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Temporaries that killed writers left under `root`.

    Only names of our own temporaries, only regular files (no symlink is followed), never in
    `imports/` (the user's folder), only when untouched for `older_than_s`.
    """
    cutoff = time.time() - older_than_s
    found = []
    for folder, subfolders, names in os.walk(root):
        if folder == str(root):
            subfolders[:] = [d for d in subfolders if d != "imports"]
        for name in filter(TEMPORARY_RE.match, names):
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                found.append(path)
    return found


def remove_stale_temporaries(root: Path, older_than_s: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Remove `stale_temporaries`; call it holding the writer lock."""
    found = stale_temporaries(root, older_than_s)
    for path in found:
        path.unlink(missing_ok=True)
    return found


def quarantine(path: Path, root: Path, folder: Path, reason: str) -> dict[str, Any]:
    """Move an unreadable file under the data root `root` to `folder`, bytes untouched, beside a JSON
    sidecar saying why and where it came from; returns the sidecar's content.

    Paths are named relative to the data root, so the record reads the same on any machine.
    """
    now = pd.Timestamp.now(tz="UTC")
    original = path.relative_to(root).as_posix()
    target = folder / f"{now:%Y%m%dT%H%M%SZ}-{path.name}"
    suffix = 1
    while target.exists() or target.with_name(target.name + ".json").exists():
        target = folder / f"{now:%Y%m%dT%H%M%SZ}-{suffix}-{path.name}"
        suffix += 1
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    record = {
        "original_path": original,
        "quarantined_path": target.relative_to(root).as_posix(),
        "reason": reason.replace(str(path), original),
        "quarantined_at": now.isoformat(),
        "bytes": path.stat().st_size,
        "sha256": digest,
    }
    # the sidecar first: a crash between the two leaves a stray note, never an unexplained file
    write_json(record, target.with_name(target.name + ".json"))
    os.replace(path, target)
    return record


@contextlib.contextmanager
def writer_lock(lock_path: Path) -> Iterator[None]:
    """Serialize writers of the data root across processes (Dagster runs, CLI runs, imports).

    Waits as long as another process holds it. The lock is the operating system's (filelock: flock on
    Unix, a Windows file lock on Windows), so it dies with its process: a killed run never leaves it held.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path):
        yield
