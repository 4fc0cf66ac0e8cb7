"""The dashboard pages in a real headless Chromium, served over HTTP or opened from disk."""

import json
import shutil

import pandas as pd
import pytest

from spotify_brain_assets.dashboard.build import Inputs, build_dashboard
from spotify_brain_assets.dashboard.schema import dashboard_json
from spotify_brain_assets.dashboard.page import render_page
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS
from spotify_brain_assets.storage.paths import DataPaths

from .browser import chromium, open_rendered, serve
from .conftest import demo_at, run_job

CLOCK, SLOT = "2026-11-26T09:00:00Z", "20261126_090000"
SECTIONS = ["stats", "recap", "next-mood", "session-hours", "mood-map", "trajectory", "recent", "models", "drift", "freshness"]


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


@pytest.fixture(scope="module")
def demo_data(demo_export):
    return json.loads((demo_export / "dashboard_data.json").read_text())


def write_export(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dashboard_data.json").write_text(json.dumps(data))
    (directory / "index.html").write_text(render_page(data))
    return directory


def texts(driver, selector):
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def no_placeholders_leak(driver):
    """No value the page failed to fill: JavaScript's null, undefined or NaN never reaches the reader."""
    words = set(driver.find_element("tag name", "body").text.replace("\n", " ").split(" "))
    return not words & {"null", "undefined", "NaN", "null,", "undefined,"}


def hover(driver, selector):
    """Move the mouse onto an element; returns the tooltip's text (empty when none shows)."""
    from selenium.webdriver.common.action_chains import ActionChains

    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    target = driver.find_element("css selector", selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    ActionChains(driver).move_to_element(target).perform()
    tip = driver.find_element("id", "tooltip")
    want = driver.execute_script("const t = arguments[0].closest('[data-tip]'); return t && t.getAttribute('data-tip')", target)
    try:  # events are dispatched asynchronously: wait for the tooltip to show what the element holds
        WebDriverWait(driver, 3).until(lambda d: tip.is_displayed() == bool(want) and (not want or tip.text == want))
    except TimeoutException:
        pass
    return tip.text if tip.is_displayed() else ""


def test_the_demo_dashboard_renders_everything_it_holds(demo_export, demo_data):
    from selenium.webdriver.support.ui import WebDriverWait

    data = demo_data
    dashboard_json(data)
    assert data["is_demo"] is True and len(data["recently_played"]) == 25
    assert len(data["next_prediction"]["recommended_tracks"]) == 5  # from the demo listener's catalog
    assert (demo_export / "recap.html").exists()
    with serve(demo_export) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "simulated listener" in texts(driver, "#demo-banner")[0]
        assert not texts(driver, "#stale-banner")  # ingested moments ago (wall clock), whatever the demo clock says
        four_weeks = data["stats"]["ranges"]["4w"]  # the range shown first
        tiles = texts(driver, "#stats .tile .value")
        assert tiles[1] == f"{four_weeks['plays']:,}" and tiles[3] == f"{four_weeks['artists']:,}"
        assert texts(driver, "#stats .top-list .name")[0] == four_weeks["top_artists"][0]["artist_name"]
        assert len(driver.find_elements("css selector", "#stats rect.clock-bar")) == 24
        assert len(driver.find_elements("css selector", "#stats rect.day")) == len(data["stats"]["calendar"]["plays"]) == 365
        year = data["recap"]["years"][0]
        assert texts(driver, "#recap-title")[0].startswith(f"{year['year']} so far")
        assert texts(driver, "#mood-of-year") == [year["mood_of_year"]["mood_label"]]
        assert texts(driver, "#next-mood-label") == [data["next_prediction"]["mood_label"]]
        assert len(texts(driver, "#next-mood .bar-row")) == len(data["next_prediction"]["probabilities"])
        assert len(driver.find_elements("css selector", "#next-mood li")) == 5
        assert len(driver.find_elements("css selector", "#session-hours rect.hour-bar")) == 24
        assert len(driver.find_elements("css selector", "#session-hours rect.share-bar")) == 24
        assert len(driver.find_elements("css selector", "#mood-map circle.cluster-dot")) == len(data["mood_clusters"])
        assert sorted(texts(driver, "#mood-map .cluster-label")) == sorted(c["label"] for c in data["mood_clusters"])  # one name everywhere
        assert len(driver.find_elements("css selector", "#recent li.track")) == 25
        assert data["recently_played"][0]["track_name"] in texts(driver, "#recent li.track")[0]
        # the demo's album art is inline SVG: it loads offline (lazily, once scrolled to)
        driver.execute_script("document.getElementById('recent').scrollIntoView()")
        loaded = "return [...document.querySelectorAll('#recent img.cover')].filter(i => i.complete && i.naturalWidth > 0).length"
        WebDriverWait(driver, 5).until(lambda d: d.execute_script(loaded) == 25)
        for kind in ("mood", "session"):
            assert texts(driver, f"#model-{kind} .summary") == [data["models"][kind]["summary"]]
        live = [b["summary"] for b in (data["live_quality"]["next_mood"], data["live_quality"]["session_start"]) if b]
        assert texts(driver, "#live-quality li") == live
        # the technical figures wait behind a toggle
        assert not driver.find_element("css selector", "#model-mood details table").is_displayed()
        driver.find_element("css selector", "#model-mood details summary").click()
        rows = texts(driver, "#model-mood tr.baseline-row")
        assert any("the same mood as the last song" in r for r in rows) and "log loss (lower is better)" in texts(driver, "#model-mood th")
        assert len(texts(driver, "#drift li.drift-flag")) == len(data["drift"]["flags"])
        assert "compared with the 30 days before" in texts(driver, "#drift p")[0]
        freshness = " ".join(texts(driver, "#freshness dl"))
        assert "Plays waiting for audio features" in freshness and str(data["freshness"]["pending_features"]) in freshness
        assert "not scheduled when this page was made" in freshness  # no daemon in tests: no next run is claimed
        assert "refreshes every" not in texts(driver, "#footer")[0]
        assert no_placeholders_leak(driver) and severe(driver) == []


@pytest.mark.parametrize("width", [1280, 820, 390])
def test_every_section_fits_with_whole_mood_names_and_no_orphan_cells(demo_export, width):
    with serve(demo_export) as url, chromium(width=width, height=900) as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert driver.execute_script("return window.innerWidth") == width
        assert driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0
        for section in SECTIONS:
            box = driver.find_element("id", section)
            assert box.size["height"] > 60 and box.size["width"] <= width
            assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", box), section
        names = driver.execute_script("""return [...document.querySelectorAll('.mood-name')].map(e => [e.textContent, e.dataset.full,
            e.scrollWidth <= e.clientWidth + 1, getComputedStyle(e).textOverflow, e.getBoundingClientRect().right <= window.innerWidth])""")
        assert len(names) > 20
        for text, full, fits, overflow, inside in names:
            assert text == full and fits and overflow != "ellipsis" and inside, (text, full)
        # rows of cards fill the grid: no card sits alone in a row meant for more
        rows = driver.execute_script("""const main = document.querySelector('main'), rows = {};
            for (const c of main.children) { const r = c.getBoundingClientRect(); (rows[Math.round(r.top)] ||= []).push(r.width); }
            const gap = parseFloat(getComputedStyle(main).columnGap), inner = main.clientWidth - parseFloat(getComputedStyle(main).paddingLeft) * 2;
            return Object.values(rows).map(ws => Math.abs(ws.reduce((a, b) => a + b, 0) + gap * (ws.length - 1) - inner));""")
        assert max(rows) < 2


def test_tooltips_appear_on_hover_on_every_chart(demo_export, demo_data):
    busiest_hour = max(range(24), key=lambda h: demo_data["stats"]["ranges"]["4w"]["clock"][h])
    with serve(demo_export) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert not driver.find_element("id", "tooltip").is_displayed()
        assert f"{demo_data['stats']['ranges']['4w']['clock'][busiest_hour]} plays" in hover(driver, f"#stats rect.clock-bar[data-hour='{busiest_hour}']")
        assert "plays" in hover(driver, "#stats rect.day:last-of-type") or "play" in hover(driver, "#stats rect.day:last-of-type")
        assert "chance of a session starting" in hover(driver, "#session-hours rect.hour-bar[data-hour='8']")
        assert "of your sessions started" in hover(driver, "#session-hours rect.share-bar[data-hour='8']")
        biggest = max(demo_data["mood_clusters"], key=lambda c: c["share"])
        assert hover(driver, f"#mood-map circle.cluster-dot[data-cluster='{biggest['cluster_id']}']").startswith(biggest["label"])
        assert "valence" in hover(driver, "#trajectory circle.traj-energy")
        assert "plays" in hover(driver, "#recap rect.month-bar")
        hover(driver, "#recent")  # away from any chart: the tooltip goes
        assert not driver.find_element("id", "tooltip").is_displayed()


def test_a_tap_shows_a_tooltip_on_a_phone(demo_export):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.interaction import POINTER_TOUCH
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    with serve(demo_export) as url, chromium(width=390, height=844) as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        bar = driver.find_element("css selector", "#session-hours rect.hour-bar[data-hour='8']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar)
        actions = ActionBuilder(driver, mouse=PointerInput(POINTER_TOUCH, "finger"))
        actions.pointer_action.move_to(bar).pointer_down().pointer_up()
        actions.perform()
        tip = driver.find_element("id", "tooltip")
        assert tip.is_displayed() and "chance of a session starting" in tip.text
        assert tip.rect["x"] >= 0 and tip.rect["x"] + tip.rect["width"] <= 390


def test_the_range_switch_shows_each_range(demo_export, demo_data):
    with serve(demo_export) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        for key in ["7d", "12m", "all", "4w"]:
            r = demo_data["stats"]["ranges"][key]
            driver.find_element("css selector", f"#range-switch button[data-key='{key}']").click()
            assert texts(driver, "#range-switch button[aria-selected='true']") == [r["label"]]
            assert texts(driver, "#stats .tile .value")[1] == f"{r['plays']:,}"
            assert texts(driver, "#stats .top-list .name")[0] == r["top_artists"][0]["artist_name"]
            bars = driver.execute_script("return [...document.querySelectorAll('#stats rect.clock-bar')].map(b => b.getAttribute('data-tip'))")
            assert sum(int(t.split(": ")[1].split(" ")[0].replace(",", "")) for t in bars) == r["plays"]


def test_an_empty_history_renders_without_errors(tmp_path):
    data = build_dashboard(Inputs(history=pd.DataFrame(columns=HISTORY_COLUMNS), now=pd.Timestamp.now(tz="UTC"), timezone="UTC"))
    with serve(write_export(tmp_path / "export", data)) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "Nothing played yet." in texts(driver, "#recent .empty")
        assert texts(driver, "#mood-map .empty") and texts(driver, "#next-mood .empty") and texts(driver, "#recap .empty")
        assert texts(driver, "#stats .tile .value")[1] == "0"
        assert not texts(driver, "#demo-banner")
        assert "not trained yet" in texts(driver, "#model-mood .pill")[0]
        assert no_placeholders_leak(driver) and severe(driver) == []


def test_stale_data_shows_a_banner_and_broken_artwork_degrades(demo_data, tmp_path):
    data = json.loads(json.dumps(demo_data))
    data["freshness"]["stale"] = True
    data["freshness"]["last_ingestion"] = "2026-11-26T01:00:00+00:00"
    data["recently_played"][0]["image_url"] = "http://127.0.0.1:9/missing.png"  # nothing listens there
    data["live_quality"] = {"window": "30d", "session_start": None, "next_mood": {
        "metric": "log_loss", "model": 0.5, "best_baseline": "markov", "baseline": 0.6, "n_scored": 40, "beats_baseline": True,
        "summary": "Over the last 30 days, the next-mood guesses shown here did better than the simple rule."}}
    data["gaps"] = [{"from": "2026-11-20T08:00:00+00:00", "to": "2026-11-21T10:00:00+00:00", "estimated_plays": 40,
                     "plays_in_history": 0, "detected_at": "2026-11-21T10:00:00+00:00"}]
    dashboard_json(data)
    with serve(write_export(tmp_path / "export", data)) as url, chromium() as driver:
        assert open_rendered(driver, f"{url}/index.html") == "true"
        assert "Stale data" in texts(driver, "#stale-banner")[0]
        assert texts(driver, "#live-quality li") == [data["live_quality"]["next_mood"]["summary"]]
        notice = texts(driver, "#gaps-notice")[0]
        assert "plays may be missing" in notice and "about 40 plays missing" in notice
        driver.execute_script("document.getElementById('recent').scrollIntoView()")  # artwork loads lazily
        driver.implicitly_wait(5)
        placeholder = driver.find_elements("css selector", "#recent li.track .cover.placeholder")
        assert len(placeholder) == 1


def test_the_page_fits_a_phone_and_works_opened_from_disk(demo_export, tmp_path):
    page = tmp_path / "index.html"
    shutil.copy(demo_export / "index.html", page)  # no JSON beside it: the embedded copy is used
    with chromium(width=390, height=844) as driver:
        assert open_rendered(driver, page.as_uri()) == "true"
        assert driver.execute_script("return window.innerWidth") == 390
        assert driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert len(driver.find_elements("css selector", "#recent li.track")) == 25
        assert len(driver.find_elements("css selector", "#stats rect.day")) == 365
        assert severe(driver) == []


def test_the_recap_page_alone_holds_only_the_recap_and_no_images(demo_export, demo_data, tmp_path):
    page = tmp_path / "recap.html"
    shutil.copy(demo_export / "recap.html", page)
    embedded = page.read_text().split('id="embedded-data" type="application/json">')[1].split("</script>")[0]
    assert set(json.loads(embedded)) == {"schema_version", "generated_at", "as_of", "timezone", "is_demo", "recap"}
    with chromium(width=390, height=844) as driver:
        assert open_rendered(driver, page.as_uri()) == "true"
        year = demo_data["recap"]["years"][0]
        assert texts(driver, "#recap-title")[0].startswith(str(year["year"]))
        assert [t.split("\n")[0] for t in texts(driver, "#recap .top-list li .name")][:1] == [year["top_artists"][0]["artist_name"]]
        assert driver.find_elements("css selector", "img") == [] and not driver.find_elements("id", "share-recap")
        assert no_placeholders_leak(driver)
        assert "simulated listener" in texts(driver, "#demo-banner")[0]
        assert driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert severe(driver) == []
