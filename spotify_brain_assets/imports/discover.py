"""Finding the export's files: in a folder (at any depth), in Spotify's zip, or one JSON file.

Spotify delivers `my_spotify_data.zip` holding `Spotify Extended Streaming History/` (or `Spotify
Account Data/`); users also extract it, or put several exports side by side. Files are told apart by
name only (external-apis.md §5); everything else is ignored with a note saying why.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

EXTENDED = "extended"
ACCOUNT = "account"

EXTENDED_RE = re.compile(r"^(Streaming_History_Audio_.*|endsong_\d+)\.json$", re.IGNORECASE)
ACCOUNT_RE = re.compile(r"^StreamingHistory(_music_)?\d+\.json$", re.IGNORECASE)
IGNORED = [
    (re.compile(r"^Streaming_History_Video_.*\.json$", re.IGNORECASE), "video history (not music)"),
    (re.compile(r"^StreamingHistory_podcast_\d+\.json$", re.IGNORECASE), "podcast history (not music)"),
    (re.compile(r"\.pdf$", re.IGNORECASE), "documentation"),
    (re.compile(r"\.zip$", re.IGNORECASE), "a zip inside a zip: extract it into the import folder"),
    (re.compile(r"^\."), "hidden file"),
]


class ExportFileError(ValueError):
    """A file of the export cannot be imported; the message names the file and the problem."""


@dataclass(frozen=True)
class ExportFile:
    name: str  # where it is, relative to the import path (`zip:member` inside a zip)
    kind: str  # EXTENDED or ACCOUNT
    package: str  # the folder or zip folder it came from: one export never lists a play twice
    version: str  # changes when the file does (size and mtime, or the zip member's CRC)
    source: Path
    member: str | None = None

    def read_bytes(self) -> bytes:
        try:
            if self.member is None:
                return self.source.read_bytes()
            with zipfile.ZipFile(self.source) as archive:
                return archive.read(self.member)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise ExportFileError(f"{self.name}: cannot be read ({exc})") from exc


@dataclass
class Discovery:
    files: list[ExportFile]
    ignored: list[tuple[str, str]]  # (name, why)

    def versions(self) -> dict[str, str]:
        return {f.name: f.version for f in self.files}


def classify(name: str) -> str | None:
    """EXTENDED, ACCOUNT, or the reason a file is ignored."""
    base = PurePosixPath(name).name
    if EXTENDED_RE.match(base):
        return EXTENDED
    if ACCOUNT_RE.match(base):
        return ACCOUNT
    for pattern, why in IGNORED:
        if pattern.search(base):
            return why
    return "not a streaming-history file"


def _version(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _label(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
        return str(rel) if str(rel) != "." else path.name
    except ValueError:
        return str(path)


def _zip_files(path: Path, label: str) -> Discovery:
    found = Discovery([], [])
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExportFileError(f"{label}: not a readable zip archive ({exc})") from exc
    container = _version(path)
    for member in sorted(members, key=lambda m: m.filename):
        inner = PurePosixPath(member.filename)
        name = f"{label}:{member.filename}"
        if "__MACOSX" in inner.parts:
            found.ignored.append((name, "macOS metadata"))
            continue
        kind = classify(inner.name)
        if kind in (EXTENDED, ACCOUNT):
            package = f"{label}:{inner.parent}"
            found.files.append(ExportFile(name, kind, package, f"{container}:{member.CRC}", path, member.filename))
        else:
            found.ignored.append((name, kind))
    return found


def discover(path: Path) -> Discovery:
    """The export's files under `path` in a stable order; a missing path finds nothing."""
    path = Path(path)
    found = Discovery([], [])
    if not path.exists():
        return found
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        candidates = []
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__MACOSX")
            candidates += [Path(folder) / n for n in names]
    else:
        candidates = [path]
    for file in sorted(candidates):
        label = _label(file, root)
        if file.suffix.lower() == ".zip" and not file.name.startswith("."):
            inner = _zip_files(file, label)
            found.files += inner.files
            found.ignored += inner.ignored
            continue
        kind = classify(file.name)
        if kind in (EXTENDED, ACCOUNT):
            found.files.append(ExportFile(label, kind, _label(file.parent, root), _version(file), file))
        else:
            found.ignored.append((label, kind))
    return found
