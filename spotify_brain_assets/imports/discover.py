"""Finding the export's files: in a folder (at any depth), in Spotify's zip, or one JSON file.

Spotify delivers `my_spotify_data.zip` holding `Spotify Extended Streaming History/` (or `Spotify
Account Data/`); users also extract it, or put several exports side by side. Files are told apart by
name only (external-apis.md §5); everything else is ignored with a note saying why.

Nothing is inflated blindly (`ReadLimits`): the sizes a zip declares are checked before anything is
read, and every file is streamed with a count of the bytes it yields, so a zip bomb or a header that
lies is refused with the file and the cap named, holding at most the cap in memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
import zlib
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


MIB = 1 << 20
READ_CHUNK = MIB  # a deflate stream yields at most this much per read: memory stays near the cap
RATIO_FLOOR = MIB  # smaller members may compress very well (a file of one repeated play) and are harmless
SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what Spotify uses; bzip2 and lzma inflate unbounded per read


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
    size: int = 0  # uncompressed bytes, as the zip's header or the file system says
    packed: int | None = None  # compressed bytes in the zip
    method: int = zipfile.ZIP_STORED

    def read_bytes(self, max_bytes: int) -> bytearray:
        """The content, streamed; reading stops at `max_bytes` + 1 (one more says "too big")."""
        data = bytearray()
        try:
            with contextlib.ExitStack() as stack:
                if self.member is None:
                    stream = stack.enter_context(open(self.source, "rb"))
                else:
                    stream = stack.enter_context(stack.enter_context(zipfile.ZipFile(self.source)).open(self.member))
                while len(data) <= max_bytes and (chunk := stream.read(min(READ_CHUNK, max_bytes + 1 - len(data)))):
                    data += chunk
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError, zlib.error) as exc:
            hint = "; the zip is damaged, or its header does not match its content" if self.member else ""
            raise ExportFileError(f"{self.name}: cannot be read ({exc}{hint})") from exc
        return data


@dataclass(frozen=True)
class ReadLimits:
    """How much an import may decompress and hold: caps per file and in total, and a compression ratio.

    Spotify writes files of 10-13 MB that deflate 10-15:1; parsing one takes about 4 times its size in
    memory. The defaults (256 MiB per file, 2 GiB in all, 100:1) leave room for twenty times the
    largest real file and about 190 years of heavy listening (15k plays a year), while a zip bomb
    (1000:1 and more) is refused before a byte of it is inflated.
    """

    max_file_bytes: int = 256 * MIB
    max_total_bytes: int = 2048 * MIB
    max_ratio: float = 100.0

    def _too_big(self, file: ExportFile, what: str) -> ExportFileError:
        return ExportFileError(
            f"{file.name}: {what}, over the cap of {self.max_file_bytes / MIB:g} MiB per file (max_file_mib in "
            f"the config of spotify_export; raise it if the file is genuine)"
        )

    def _too_much(self, file: ExportFile) -> ExportFileError:
        return ExportFileError(
            f"{file.name}: with it the export's files hold more than the cap of {self.max_total_bytes / MIB:g} MiB "
            f"uncompressed (max_total_mib in the config of spotify_export; raise it if the files are genuine)"
        )

    def check(self, files: list[ExportFile]) -> None:
        """Refuse on what the files declare, before anything is read."""
        total = 0
        for file in files:
            if file.member is not None and file.method not in SUPPORTED_METHODS:
                raise ExportFileError(
                    f"{file.name}: compressed with a method Spotify does not use (zip method {file.method}); "
                    "extract it and put its JSON files in imports/"
                )
            if file.size > self.max_file_bytes:
                raise self._too_big(file, f"{file.size / MIB:.0f} MiB uncompressed")
            if file.packed is not None and file.size >= RATIO_FLOOR and file.size > self.max_ratio * max(file.packed, 1):
                raise ExportFileError(
                    f"{file.name}: {file.packed} bytes that inflate to {file.size / MIB:.0f} MiB, a ratio over the cap "
                    f"of {self.max_ratio:g}:1 (max_compression_ratio in the config of spotify_export); Spotify's "
                    "files compress about 10:1, so this looks like a zip bomb"
                )
            total += file.size
            if total > self.max_total_bytes:
                raise self._too_much(file)

    def read(self, file: ExportFile, already: int) -> bytearray:
        """The file's bytes, counted as they stream (`already`: bytes read from earlier files).

        Reading stops one byte past the caps, or past what a zip member declares, whatever its
        header says: a lying header costs at most what it declared.
        """
        cap = min(self.max_file_bytes, self.max_total_bytes - already)
        zipped = file.member is not None
        data = file.read_bytes(min(cap, file.size) if zipped else cap)
        if zipped and len(data) > file.size:
            raise ExportFileError(f"{file.name}: holds more than the {file.size} bytes its zip header declares; the zip is damaged or crafted")
        if len(data) > self.max_file_bytes:
            raise self._too_big(file, f"more than {self.max_file_bytes / MIB:g} MiB once read")
        if already + len(data) > self.max_total_bytes:
            raise self._too_much(file)
        return data


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
            found.files.append(
                ExportFile(
                    name, kind, package, f"{container}:{member.CRC}", path, member.filename,
                    member.file_size, member.compress_size, member.compress_type,
                )
            )
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
            found.files.append(ExportFile(label, kind, _label(file.parent, root), _version(file), file, size=file.stat().st_size))
        else:
            found.ignored.append((label, kind))
    return found
