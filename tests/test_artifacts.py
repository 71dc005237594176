"""Tests of risk.artifacts: where the files live, the releases on disk, what is live, the run lock.

Each test builds its folders in tmp_path; expected names and paths are written out here.
"""

import os
import stat

import pytest

from risk import artifacts
from risk.config import load_config


def make_release(prod, name: str, model: bool = True):
    """A release folder `name` (with a model file unless `model` is false) beside the link `prod`."""
    folder = artifacts.releases_path(prod) / name
    folder.mkdir(parents=True)
    if model:
        (folder / "trainedmodel.pkl").write_bytes(b"model")
    return folder


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- the run lock --------------------------------------------------------------------------------


def test_the_lock_lies_beside_the_log(config):
    assert artifacts.lock_path(config) == config.log_path.parent / "fullprocess.lock"


def test_a_link_planted_at_a_lock_path_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere" / "created-by-the-service"
    target.parent.mkdir()
    path = tmp_path / "timing.lock"
    path.symlink_to(target)
    with pytest.raises(OSError):
        artifacts.acquire_lock(str(path))
    assert not target.exists()


def test_the_lock_is_held_by_one_holder_at_a_time_and_created_with_its_folders(tmp_path):
    path = tmp_path / "new" / "logs" / "fullprocess.lock"
    first = artifacts.acquire_lock(str(path))
    try:
        assert isinstance(first, int)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~current_umask()
        before = open_fds()
        assert artifacts.acquire_lock(str(path)) is None  # held: refused, without keeping a descriptor open
        assert open_fds() == before
    finally:
        os.close(first)
    second = artifacts.acquire_lock(str(path))  # released: free again, in a folder that now exists
    assert isinstance(second, int)
    os.close(second)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- naming a release -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name_of, found",
    [
        (lambda release: release.name, True),
        (lambda release: "", False),
        (lambda release: release.name + "/", False),  # a path, even one that leads to the release
        (lambda release: str(release), False),  # an absolute path to it
        (lambda release: "../" + release.parent.name + "/" + release.name, False),
        (lambda release: ".tmp-" + release.name, False),  # a half-built release
        (lambda release: "20200101T000000000000Z-dead", False),
        (lambda release: "incomplete", False),  # a folder without a model
    ],
    ids=["its name", "empty", "trailing slash", "absolute", "relative", "hidden", "unknown", "no model"],
)
def test_release_path_finds_a_kept_release_by_its_bare_name_only(tmp_path, name_of, found):
    prod = tmp_path / "production_deployment"
    release = make_release(prod, "20260101T000000000000Z-abcd")
    make_release(prod, ".tmp-20260101T000000000000Z-abcd")
    make_release(prod, "incomplete", model=False)
    assert artifacts.release_path(prod, name_of(release)) == (release if found else None)


def test_config_paths_of_the_data_files(config_path):
    config = load_config(config_path)
    assert artifacts.finaldata_path(config) == config.output_folder_path / "finaldata.csv"
    assert artifacts.testdata_path(config) == config.test_data_path / "testdata.csv"
