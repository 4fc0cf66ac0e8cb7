"""The dashboard page in a real headless Chromium, loaded from a local HTTP server."""

import json
import shutil

import jsonschema
import pandas as pd
import pytest

from spotify_brain_assets.dashboard.build import Inputs, build_dashboard, schema
from spotify_brain_assets.dashboard.page import render_page
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS
from spotify_brain_assets.storage.paths import DataPaths

from .browser import chromium, open_rendered, serve
from .conftest import demo_at, run_job

CLOCK, SLOT = "2026-11-26T09:00:00Z", "20261126_090000"


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory):
    """A full demo run: update, full_retrain, update again (the dashboard after each job)."""
    import dagster as dg

    root = tmp_path_factory.mktemp("demo") / "data"
    root.mkdir()
    with dg.instance_for_test() as instance:
        assert run_job("update", instance, root, demo_at(CLOCK), SLOT).success
        assert run_job("full_retrain", instance, root, demo_at(CLOCK)).success
        assert run_job("update", instance, root, demo_at("2026-11-26T09:30:00Z"), "20261126_093000").success
    return DataPaths.at(root).export


def write_export(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dashboard_data.json").write_text(json.dumps(data))
    (directory / "index.html").write_text(render_page(data))
    return directory


def texts(driver, selector):
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_the_demo_dashboard_renders_everything_it_holds(demo_export):
    data = json.loads((demo_export / "dashboard_data.json").read_text())
    jsonschema.validate(data, schema())
    assert data["is_demo"] is True and len(data["recently_played"]) == 25
    assert len(data["next_prediction"]["recommended_tracks"]) == 5  # from the demo listener's catalog
    with serve(demo_export) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "simulated listener" in texts(driver, "#demo-banner")[0]
        assert not texts(driver, "#stale-banner")  # ingested moments ago (wall clock), whatever the demo clock says
        assert texts(driver, "#next-mood-label") == [data["next_prediction"]["mood_label"]]
        assert len(texts(driver, "#next-mood .bar-row")) == len(data["next_prediction"]["probabilities"])
        assert len(driver.find_elements("css selector", "#next-mood li")) == 5
        assert len(driver.find_elements("css selector", "#session-hours rect.hour-bar")) == 24
        assert len(driver.find_elements("css selector", "#mood-map circle.cluster-dot")) == len(data["mood_clusters"])
        labels = texts(driver, "#mood-map text.cluster-label")
        assert {c["label"].replace(" energy", "") for c in data["mood_clusters"]} == set(labels)
        assert len(driver.find_elements("css selector", "#recent li.track")) == 25
        first = data["recently_played"][0]
        assert first["track_name"] in texts(driver, "#recent li.track")[0]
        # the demo's album art is inline SVG: it loads offline
        loaded = driver.execute_script("return [...document.querySelectorAll('#recent img.cover')].filter(i => i.naturalWidth > 0).length")
        assert loaded == 25
        rows = texts(driver, "#metrics tr.baseline-row")
        assert any("persistence" in r for r in rows) and any("hour of week" in r for r in rows)
        assert len(texts(driver, "#drift li.drift-flag")) == len(data["drift"]["flags"])
        freshness = " ".join(texts(driver, "#freshness td"))
        assert "Plays waiting for audio features" in freshness and str(data["freshness"]["pending_features"]) in freshness


def test_an_empty_history_renders_without_errors(tmp_path):
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=pd.Timestamp.now(tz="UTC"), timezone="UTC"))
    with serve(write_export(tmp_path / "export", data)) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "Nothing played yet." in texts(driver, "#recent .empty")
        assert texts(driver, "#mood-map .empty") and texts(driver, "#next-mood .empty")
        assert not texts(driver, "#demo-banner")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []


def test_stale_data_shows_a_banner_and_broken_artwork_degrades(demo_export, tmp_path):
    data = json.loads((demo_export / "dashboard_data.json").read_text())
    data["freshness"]["stale"] = True
    data["freshness"]["last_ingestion"] = "2026-11-26T01:00:00+00:00"
    data["recently_played"][0]["image_url"] = "http://127.0.0.1:9/missing.png"  # nothing listens there
    with serve(write_export(tmp_path / "export", data)) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "Stale data" in texts(driver, "#stale-banner")[0]
        driver.implicitly_wait(5)
        placeholder = driver.find_elements("css selector", "#recent li.track .cover.placeholder")
        assert len(placeholder) == 1


def test_the_page_fits_a_phone_and_works_opened_from_disk(demo_export, tmp_path):
    page = tmp_path / "index.html"
    shutil.copy(demo_export / "index.html", page)  # no JSON beside it: the embedded copy is used
    with chromium(width=390, height=844) as driver:
        assert open_rendered(driver, page.as_uri()) == "true"
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert len(driver.find_elements("css selector", "#recent li.track")) == 25
