"""Loading the logic modules the assets use does not load the ML or HTTP libraries: every process
that loads the definitions (each `update` slot, `dg check defs`) would pay for them at start-up."""

import json
import subprocess
import sys

HEAVY = ("xgboost", "sklearn", "scipy", "joblib", "threadpoolctl", "requests")
PACKAGES = ("ml", "sources", "plays", "imports")

PROBE = f"""
import importlib, json, pkgutil, sys
import spotify_brain_assets
names = []
for package in {PACKAGES!r}:
    module = importlib.import_module("spotify_brain_assets." + package)
    for info in pkgutil.iter_modules(module.__path__):
        names.append(importlib.import_module(f"spotify_brain_assets.{{package}}.{{info.name}}").__name__)
print(json.dumps({{"modules": names, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""


def test_logic_modules_import_no_ml_or_http_library():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert {"spotify_brain_assets.ml.classifiers", "spotify_brain_assets.ml.clusters", "spotify_brain_assets.ml.families",
            "spotify_brain_assets.ml.model_store", "spotify_brain_assets.sources.http"} <= set(loaded["modules"])
    assert loaded["heavy"] == [], f"imported at module level: {loaded['heavy']}"
