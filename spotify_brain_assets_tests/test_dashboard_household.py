"""The household page: who listened when today, the household's top artists and moods, and only
the listeners who chose to share."""

import json
from datetime import timedelta

import pandas as pd
import pytest

from spotify_brain_assets.dashboard.household import HouseholdMember, build_household, write_household
from spotify_brain_assets.plays.schema import HISTORY_COLUMNS, empty
from spotify_brain_assets.sources.demo import MOOD_NAMES, DemoListener

from .browser import chromium, open_rendered, serve
from .test_dashboard_page import hover, no_placeholders_leak, severe, texts

TZ = "Europe/Stockholm"
NOW = pd.Timestamp("2026-11-26T15:00:00Z")  # 16:00 in Stockholm


def history(rows: list[tuple], origin: str = "spotify") -> pd.DataFrame:
    """(played_at, artist_name, mood_cluster_id, duration_ms) rows as a history frame."""
    df = pd.DataFrame(rows, columns=["played_at", "artist_name", "mood_cluster_id", "duration_ms"])
    df = df.assign(track_id=[f"t{i}" for i in range(len(df))], track_name="a song", session_id=0, origin=origin)
    return df.reindex(columns=HISTORY_COLUMNS).assign(played_at=pd.to_datetime(df["played_at"], utc=True))


def clusters(labels: dict[int, str]) -> dict:
    return {"clusters": [{"cluster_id": cid, "label": label} for cid, label in labels.items()]}


MIN = 60_000


@pytest.mark.fast
def test_minutes_per_local_hour_split_plays_over_the_hours_they_spanned():
    alice = history([
        ("2026-11-25T22:58:00Z", "Early", 0, 4 * MIN),  # 23:54–23:58 yesterday: not today
        ("2026-11-25T23:02:00Z", "Early", 0, 4 * MIN),  # 23:58–00:02: 2 minutes today, in hour 0
        ("2026-11-26T07:05:00Z", "Morning", 0, 10 * MIN),  # 07:55–08:05: 5 in hour 7, 5 in hour 8
        ("2026-11-26T07:08:00Z", "Morning", 0, 3 * MIN),  # 08:05–08:08
        ("2026-11-26T16:30:00Z", "Later", 0, 3 * MIN),  # after `now`: a frozen clock lags what was stored
    ])
    bob = history([("2026-11-26T14:40:00Z", "Afternoon", 0, 5 * MIN)])  # 15:35–15:40
    data = build_household([HouseholdMember("alice", alice, share=True), HouseholdMember("bob", bob, share=True)], NOW, TZ)
    a, b = (entry["today"] for entry in data["listeners"])
    assert a["hours"][0] == 2.0 and a["hours"][7] == 5.0 and a["hours"][8] == 8.0 and a["hours"][23] == 0.0
    assert sum(a["hours"]) == a["minutes"] == 15.0 and a["plays"] == 3  # the play ending after midnight counts today
    assert b["hours"][15] == 5.0 and b["minutes"] == 5.0 and b["plays"] == 1
    assert len(a["hours"]) == len(b["hours"]) == 24
    assert a["last_play"] == "2026-11-26T08:08:00+01:00"
    assert data["date"] == "2026-11-26" and data["generated_at"] == "2026-11-26T16:00:00+01:00"
    assert [entry["dashboard"] for entry in data["listeners"]] == ["../listeners/alice/export/index.html", "../listeners/bob/export/index.html"]


@pytest.mark.fast
def test_a_25_hour_day_keeps_both_repeated_hours_and_a_23_hour_day_skips_one():
    # 2026-10-25 in Stockholm: 03:00 summer time becomes 02:00 winter time; 02:00–03:00 happens twice
    autumn = history([("2026-10-25T00:30:00Z", "A", 0, 10 * MIN), ("2026-10-25T01:30:00Z", "A", 0, 10 * MIN),
                      ("2026-10-25T22:50:00Z", "A", 0, 10 * MIN)])  # 23:40–23:50, the day's 25th hour
    day = build_household([HouseholdMember("a", autumn, share=True)], pd.Timestamp("2026-10-25T22:59:00Z"), TZ)["listeners"][0]["today"]
    assert day["hours"][2] == 20.0 and day["hours"][23] == 10.0 and day["minutes"] == 30.0
    # 2026-03-29: 02:00 becomes 03:00; no hour 2
    spring = history([("2026-03-29T01:10:00Z", "A", 0, 10 * MIN)])  # 03:00–03:10 summer time
    day = build_household([HouseholdMember("a", spring, share=True)], pd.Timestamp("2026-03-29T20:00:00Z"), TZ)["listeners"][0]["today"]
    assert day["hours"][2] == 0.0 and day["hours"][3] == 10.0


@pytest.mark.fast
def test_listeners_who_do_not_share_never_appear_not_even_as_counts(tmp_path):
    shared = history([("2026-11-26T10:00:00Z", "Both Like", 0, 3 * MIN)])
    secret = history([("2026-11-26T10:00:00Z", "Both Like", 0, 3 * MIN), ("2026-11-26T11:00:00Z", "Secret Artist", 1, 3 * MIN)], origin="demo")
    members = [
        HouseholdMember("alice", shared, share=True, clusters=clusters({0: "Low energy, positive"})),
        HouseholdMember("evangeline", secret, share=False, display_name="Eve Private", clusters=clusters({0: "Low energy, positive", 1: "Hidden mood"})),
        HouseholdMember("mallory", secret),  # sharing is opt-in: unset is no
    ]
    stats = write_household(tmp_path, members, NOW, TZ)
    assert stats["listeners"] == 1 and stats["plays_today"] == 1
    data = json.loads((tmp_path / "household_data.json").read_text())
    assert [entry["name"] for entry in data["listeners"]] == ["alice"]
    assert data["top_artists"] == [{"artist_name": "Both Like", "plays": 1, "minutes": 3.0, "listeners": 1}]
    assert [m["mood_label"] for m in data["top_moods"]] == ["Low energy, positive"] and data["top_moods"][0]["listeners"] == 1
    assert data["period"]["plays"] == 1 and data["period"]["listeners"] == 1 and data["is_demo"] is False
    for name in ("household_data.json", "household.html"):
        text = (tmp_path / name).read_text()
        for word in ("evangeline", "Eve Private", "mallory", "Secret Artist", "Hidden mood", str(tmp_path)):
            assert word not in text, (name, word)


@pytest.mark.fast
def test_top_artists_add_up_plays_across_listeners_and_count_who_shares_them():
    alice = history([
        ("2026-11-26T08:00:00Z", "Duo A, Duo B", 0, 3 * MIN),  # a play credits each of its artists
        ("2026-11-26T08:05:00Z", "Solo", 1, 3 * MIN),
        ("2026-11-26T08:10:00Z", "Solo", 1, 3 * MIN),
        ("2026-11-10T08:10:00Z", "Long Ago", 1, 3 * MIN),  # before the last 7 days
    ])
    bob = history([("2026-11-25T20:00:00Z", "Solo", 4, 3 * MIN), ("2026-11-25T20:05:00Z", "Duo A", 5, 3 * MIN)])
    members = [
        HouseholdMember("alice", alice, share=True, clusters=clusters({0: "High energy, positive", 1: "High energy, positive (2)"})),
        HouseholdMember("bob", bob, share=True, clusters=clusters({4: "High energy, positive", 5: "Low energy, negative, acoustic"})),
    ]
    data = build_household(members, NOW, TZ)
    top = [(a["artist_name"], a["plays"], a["listeners"]) for a in data["top_artists"]]
    assert top == [("Solo", 3, 2), ("Duo A", 2, 2), ("Duo B", 1, 1)]
    # moods are named by each listener's own clusters: the same kind of mood adds up across listeners
    moods = [(m["mood_label"], m["plays"], m["listeners"], m["share"]) for m in data["top_moods"]]
    assert moods == [("High energy, positive", 4, 2, 0.8), ("Low energy, negative, acoustic", 1, 1, 0.2)]
    assert data["period"]["days"] == 7 and data["period"]["plays"] == 5


@pytest.mark.fast
def test_empty_households_histories_and_days_without_plays(tmp_path):
    assert write_household(tmp_path, [], NOW, TZ) == {
        "listeners": 0, "listened_today": 0, "plays_today": 0, "minutes_today": 0, "top_artist": "none", "demo_data": False}
    data = json.loads((tmp_path / "household_data.json").read_text())
    assert data["listeners"] == [] and data["top_artists"] == [] and data["top_moods"] == []
    assert (tmp_path / "household.html").exists()

    yesterday = history([("2026-11-25T12:00:00Z", "Yesterday", 0, 3 * MIN)])
    members = [HouseholdMember("new", empty(HISTORY_COLUMNS), share=True), HouseholdMember("idle", yesterday, share=True)]
    data = build_household(members, NOW, TZ)
    new, idle = data["listeners"]
    assert new["today"] == {"plays": 0, "minutes": 0.0, "hours": [0.0] * 24, "last_play": None}
    assert idle["today"]["plays"] == 0 and idle["today"]["hours"] == [0.0] * 24
    assert idle["today"]["last_play"] == "2026-11-25T13:00:00+01:00"
    assert [a["artist_name"] for a in data["top_artists"]] == ["Yesterday"]
    assert data["top_moods"] == []  # no clusters yet: no mood has a name


@pytest.mark.fast
def test_bad_input_is_refused_naming_the_problem():
    ok = history([("2026-11-26T08:00:00Z", "A", 0, 3 * MIN)])
    with pytest.raises(ValueError, match="not a slug"):
        build_household([HouseholdMember("../alice", ok, share=True)], NOW, TZ)
    with pytest.raises(ValueError, match="unique; repeated: alice"):
        build_household([HouseholdMember("alice", ok, share=True), HouseholdMember("alice", ok, share=True)], NOW, TZ)
    with pytest.raises(ValueError, match=r"'bob': its history lacks the columns \['mood_cluster_id'\]"):
        build_household([HouseholdMember("bob", ok.drop(columns="mood_cluster_id"), share=True)], NOW, TZ)
    with pytest.raises(ValueError, match="'Mars/Olympus' is not an IANA timezone"):
        build_household([], NOW, "Mars/Olympus")
    # a listener who does not share is not looked at, whatever its files hold
    assert build_household([HouseholdMember("../x", ok.iloc[:, :2])], NOW, TZ)["listeners"] == []


def demo_household() -> list[HouseholdMember]:
    """Three demo people (different seeds: their catalogs share artist names) with two weeks of plays,
    one newcomer with none, and one who does not share."""
    labels = clusters(dict(enumerate(MOOD_NAMES)))
    members = []
    for seed, name, shown in ((7, "alice", "Alice"), (8, "bob", None), (9, "charlotte", "Charlotte-Marie Lindqvist-Andersson")):
        plays = DemoListener(seed=seed, timezone=TZ).plays(NOW - timedelta(days=14), NOW)
        plays = plays.assign(mood_cluster_id=plays["mood"], session_id=0, origin="demo", tempo_norm=0.5)
        members.append(HouseholdMember(name, plays.reindex(columns=HISTORY_COLUMNS), share=True, display_name=shown, clusters=labels))
    members.append(HouseholdMember("newcomer", empty(HISTORY_COLUMNS), share=True))
    members.append(HouseholdMember("hidden", members[0].history, share=False))
    return members


@pytest.mark.parametrize("width", [390, 1280])
def test_the_household_page_renders_on_a_phone_and_a_desktop(tmp_path, width):
    members = demo_household()
    export = tmp_path / "export"
    write_household(export, members, NOW, TZ)
    data = json.loads((export / "household_data.json").read_text())
    assert data["top_artists"][0]["listeners"] >= 2  # the demo people share artists
    with serve(export) as url, chromium(width=width, height=900) as driver:
        assert open_rendered(driver, f"{url}/household.html") == "true"
        assert driver.execute_script("return window.innerWidth") == width
        assert driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 0
        links = driver.execute_script("return [...document.querySelectorAll('#today a.dashboard-link')].map(a => [a.textContent, a.getAttribute('href')])")
        assert links == [[m.display_name or m.name, f"../listeners/{m.name}/export/index.html"] for m in members[:4]]
        assert len(driver.find_elements("css selector", "#today .strip:not(.strip-axis) .hour")) == 4 * 24
        listened = driver.find_elements("css selector", "#today .listener[data-name='alice'] .hour.listened")
        assert len(listened) == sum(1 for m in data["listeners"][0]["today"]["hours"] if m > 0) > 0
        assert driver.find_elements("css selector", "#today .hour.future")  # after 16:00: later today
        assert "nothing played today" in texts(driver, ".listener[data-name='newcomer'] .listener-summary")[0]
        assert texts(driver, "#household-artists .name") == [a["artist_name"] for a in data["top_artists"]]
        assert texts(driver, "#household-moods .name") == [m["mood_label"] for m in data["top_moods"]]
        assert "simulated listener" in texts(driver, "#demo-banner")[0]
        for section in ("today", "household-artists", "household-moods"):
            box = driver.find_element("id", section)
            assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", box), section
        assert not driver.find_elements("css selector", ".listener[data-name='hidden']")
        assert no_placeholders_leak(driver) and severe(driver) == []
        if width >= 1280:  # a mouse: the tooltip of an hour says who and how long
            busiest = max(range(24), key=lambda h: data["listeners"][0]["today"]["hours"][h])
            assert hover(driver, f".listener[data-name='alice'] .hour[data-hour='{busiest}']").startswith("Alice, ")
        # opened from disk, alone: the copy it embeds
        page = tmp_path / "alone" / "household.html"
        page.parent.mkdir()
        page.write_bytes((export / "household.html").read_bytes())
        assert open_rendered(driver, page.as_uri()) == "true"
        assert len(driver.find_elements("css selector", "#today .listener")) == 4 and severe(driver) == []
