"""Publishing the dashboard into a website repository, with a local bare repository as its remote."""

import subprocess

import dagster as dg
import pytest

from spotify_brain_assets.defs.reporting.dashboard import WebsiteDeployment
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


def test_a_push_failure_is_retried_reported_and_pushed_by_a_later_run(website, instance, data_root, quick_retries):
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
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY" and e.step_key == "published_dashboard"]
    assert len(retries) == 3  # the network retry policy's attempts, then the failure

    (remote / "hooks" / "pre-receive").unlink()  # the remote is back; nothing changed locally since
    again = dg.materialize([defs.get_assets_def("published_dashboard")], instance=instance, resources={
        "store": store_for(data_root), "website": WebsiteDeployment(repo_path=str(repo), files=FILES, push=True),
    })
    assert again.success and git(remote, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")


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


def tree_modes(repo) -> dict[str, str]:
    """Path → git file mode of every file in HEAD (120000 is a symbolic link)."""
    lines = git(repo, "ls-tree", "-r", "HEAD").splitlines()
    return {line.split("\t")[1]: line.split()[0] for line in lines}


@pytest.fixture
def victim(tmp_path):
    """A file outside the website repository that publishing must never touch."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text("precious\n")
    return path


def test_a_symlink_at_the_temporary_files_path_is_not_written_through_nor_committed(website, export, victim):
    repo, _ = website
    (repo / "spotify-brain").mkdir()
    for name in FILES:  # the names a fixed temporary used to have
        (repo / "spotify-brain" / f".{name}.tmp").symlink_to(victim)
    outcome = deploy(export, repo, FILES)
    assert victim.read_text() == "precious\n"
    for name, target in FILES.items():
        assert not (repo / target).is_symlink() and (repo / target).read_text() == (export / name).read_text()
    assert outcome.committed and {tree_modes(repo)[t] for t in FILES.values()} == {"100644"}
    assert (repo / "spotify-brain" / ".index.html.tmp").is_symlink()  # left alone, not followed, not committed
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()) == sorted(FILES.values())


@pytest.mark.parametrize("link", ["index.md", "outside"], ids=["inside the repository", "outside it"])
def test_a_symlink_at_a_target_is_refused_and_nothing_is_written(website, export, victim, link):
    repo, _ = website
    (repo / "spotify-brain").mkdir()
    (repo / "spotify-brain" / "index.html").write_text("old page\n")
    (repo / "spotify-brain" / "dashboard_data.json").symlink_to(repo / "index.md" if link == "index.md" else victim)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(DeployError, match="spotify-brain/dashboard_data.json: it is a symbolic link"):
        deploy(export, repo, FILES)
    assert (repo / "index.md").read_text() == "# my site\n" and victim.read_text() == "precious\n"
    assert (repo / "spotify-brain" / "index.html").read_text() == "old page\n"  # checked before any copy
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "diff", "--cached", "--name-only") == ""


@pytest.mark.parametrize("inside", [True, False], ids=["to a folder of the repository", "to a folder outside"])
def test_a_symlinked_target_folder_is_refused(website, export, victim, inside):
    repo, _ = website
    (repo / "docs").mkdir()
    (repo / "spotify-brain").symlink_to(repo / "docs" if inside else victim.parent)
    with pytest.raises(DeployError, match="through spotify-brain: it is a symbolic link"):
        deploy(export, repo, FILES)
    assert list((repo / "docs").iterdir()) == [] and sorted(p.name for p in victim.parent.iterdir()) == ["victim.txt"]


@pytest.mark.parametrize("source", ["../secret.json", "/etc/passwd", "sub/dashboard_data.json", ".hidden", ".."])
def test_sources_must_be_plainly_named_files_of_export(website, export, source):
    repo, _ = website
    (export.parent / "secret.json").write_text('{"token": "s3cret"}')
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(DeployError, match="named plainly"):
        deploy(export, repo, {"dashboard_data.json": "spotify-brain/dashboard_data.json", source: "spotify-brain/data.json"})
    assert not (repo / "spotify-brain").exists() and git(repo, "rev-parse", "HEAD") == head


def test_a_symlink_in_export_is_not_followed(website, export):
    repo, _ = website
    (export.parent / "secret.json").write_text('{"token": "s3cret"}')
    (export / "dashboard_data.json").unlink()
    (export / "dashboard_data.json").symlink_to(export.parent / "secret.json")
    with pytest.raises(DeployError, match="export/dashboard_data.json"):
        deploy(export, repo, FILES)
    assert not (repo / "spotify-brain").exists()


def test_only_regular_files_are_ever_committed(website, victim):
    """The last guard, for a link swapped in between the copy and `git add`: it is unstaged and refused."""
    from spotify_brain_assets.dashboard.deploy import _refuse_staged_links

    repo, _ = website
    (repo / "spotify-brain").mkdir()
    (repo / "spotify-brain" / "dashboard_data.json").symlink_to(victim)
    git(repo, "add", "spotify-brain/dashboard_data.json")
    with pytest.raises(DeployError, match="staged as something other than a regular file"):
        _refuse_staged_links(repo, ["spotify-brain/dashboard_data.json"])
    assert git(repo, "diff", "--cached", "--name-only") == ""


def string_values(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from string_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from string_values(v)


@pytest.mark.parametrize("model", ["absent", "refused"])
def test_the_published_dashboard_names_no_path_of_the_machine(instance, data_root, website, monkeypatch, model):
    import json
    import re
    from pathlib import Path

    monkeypatch.setenv("HOME", str(data_root.parent))  # the data root lies in the home directory
    repo, _ = website
    paths = DataPaths.at(data_root)
    if model == "refused":  # a pickle without its checksum sidecar
        paths.mood_classifier.parent.mkdir(parents=True)
        paths.mood_classifier.write_bytes(b"not a model")
    instance.add_dynamic_partitions("ingestions", ["20261126_090000"])
    from spotify_brain_assets.definitions import defs

    result = defs.resolve_job_def("update").execute_in_process(
        instance=instance,
        partition_key="20261126_090000",
        resources={
            "store": store_for(data_root),
            "listening_source": demo_at("2026-11-26T09:00:00Z"),
            "website": WebsiteDeployment(repo_path=str(repo), files=FILES),
        },
    )
    published = (repo / "spotify-brain" / "dashboard_data.json").read_text()
    assert published == paths.dashboard_json.read_text()
    for text in (published, (repo / "spotify-brain" / "index.html").read_text()):
        assert str(data_root) not in text and str(Path.home()) not in text and str(paths.models) not in text
    absolute = re.compile(r"(^|[\s(\"'=])/[^\s/]+/")
    data = json.loads(published)
    assert [s for s in string_values(data) if absolute.search(s)] == []
    # still says why, by file name
    why = {"absent": "mood_classifier.pkl does not exist yet", "refused": "mood_classifier.pkl has no mood_classifier.pkl.sha256.json"}
    assert why[model] in data["next_prediction"]["reason"]  # the technical reason; `note` says it in plain words
    assert materializations(result)["dashboard"]["local_paths_removed"] == 0  # path-free at the source
