import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import PROJECT_DIR

import deployment
from common import PipelineError
from deployment import current_release, deploy_files, releases_path

NAMES = ["trainedmodel.pkl", "latestscore.txt", "ingestedfiles.txt"]


def make_sources(folder, version):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NAMES:
        (folder / name).write_text(f"{name} version {version}\n")
        paths.append(folder / name)
    return paths


def deployed_versions(prod_path):
    return {(prod_path / name).read_text().split()[-1] for name in NAMES}


def test_deployment_copies_the_three_files(trained_project, config):
    prod = config.prod_deployment_path
    assert sorted(p.name for p in prod.iterdir()) == sorted(NAMES)
    assert (prod / "trainedmodel.pkl").read_bytes() == (
        config.output_model_path / "trainedmodel.pkl"
    ).read_bytes()
    assert (prod / "latestscore.txt").read_text() == (
        config.output_model_path / "latestscore.txt"
    ).read_text()
    assert (prod / "ingestedfiles.txt").read_text() == (
        config.output_folder_path / "ingestedfiles.txt"
    ).read_text()


def test_redeploying_switches_production_to_the_new_files(tmp_path):
    prod = tmp_path / "production_deployment"
    first = deploy_files(make_sources(tmp_path / "v1", 1), prod)
    second = deploy_files(make_sources(tmp_path / "v2", 2), prod)
    assert deployed_versions(prod) == {"2"}
    assert current_release(prod) == second and first.is_dir()


def test_a_missing_source_file_fails_before_production_changes(tmp_path):
    prod = tmp_path / "production_deployment"
    deploy_files(make_sources(tmp_path / "v1", 1), prod)
    sources = make_sources(tmp_path / "v2", 2)
    sources[1].unlink()
    with pytest.raises(PipelineError, match=f"missing file\\(s\\): {sources[1]}; production left unchanged"):
        deploy_files(sources, prod)
    assert deployed_versions(prod) == {"1"}
    assert len(list(releases_path(prod).iterdir())) == 1


def test_a_plain_production_folder_is_kept_as_a_release(tmp_path):
    prod = tmp_path / "production_deployment"
    make_sources(prod, 0)
    deploy_files(make_sources(tmp_path / "v1", 1), prod)
    assert prod.is_symlink() and deployed_versions(prod) == {"1"}
    assert any(p.name.endswith("-adopted") for p in releases_path(prod).iterdir())


def test_old_releases_are_pruned_but_the_current_one_stays(tmp_path, monkeypatch):
    monkeypatch.setattr(deployment, "KEEP_RELEASES", 3)
    prod = tmp_path / "production_deployment"
    for version in range(6):
        deploy_files(
            make_sources(tmp_path / f"v{version}", version),
            prod,
        )
    deployment.prune_releases(prod, keep=3)
    assert len(list(releases_path(prod).iterdir())) == 3
    assert deployed_versions(prod) == {"5"}


DEPLOY_FOREVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from deployment import deploy_files
    root = Path(sys.argv[2])
    version = 0
    while True:
        version += 1
        source = root / "src"
        source.mkdir(exist_ok=True)
        paths = []
        for name in ["trainedmodel.pkl", "latestscore.txt", "ingestedfiles.txt"]:
            (source / name).write_text(f"{name} version {version}" + chr(10))
            paths.append(source / name)
        deploy_files(paths, root / "production_deployment")
    """
)


@pytest.mark.slow
def test_a_deployment_killed_at_any_moment_leaves_one_complete_deployment(tmp_path):
    prod = tmp_path / "production_deployment"
    deploy_files(make_sources(tmp_path / "v0", 0), prod)
    rng = random.Random(7)
    for trial in range(40):
        child = subprocess.Popen([sys.executable, "-c", DEPLOY_FOREVER, str(PROJECT_DIR), str(tmp_path)])
        time.sleep(0.05 + rng.random() * 0.25)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        versions = deployed_versions(prod)
        assert len(versions) == 1, f"trial {trial}: production mixes versions {versions}"
        assert sorted(p.name for p in prod.iterdir()) == sorted(NAMES)
    deploy_files(make_sources(tmp_path / "after", "final"), prod)
    assert deployed_versions(prod) == {"final"}
    leftovers = [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    leftovers += [p for p in releases_path(prod).iterdir() if p.name.startswith(".")]
    assert leftovers == []
