"""Model files: a joblib pickle of {model, feature_cols, metadata} and a checksum sidecar.

A pickle can run any code when loaded, so a model file is only loaded when the sidecar beside it
(`<name>.sha256.json`) says Spotify Brain wrote it and its SHA-256 matches the file's bytes. That
refuses the predecessor's unchecked pickles, foreign files and files changed or truncated after
writing. It does not defend against someone who can write the data root (they could write both).

Refusals name files, never paths: they reach predictions.json and the published dashboard.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..storage.files import CorruptFileError, read_json, write_bytes, write_json

PROJECT_MARKER = "spotify-brain"
FORMAT_VERSION = 1
BUNDLE_KEYS = ("model", "feature_cols", "metadata")


class ModelRefused(RuntimeError):
    """A model file that Spotify Brain will not load, with the reason and what to do."""


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def previous_path(path: Path) -> Path:
    """Where the version a promotion replaces is kept (mood_classifier.previous.pkl)."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def save_model(bundle: dict[str, Any], path: Path, kind: str) -> str:
    """Write the bundle and its sidecar (atomically, each); returns the file's SHA-256."""
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"a model bundle needs the keys {missing}")
    import joblib

    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    write_bytes(data, path)
    write_json(
        {
            "project": PROJECT_MARKER,
            "format": FORMAT_VERSION,
            "kind": kind,
            "sha256": digest,
            "bytes": len(data),
            "written_at": datetime.now(timezone.utc).isoformat(),
        },
        sidecar_path(path),
    )
    return digest


def sidecar_version(path: Path) -> str | None:
    """The short version of a model file (the first 12 hex digits of its SHA-256), from its sidecar."""
    try:
        return read_json(sidecar_path(path))["sha256"][:12]
    except (CorruptFileError, KeyError, TypeError, FileNotFoundError):
        return None


def verify_model(path: Path, kind: str) -> str:
    """The file's SHA-256 when its sidecar vouches for it; ModelRefused otherwise."""
    side = sidecar_path(path)
    name = path.name
    if not path.exists():
        raise ModelRefused(f"{name} does not exist yet: run full_retrain to train one")
    if not side.exists():
        raise ModelRefused(
            f"{name} has no {side.name} beside it, so it was not written by Spotify Brain (a predecessor's "
            "pickle, or a copied file). It is not loaded: loading a pickle can run arbitrary code. "
            "Run full_retrain to train a new model."
        )
    try:
        meta = read_json(side)
    except CorruptFileError as exc:
        raise ModelRefused(f"{side.name} is unreadable; run full_retrain to train a new model") from exc
    if not isinstance(meta, dict) or meta.get("project") != PROJECT_MARKER:
        raise ModelRefused(f"{side.name} was not written by Spotify Brain; {name} is not loaded")
    if meta.get("format") != FORMAT_VERSION:
        raise ModelRefused(f"{name} has model format {meta.get('format')!r}, this version reads {FORMAT_VERSION}; run full_retrain")
    if meta.get("kind") != kind:
        raise ModelRefused(f"{name} holds a {meta.get('kind')!r} model, not a {kind!r} one")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta.get("sha256"):
        raise ModelRefused(
            f"{name} does not match the checksum in {side.name} (changed or truncated after it was written); "
            "it is not loaded. Run full_retrain to train a new model."
        )
    return digest


def load_model(path: Path, kind: str) -> dict[str, Any]:
    """The verified bundle {model, feature_cols, metadata}; ModelRefused for anything else."""
    import joblib  # and, unpickling, XGBoost or scikit-learn: loaded when a model is, not with the definitions

    verify_model(path, kind)
    try:
        bundle = joblib.load(path)
    except Exception as exc:  # unpickling raises many types
        raise ModelRefused(f"{path.name} passed its checksum but cannot be unpickled ({type(exc).__name__}); run full_retrain") from exc
    if not isinstance(bundle, dict) or any(k not in bundle for k in BUNDLE_KEYS):
        raise ModelRefused(f"{path.name} does not hold a model bundle {{model, feature_cols, metadata}}")
    return bundle


def promote(candidate: Path, target: Path, kind: str) -> str:
    """Copy a verified candidate (and sidecar) over `target`, keeping the replaced one as `.previous`."""
    verify_model(candidate, kind)
    if target.exists():
        for src, dst in ((target, previous_path(target)), (sidecar_path(target), sidecar_path(previous_path(target)))):
            if src.exists():
                write_bytes(src.read_bytes(), dst)
    write_bytes(candidate.read_bytes(), target)
    write_bytes(sidecar_path(candidate).read_bytes(), sidecar_path(target))
    return verify_model(target, kind)


def retire(target: Path, kind: str) -> bool:
    """Take the model in use out of service (a baseline serves instead), keeping it as `.previous`.

    The model file goes before its sidecar, so an interrupted retirement leaves no loadable model.
    """
    if not target.exists():
        return False
    for src, dst in ((target, previous_path(target)), (sidecar_path(target), sidecar_path(previous_path(target)))):
        if src.exists():
            write_bytes(src.read_bytes(), dst)
    target.unlink()
    sidecar_path(target).unlink(missing_ok=True)
    return True
