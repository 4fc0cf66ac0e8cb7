"""`spotify-brain authorize` against the fake's /authorize and token endpoints, with a real browser hop."""

import stat
from datetime import datetime, timezone

import pytest
import requests
from dotenv import dotenv_values

from spotify_brain_assets.cli import main
from spotify_brain_assets.fakes import FakeServer
from spotify_brain_assets.sources.authorize import AuthorizationFailed, authorize, write_env

from .spotify_fakes import tokens

pytestmark = pytest.mark.fast  # no subprocess, no browser, no Dagster run

NOW = datetime(2026, 9, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def fake():
    with FakeServer() as server:
        yield server


def browser(url: str) -> None:
    """What a user's browser does: visit the consent page and follow Spotify's redirect."""
    requests.get(url, timeout=5)


def read_env(path):
    """The values as every entry point loads them (python-dotenv)."""
    return dotenv_values(path)


def test_the_flow_writes_a_private_env_with_a_working_refresh_token(fake, tmp_path):
    env = tmp_path / ".env"
    env.write_text("DAGSTER_HOME=/somewhere\nSPOTIFY_REFRESH_TOKEN=the-old-one\n")
    said = []
    authorize(
        fake.client_id, fake.client_secret, port=0, env_file=env, accounts_url=fake.accounts_url,
        open_url=browser, timeout=10, say=said.append, now=lambda: NOW,
    )
    values = read_env(env)
    assert values["DAGSTER_HOME"] == "/somewhere"
    assert values["SPOTIFY_CLIENT_ID"] == fake.client_id and values["SPOTIFY_CLIENT_SECRET"] == fake.client_secret
    assert values["SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT"] == "2026-09-20T12:00:00+00:00"
    assert values["SPOTIFY_REFRESH_TOKEN"] in fake.refresh_tokens and values["SPOTIFY_REFRESH_TOKEN"] != "the-old-one"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert tokens(fake, refresh_token=values["SPOTIFY_REFRESH_TOKEN"]).access_token()  # it works

    (visit,) = fake.authorizations
    assert visit["scope"] == "user-read-recently-played" and visit["response_type"] == "code"
    assert visit["redirect_uri"].startswith("http://127.0.0.1:") and visit["redirect_uri"].endswith("/callback")
    exchange = fake.requests_to("token")[0]
    assert exchange.auth_scheme == "Basic" and exchange.form_keys == ("code", "grant_type", "redirect_uri")
    printed = "\n".join(said)
    assert values["SPOTIFY_REFRESH_TOKEN"] not in printed and fake.client_secret not in printed


def test_a_declined_consent_writes_nothing(fake, tmp_path):
    fake.deny_authorization = True
    env = tmp_path / ".env"
    with pytest.raises(AuthorizationFailed, match="access_denied"):
        authorize(fake.client_id, fake.client_secret, port=0, env_file=env, accounts_url=fake.accounts_url,
                  open_url=browser, timeout=10, say=lambda s: None)
    assert not env.exists()


def test_a_redirect_with_a_foreign_state_is_refused(fake, tmp_path):
    def forged(url: str) -> None:
        redirect = requests.utils.unquote(url.split("redirect_uri=")[1].split("&")[0])
        requests.get(redirect, params={"code": "stolen", "state": "not-ours"}, timeout=5)

    with pytest.raises(AuthorizationFailed, match="state does not match"):
        authorize(fake.client_id, fake.client_secret, port=0, env_file=tmp_path / ".env", accounts_url=fake.accounts_url,
                  open_url=forged, timeout=10, say=lambda s: None)


def test_the_cli_subcommand_gives_up_after_its_timeout(fake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", fake.accounts_url)
    code = main(["authorize", "--no-browser", "--port", "0", "--timeout", "0.2", "--env-file", str(tmp_path / ".env")])
    out = capsys.readouterr().out
    assert code == 1 and "no answer from Spotify within 0.2 s" in out
    assert f"{fake.accounts_url}/authorize?client_id={fake.client_id}" in out
    assert fake.client_secret not in out and not (tmp_path / ".env").exists()


def test_values_that_need_quoting_read_back_unchanged_and_other_lines_stay(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# mine\nexport SPOTIFY_CLIENT_ID=old\nDAGSTER_HOME=/somewhere\n")
    env.chmod(0o644)
    values = {"SPOTIFY_CLIENT_ID": "new", "SPOTIFY_CLIENT_SECRET": "a b #c $HOME 'q' \\x"}
    write_env(env, values)
    assert read_env(env) == {"SPOTIFY_CLIENT_ID": "new", "DAGSTER_HOME": "/somewhere", **values}
    assert env.read_text().startswith("# mine\n") and env.read_text().count("SPOTIFY_CLIENT_ID") == 1
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no draft left beside it


def test_a_failed_write_leaves_the_old_env_whole(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("SPOTIFY_CLIENT_ID=old\nSPOTIFY_REFRESH_TOKEN=old-token\n")
    calls = []

    def crash_on_second(path, key, value):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, key, value)

    from spotify_brain_assets.sources import authorize as module

    real = module.set_key
    monkeypatch.setattr(module, "set_key", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        write_env(env, {"SPOTIFY_CLIENT_ID": "new", "SPOTIFY_REFRESH_TOKEN": "new-token"})
    assert read_env(env) == {"SPOTIFY_CLIENT_ID": "old", "SPOTIFY_REFRESH_TOKEN": "old-token"}
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_a_household_listener_gets_the_variables_listeners_yaml_names(fake, tmp_path, monkeypatch, capsys):
    listeners = tmp_path / "listeners.yaml"
    listeners.write_text(
        "listeners:\n"
        "  - {name: alice, source: spotify, credentials: {client_id: HOUSE_APP_ID, client_secret: HOUSE_APP_SECRET}}\n"
        "  - {name: bob, source: demo}\n"
    )
    monkeypatch.setenv("SPOTIFY_BRAIN_LISTENERS", str(listeners))
    monkeypatch.setenv("HOUSE_APP_ID", fake.client_id)  # the household's shared app
    monkeypatch.setenv("HOUSE_APP_SECRET", fake.client_secret)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_URL", fake.accounts_url)
    monkeypatch.setattr("spotify_brain_assets.sources.authorize.webbrowser.open", browser)
    env = tmp_path / ".env"
    assert main(["authorize", "--listener", "alice", "--port", "0", "--timeout", "10", "--env-file", str(env)]) == 0
    values = read_env(env)
    assert set(values) == {"HOUSE_APP_ID", "HOUSE_APP_SECRET", "ALICE_SPOTIFY_REFRESH_TOKEN", "ALICE_SPOTIFY_AUTHORIZED_AT"}
    assert values["ALICE_SPOTIFY_REFRESH_TOKEN"] in fake.refresh_tokens

    assert main(["authorize", "--listener", "bob", "--env-file", str(env)]) == 1
    assert "its source is demo, not spotify" in capsys.readouterr().out
    assert main(["authorize", "--listener", "zed", "--env-file", str(env)]) == 1
    assert "--listener zed: not in" in capsys.readouterr().out
