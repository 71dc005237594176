"""Step 2c: deploy the trained model, its score and the record of the data it learned from.

Config keys: output_model_path (trainedmodel.pkl, latestscore.txt), output_folder_path
(ingestedfiles.txt), prod_deployment_path (where the three files are served from).
Each deployment is a release folder in `<prod_deployment_path>.releases/`; prod_deployment_path is
a symbolic link to the current one, switched in one atomic rename, so a reader (or a kill at any
moment) sees the previous complete deployment or the new one, never a mix.
"""

import logging
import os
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from common import (
    INGESTEDFILES_FILE,
    MODEL_FILE,
    SCORE_FILE,
    PipelineError,
    fsync_dir,
    load_config,
    run_cli,
)

logger = logging.getLogger(__name__)

KEEP_RELEASES = 20
TMP_PREFIX = ".tmp-"


def releases_path(prod_deployment_path) -> Path:
    prod_deployment_path = Path(prod_deployment_path)
    return prod_deployment_path.with_name(prod_deployment_path.name + ".releases")


def current_release(prod_deployment_path) -> Path | None:
    """The release folder production points to now, or None when nothing is deployed."""
    prod_deployment_path = Path(prod_deployment_path)
    return prod_deployment_path.resolve() if prod_deployment_path.is_dir() else None


def copy_durably(source_path: Path, target_path: Path) -> None:
    shutil.copy2(source_path, target_path)
    with open(target_path, "rb") as handle:
        os.fsync(handle.fileno())


def remove_leftovers(prod_deployment_path: Path) -> None:
    """Remove half-built releases and links that a killed deployment may have left."""
    for path in releases_path(prod_deployment_path).glob(TMP_PREFIX + "*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in prod_deployment_path.parent.glob(f".{prod_deployment_path.name}{TMP_PREFIX}*"):
        path.unlink(missing_ok=True)


def build_release(source_paths: list[Path], prod_deployment_path: Path) -> Path:
    """Copy the files into a new, complete release folder and return it."""
    releases = releases_path(prod_deployment_path)
    releases.mkdir(parents=True, exist_ok=True)
    release_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)
    staging = releases / (TMP_PREFIX + release_id)
    staging.mkdir()
    for source_path in source_paths:
        copy_durably(source_path, staging / source_path.name)
    fsync_dir(staging)
    release = releases / release_id
    os.rename(staging, release)
    fsync_dir(releases)
    return release


def adopt_plain_folder(prod_deployment_path: Path) -> None:
    """Move a deployment folder from before releases existed into the releases, kept as history."""
    if prod_deployment_path.is_dir() and not prod_deployment_path.is_symlink():
        target = releases_path(prod_deployment_path) / "00000000T000000000000Z-adopted"
        logger.warning("moving the plain folder %s to %s", prod_deployment_path, target)
        os.rename(prod_deployment_path, target)


def switch_to(release: Path, prod_deployment_path: Path) -> None:
    """Point production at `release` with one atomic rename of a symbolic link."""
    link = prod_deployment_path.with_name(f".{prod_deployment_path.name}{TMP_PREFIX}{release.name}")
    link.symlink_to(os.path.relpath(release, prod_deployment_path.parent), target_is_directory=True)
    os.replace(link, prod_deployment_path)
    fsync_dir(prod_deployment_path.parent)


def prune_releases(prod_deployment_path: Path, keep: int = KEEP_RELEASES) -> None:
    """Delete all but the newest `keep` releases; never the current one."""
    current = current_release(prod_deployment_path)
    releases = sorted(p for p in releases_path(prod_deployment_path).iterdir() if not p.name.startswith("."))
    for old in releases[:-keep]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)


def deploy_files(source_paths, prod_deployment_path) -> Path:
    """Deploy the files as one new release; nothing in production changes unless all exist."""
    source_paths = [Path(path) for path in source_paths]
    missing = [str(path) for path in source_paths if not path.is_file()]
    if missing:
        raise PipelineError(
            f"cannot deploy, missing file(s): {', '.join(missing)}; production left unchanged"
        )
    prod_deployment_path = Path(prod_deployment_path)
    prod_deployment_path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(prod_deployment_path)
    release = build_release(source_paths, prod_deployment_path)
    adopt_plain_folder(prod_deployment_path)
    switch_to(release, prod_deployment_path)
    prune_releases(prod_deployment_path)
    return release


def main(config_path=None) -> Path:
    config = load_config(config_path)
    source_paths = [
        config.output_model_path / MODEL_FILE,
        config.output_model_path / SCORE_FILE,
        config.output_folder_path / INGESTEDFILES_FILE,
    ]
    started = time.perf_counter()
    logger.info("deployment started: %s", ", ".join(map(str, source_paths)))
    release = deploy_files(source_paths, config.prod_deployment_path)
    logger.info(
        "deployment finished in %.2fs: %s now serves release %s",
        time.perf_counter() - started,
        config.prod_deployment_path,
        release.name,
    )
    return release


if __name__ == "__main__":
    run_cli(main)
