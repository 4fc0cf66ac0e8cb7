"""Publishing the dashboard into a website repository, with a local bare repository as its remote."""

import subprocess

import pytest

from spotify_brain_assets.assets.dashboard import WebsiteDeployment
from spotify_brain_assets.dashboard.deploy import DeployError, deploy
from spotify_brain_assets.storage.paths import DataPaths

from .conftest import demo_at, materializations, run_job, step_errors, store_for

FILES = {"dashboard_data.json": "spotify-brain/dashboard_data.json", "index.html": "spotify-brain/index.html"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def website(tmp_path):
    """A website checkout with one commit and an `origin` remote that is a local bare repository."""
    remote = tmp_path / "website.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo = tmp_path / "website"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "index.md").write_text("# my site\n")
    (repo / "draft.md").write_text("unrelated work in progress\n")
    git(repo, "add", "index.md")
    git(repo, "-c", "user.name=Owner", "-c", "user.email=owner@localhost", "commit", "-qm", "site")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo, remote


@pytest.fixture
def export(tmp_path):
    directory = tmp_path / "export"
    directory.mkdir()
    (directory / "dashboard_data.json").write_text('{"v": 1}\n')
    (directory / "index.html").write_text("<html></html>\n")
    return directory


def test_deploy_commits_only_the_dashboard_files_and_pushes(website, export):
    repo, remote = website
    git(repo, "add", "draft.md")  # the owner's staged work must not be swept into our commit
    outcome = deploy(export, repo, FILES, push=True)
    assert outcome.committed and outcome.pushed
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()) == sorted(FILES.values())
    assert git(remote, "rev-parse", "main") == outcome.committed
    assert "draft.md" in git(repo, "diff", "--cached", "--name-only")  # still staged, not committed
    # nothing changed: no new commit
    again = deploy(export, repo, FILES, push=True)
    assert again.committed is None and "nothing changed: no commit" in again.messages
    assert git(repo, "rev-list", "--count", "HEAD") == "2"


def test_targets_outside_the_repository_are_refused(website, export):
    repo, _ = website
    with pytest.raises(DeployError, match="outside the website repository"):
        deploy(export, repo, {"dashboard_data.json": "../elsewhere/dashboard_data.json"})
    with pytest.raises(DeployError, match=".git"):
        deploy(export, repo, {"dashboard_data.json": ".git/hooks/post-commit"})
    assert not (repo.parent / "elsewhere").exists()


def test_a_push_failure_is_reported_and_the_local_dashboard_stays(website, instance, data_root):
    repo, remote = website
    (remote / "hooks" / "pre-receive").write_text("#!/bin/sh\necho 'remote says no' >&2\nexit 1\n")
    (remote / "hooks" / "pre-receive").chmod(0o755)
    from spotify_brain_assets.definitions import defs

    instance.add_dynamic_partitions("ingestions", ["20261126_090000"])
    result = defs.resolve_job_def("update").execute_in_process(
        instance=instance,
        partition_key="20261126_090000",
        resources={
            "store": store_for(data_root),
            "listening_source": demo_at("2026-11-26T09:00:00Z"),
            "website": WebsiteDeployment(repo_path=str(repo), files=FILES, push=True),
        },
        raise_on_error=False,
    )
    assert not result.success
    assert "git push to origin failed" in step_errors(result) and "remote says no" in step_errors(result)
    assert DataPaths.at(data_root).dashboard_json.exists()
    assert "dashboard" in materializations(result)
    assert (repo / "spotify-brain" / "dashboard_data.json").read_text() == DataPaths.at(data_root).dashboard_json.read_text()
    assert git(remote, "rev-list", "--count", "main") == "1"  # the remote has only the site


def test_not_configured_is_a_log_line_not_an_error(instance, data_root):
    result = run_job("update", instance, data_root, demo_at("2026-11-26T09:00:00Z"), "20261126_090000")
    assert result.success
    assert materializations(result)["published_dashboard"]["configured"] is False


def test_a_failing_recommendation_service_never_fails_the_dashboard(instance, data_root):
    from spotify_brain_assets.resources import DemoListenerResource
    from spotify_brain_assets.sources.demo import DemoListener

    class NoRecommendations(DemoListener):
        def recommendations(self, seed_ids, targets, size=10):
            raise ConnectionError("recommendation service unreachable")

    class Source(DemoListenerResource):
        def source(self, timezone):
            return NoRecommendations(seed=self.seed, timezone=timezone, now=self.now().to_pydatetime())

    clock = "2026-11-26T09:00:00Z"
    assert run_job("update", instance, data_root, Source(clock=clock), "20261126_090000").success
    assert run_job("full_retrain", instance, data_root, Source(clock=clock)).success
    import json

    data = json.loads(DataPaths.at(data_root).dashboard_json.read_text())
    assert data["next_prediction"]["available"] is True
    assert data["next_prediction"]["recommended_tracks"] == []
