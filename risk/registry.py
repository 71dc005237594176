"""The model registry: releases on disk (artifacts.py) and their audit in the history (history.py).

deploy() builds a release hidden, writes its intent to the database, publishes the release, switches
production, then marks the intent done; reconcile() makes the database agree with production and the
release folders after anything (a kill between any two steps, a release deployed by an older version
or by hand): it completes or abandons intents, clears leftovers, marks gone releases pruned and adopts
unknown live releases with what can be read from them (their files' SHA-256 trusted on first use).
rollback() moves production to the release live before, or any kept one; rollback_on_disk() does when
the history cannot be written. A release's model is unpickled only once its SHA-256 matched the one
the history records (load_release_model), and a release goes live only with every file it was made with.
Standard library only, except to unpickle a model (risk.model) and to list releases with their models'
health (risk.overview).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from pathlib import Path

from risk import artifacts, history
from risk.config import Config, PipelineError

logger = logging.getLogger(__name__)


def read_score(path) -> float | None:
    try:
        return float(Path(path).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def read_card(folder) -> dict | None:
    try:
        card = json.loads((Path(folder) / artifacts.MODEL_CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def file_model_id(model_path) -> str:
    return hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]


class ReleaseRefused(PipelineError):
    """A release that cannot be trusted: its model is not the one the history records for it, or a file
    it must hold is missing, unreadable or changed. The message is one line; nothing was loaded or moved."""


class ModelMismatch(ReleaseRefused):
    """A release's pickle is not the model the history records for it: it was changed or replaced."""


def release_files(folder: Path) -> dict[str, str]:
    """name -> SHA-256 of each file a release holds: the course's three, and the card when there is one."""
    names = [*artifacts.RELEASE_FILES, *artifacts.OPTIONAL_RELEASE_FILES]
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names if (folder / name).is_file()
    }


def read_model_bytes(release: Path) -> bytes:
    try:
        return (release / artifacts.MODEL_FILE).read_bytes()
    except OSError as error:
        problem = f"its {artifacts.MODEL_FILE} cannot be read ({error.strerror})"
        raise ReleaseRefused(f"release {release.name} is refused: {problem}") from None


def check_digest(model: dict, digest: str, release_name: str) -> None:
    """Refuse a pickle whose SHA-256 is not the one recorded for `model` (a model recorded before full
    hashes were kept is checked on its id, the first 12 hex digits, until a writer records the rest)."""
    expected = model.get("sha256")
    if expected == digest or (expected is None and digest[:12] == model["id"]):
        return
    raise ModelMismatch(
        f"release {release_name} is refused: its {artifacts.MODEL_FILE} is not the model {model['id']} the history"
        " records for it (its SHA-256 differs: the file was changed or replaced after it was recorded)"
    )


def verified_model_bytes(conn: sqlite3.Connection, release: Path, record: bool = False) -> tuple[bytes, str]:
    """The bytes of a release's model, read once, and the model's id, when their SHA-256 is the one the
    history records for the release's model and the release's other files (its card, read beside the model)
    are the ones recorded; ReleaseRefused otherwise. With `record` (a writer's
    connection) a model recorded before full hashes were kept gets its full hash now."""
    data = read_model_bytes(release)
    digest = hashlib.sha256(data).hexdigest()
    known = history.get_release(conn, release.name)
    model = history.get_model(conn, known["model_id"] if known else digest[:12])
    if model is None:
        raise ReleaseRefused(
            f"release {release.name} is refused: it is not in the history, so its model cannot be verified"
            " (the next full-process run, or deployment.py, adopts a live release and records its hash)"
        )
    check_digest(model, digest, release.name)
    if known:
        check_release(conn, release)  # its card is read beside the model
    if record and model.get("sha256") is None:
        with conn:
            history.update(conn, "models", "id", model["id"], {"sha256": digest})
    return data, model["id"]


def load_release_model(conn: sqlite3.Connection, release: Path, record: bool = False):
    """(the release's model, its id), unpickled only after verified_model_bytes accepted its bytes."""
    from risk.model import model_from_bytes  # scikit-learn and pandas: listing, moving and reconciling never need them

    data, model_id = verified_model_bytes(conn, release, record)
    return model_from_bytes(data, release / artifacts.MODEL_FILE), model_id


def load_recorded_model(conn: sqlite3.Connection, model_path: Path):
    """The model in `model_path` (say models/trainedmodel.pkl), unpickled only when the history recorded it
    (trained by training.py or the full process, its full SHA-256 the same); ReleaseRefused otherwise."""
    from risk.model import model_from_bytes  # scikit-learn and pandas: only a loader needs them

    data, _ = recorded_model(conn, model_path)
    return model_from_bytes(data, model_path)


def recorded_model(conn: sqlite3.Connection, model_path: Path) -> tuple[bytes, dict]:
    """(the bytes of the model file `model_path`, the history's record of that model) when the history
    recorded it; ReleaseRefused otherwise."""
    data = artifacts.read_model_file(model_path)
    digest = hashlib.sha256(data).hexdigest()
    model = history.get_model(conn, digest[:12])
    if model is None:
        raise ReleaseRefused(
            f"{model_path} is not a model the history recorded (one training.py or the full process trained);"
            " it was not loaded: a pickle is code"
        )
    check_digest(model, digest, Path(model_path).name)
    return data, model


def load_live_model(config: Config):
    """(the live release's model, the release) for a reader (reports, diagnostics); see read_release_model."""
    release = artifacts.live_release(config.prod_deployment_path)
    if release is None:
        raise PipelineError(f"nothing is deployed at {config.prod_deployment_path}; run deployment.py first")
    return read_release_model(config.history_path, release), release


def read_release_model(history_path, release: Path, timeout: float | None = None):
    """A release's model for a reader, verified against the history opened read-only; ReleaseRefused
    when it does not match, or cannot be verified (no history, or one that cannot be read, or locked
    for more than `timeout` seconds)."""
    conn = None
    try:
        conn = history.connect_reader(history_path, timeout)
        if conn is None:
            raise ReleaseRefused(
                f"release {release.name} is refused: its model cannot be verified without the history database"
                f" {history_path} (the next full-process run, or deployment.py, adopts a live release and records"
                " its hash)"
            )
        return load_release_model(conn, release)[0]
    except (history.HistoryError, sqlite3.Error) as error:
        if isinstance(error, ReleaseRefused):
            raise
        problem = history.history_error(error, history_path, timeout)
        raise ReleaseRefused(f"release {release.name} is refused: its model cannot be verified: {problem}") from None
    finally:
        if conn is not None:
            conn.close()


def release_problems(conn: sqlite3.Connection | None, release: Path) -> list[str]:
    """What is wrong with the files a release must hold: those recorded when it was made (each with
    its SHA-256), or for a release recorded before that, the course's three; empty when all is well.
    The model is left to verified_model_bytes, which checks it against its model's record."""
    known = history.get_release(conn, release.name) if conn is not None else None
    recorded = (known or {}).get("files") or {}
    problems = []
    for name in recorded or artifacts.RELEASE_FILES:
        if name == artifacts.MODEL_FILE:
            continue  # the model is checked on its own, against its model's record, before it is loaded
        try:
            data = (release / name).read_bytes()
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        except OSError as error:
            problems.append(f"{name} cannot be read ({error.strerror})")
            continue
        if recorded and hashlib.sha256(data).hexdigest() != recorded[name]:
            problems.append(f"{name} changed after the release was made")
        elif not readable(name, data):
            problems.append(f"{name} is damaged")
    return problems


def readable(name: str, data: bytes) -> bool:
    """Whether a release's text file can be read as what it is: the score a number, the card an object."""
    try:
        text = data.decode("utf-8")
        if name == artifacts.SCORE_FILE:
            float(text.strip())
        elif name == artifacts.MODEL_CARD_FILE:
            return isinstance(json.loads(text), dict)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def check_release(conn: sqlite3.Connection | None, release: Path) -> None:
    """Refuse to make a release live when a file it must hold is missing, unreadable or changed."""
    problems = release_problems(conn, release)
    if problems:
        raise ReleaseRefused(f"release {release.name} is refused: {'; '.join(problems)}")


def card_reference(card: dict) -> dict | None:
    """The drift reference a model card carries: its validation F1, counts and reference files."""
    if card.get("validation_f1") is None:
        return None
    return {
        "model_id": card["id"],
        "kind": "validation",
        "f1": card["validation_f1"],
        "low": card.get("validation_low"),
        "high": card.get("validation_high"),
        "rows": card.get("validation_rows"),
        "counts": card.get("validation_counts"),
        "files": card.get("reference_files") or card.get("training_files") or [],
    }


def record_card(conn: sqlite3.Connection, card: dict) -> None:
    """A trained model's card as its model record and first reference (caller's transaction)."""
    if history.get_model(conn, card["id"]):
        return
    columns = {key: card.get(key) for key in MODEL_COLUMNS}
    if columns["run_id"] is not None and not history.select_one(
        conn, "SELECT id FROM runs WHERE id = ?", (columns["run_id"],)
    ):
        columns["run_id"] = None  # a card from another history (adopted): its run is not in this one
    history.record_model(conn, columns)
    reference = card_reference(card)
    if reference:
        history.add_reference(conn, {**reference, "run_id": columns["run_id"]})


MODEL_COLUMNS = [
    "id",
    "sha256",
    "trained_at",
    "origin",
    "window",
    "training_files",
    "rows",
    "positives",
    "exit_rate",
    "coefficients",
    "intercept",
    "feature_means",
    "validation_f1",
    "validation_low",
    "validation_high",
    "validation_rows",
    "validation_counts",
    "validation_method",
    "test_f1",
    "run_id",
]


def adopted_card(release: Path, data: bytes) -> dict:
    """What can be read from a release without a card (its model's bytes `data`, trusted on first use):
    the model's parameters, test F1, file names."""
    from risk.model import describe, model_from_bytes  # heavy, and only an adoption needs it (see load_release_model)

    parameters = describe(model_from_bytes(data, release / artifacts.MODEL_FILE))
    try:
        names = artifacts.read_lines(release / artifacts.INGESTEDFILES_FILE)
    except OSError:
        names = []
    stamp = os.stat(release / artifacts.MODEL_FILE).st_mtime
    digest = hashlib.sha256(data).hexdigest()
    return {
        "id": digest[:12],
        "sha256": digest,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
        "origin": "adopted",
        "window": "unknown (adopted release)",
        "training_files": [{"name": name} for name in names],
        "coefficients": parameters["coefficients"],
        "intercept": parameters["intercept"],
        "feature_means": {},
        "test_f1": read_score(release / artifacts.SCORE_FILE),
    }


def ensure_model(conn: sqlite3.Connection, release: Path, adopt: bool = True) -> str:
    """The id of the model in `release`, recording the model first if the database lacks it (adoption:
    its SHA-256 is trusted on first use and recorded; only the live release is adopted, `adopt`). A
    pickle whose id is known but whose full SHA-256 is not the one recorded, one whose release card
    describes another model, or (without `adopt`) one the history never recorded, is refused
    (ReleaseRefused): nothing is unpickled."""
    data = read_model_bytes(release)
    digest = hashlib.sha256(data).hexdigest()
    model_id = digest[:12]
    known = history.get_model(conn, model_id)
    if known:
        check_digest(known, digest, release.name)
        if known.get("sha256") is None:
            history.update(conn, "models", "id", model_id, {"sha256": digest})
        return model_id
    if not adopt:
        raise ReleaseRefused(
            f"{release.name} is refused: its {artifacts.MODEL_FILE} is not a model the history recorded (one"
            " training.py or the full process trained); nothing was loaded. A pickle is code: deploy only models"
            " this project trained"
        )
    card = read_card(release)
    if card is None and (release / artifacts.MODEL_CARD_FILE).exists():
        raise ReleaseRefused(
            f"{release.name} is refused: its {artifacts.MODEL_CARD_FILE} cannot be read as a card, so its"
            f" {artifacts.MODEL_FILE} cannot be checked against it; nothing was loaded"
        )
    if card and card.get("id") != model_id:
        raise ReleaseRefused(
            f"{release.name} is refused: its {artifacts.MODEL_FILE} is not the model its {artifacts.MODEL_CARD_FILE}"
            f" describes (id {model_id}, the card says {card.get('id')}); the pickle was changed after the release"
            " was built, so nothing was loaded"
        )
    if card:
        record_card(conn, {**card, "sha256": digest})
        return model_id
    card = adopted_card(release, data)
    history.record_model(conn, {key: card.get(key) for key in MODEL_COLUMNS})
    if card["test_f1"] is not None:
        history.add_reference(
            conn,
            {"model_id": model_id, "kind": "test", "f1": card["test_f1"], "files": card["training_files"]},
        )
    return model_id


def ensure_release(conn: sqlite3.Connection, release: Path, name: str | None = None, adopt: bool = True) -> str:
    """Record a release (its model, and each of its files with its SHA-256) if the database does not
    know it; return the model id. `release` is the folder holding its files, `name` its name when that
    folder is still the hidden one it is built in; `adopt`: see ensure_model."""
    name = name or release.name
    known = history.get_release(conn, name)
    if known:
        return known["model_id"]
    model_id = ensure_model(conn, release, adopt)
    history.insert(
        conn,
        "releases",
        {
            "name": name,
            "model_id": model_id,
            "created_at": history.utc_now(),
            "test_f1": read_score(release / artifacts.SCORE_FILE),
            "files": release_files(release),
        },
    )
    return model_id


def learned_files(conn: sqlite3.Connection, release: Path, name: str | None = None) -> tuple[set, set[str]]:
    """What a recorded release's model learned from: the (name, SHA-256) of each file its record names;
    for a model recorded without them (adopted from a release without a card), only the names in the
    release's ingestedfiles.txt, as ({}, names). (`release` and `name` as for ensure_release.)"""
    known = history.get_release(conn, name or release.name)
    model = history.get_model(conn, known["model_id"]) if known else None
    pairs = {(file["name"], file["sha256"]) for file in (model or {}).get("training_files") or [] if file.get("sha256")}
    if pairs:
        return pairs, set()
    try:
        return set(), set(artifacts.read_lines(release / artifacts.INGESTEDFILES_FILE))
    except OSError:
        return set(), set()


def learned_versions(
    conn: sqlite3.Connection, release: Path, folder: str, name: str | None = None
) -> tuple[list[dict], list[str]]:
    """(the undecided file versions of `folder` that the release's model learned from, the names of the
    others whose name it learned from with other content), judged by content, never by name alone.

    A version is learned when its (name, SHA-256) is one the model's record names. A model known by
    names only gets a name's version only when it is the first version the history saw under that name:
    a name that came back with other content since is new data, as any file is that no run has judged.
    """
    pairs, names = learned_files(conn, release, name)
    first_seen = {name: versions[0]["id"] for name, versions in history.file_states(conn, folder).items()}
    learned_names = names | {name for name, _ in pairs}
    learned, changed = [], []
    for file in history.undecided_files(conn, folder):
        if (file["name"], file["sha256"]) in pairs or (
            file["name"] in names and first_seen[file["name"]] == file["id"]
        ):
            learned.append(file)
        elif file["name"] in learned_names:
            changed.append(file["name"])
    return learned, changed


def files_to_decide(conn: sqlite3.Connection, config: Config, release: Path, name: str) -> list[int]:
    """Undecided file versions of the input folder that the release's model learned from (by content)."""
    folder = history.folder_key(config.input_folder_path, config.history_path)
    return [file["id"] for file in learned_versions(conn, release, folder, name)[0]]


def switch_recorded(
    conn: sqlite3.Connection,
    config: Config,
    release: Path,
    reason: str,
    actor: str,
    run_id,
    decide: bool,
    staging: Path | None = None,
) -> None:
    """Intent, (a new release `staging` published as `release`,) symlink switch, done: a kill between
    any two is completed or undone by reconcile(), which leaves no folder and no row that disagree."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    folder = staging or release
    with conn:
        model_id = ensure_release(conn, folder, release.name, adopt=False)
        intent = history.insert(
            conn,
            "deployments",
            {
                "at": history.utc_now(),
                "from_release": live,
                "to_release": release.name,
                "model_id": model_id,
                "reason": reason,
                "actor": actor,
                "run_id": run_id,
                "state": "pending",
                "decide_files": files_to_decide(conn, config, folder, release.name) if decide else [],
            },
        )
    if staging is not None:
        artifacts.publish_release(staging, release)
    moved = artifacts.adopt_plain_folder(config.prod_deployment_path)
    if moved:
        logger.warning("moved the plain folder %s to %s", config.prod_deployment_path, moved)
    artifacts.switch_to(release, config.prod_deployment_path)
    with conn:
        complete(conn, history.select_one(conn, "SELECT * FROM deployments WHERE id = ?", (intent,)))


def complete(conn: sqlite3.Connection, intent: dict) -> None:
    """Mark a deployment done and decide the files it carries (caller's transaction)."""
    history.update(conn, "deployments", "id", intent["id"], {"state": "done"})
    if intent["decide_files"]:
        history.decide_files(conn, intent["decide_files"], intent["run_id"], "decided")


def deploy(conn: sqlite3.Connection, config: Config, reason: str, actor: str, run_id=None) -> Path:
    """Publish the trained model, its score, the ingestion record and the card as a new live release."""
    sources = artifacts.deployable_files(config)
    missing = [str(path) for path in sources if not path.is_file()]
    if missing:
        raise PipelineError(f"cannot deploy, missing file(s): {', '.join(missing)}; production left unchanged")
    check_deployable(conn, {path.name: path for path in sources})
    artifacts.remove_leftovers(config.prod_deployment_path)
    staging, release = artifacts.build_release(sources, config.prod_deployment_path)
    switch_recorded(conn, config, release, reason, actor, run_id, decide=True, staging=staging)
    prune(conn, config)
    return release


def check_deployable(conn: sqlite3.Connection, sources: dict[str, Path]) -> None:
    """Refuse outputs that do not belong together, before a release is built from them: a model the history
    never recorded, or a latestscore.txt that is not the test F1 recorded for that model (`scoring.py --model
    OTHER` wrote another model's score there; a model never scored is not checked)."""
    _, model = recorded_model(conn, sources[artifacts.MODEL_FILE])
    score_path = sources[artifacts.SCORE_FILE]
    score = read_score(score_path)
    if model["test_f1"] is not None and score != model["test_f1"]:
        raise PipelineError(
            f"cannot deploy: {score_path} says {score if score is not None else 'no number'}, but model"
            f" {model['id']} in {sources[artifacts.MODEL_FILE]} scored F1 {model['test_f1']!r}; run scoring.py"
            " (without --model) first; production left unchanged"
        )


def rollback_target(conn: sqlite3.Connection, config: Config) -> str:
    """The release live before the live one; when the history does not know it (the live release was
    adopted), the newest kept release made before the live one."""
    last = history.last_deployment(conn)
    if last is not None and last["from_release"]:
        return last["from_release"]
    if last is not None and last["reason"] != "adopted":
        raise PipelineError("no earlier release to roll back to: production has been deployed only once")
    return release_made_before(config)


def release_made_before(config: Config) -> str:
    """The newest kept release made before the live one (release names begin with the time they were made)."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    earlier = [path.name for path in artifacts.kept_releases(config.prod_deployment_path) if live and path.name < live]
    if not earlier:
        raise PipelineError(
            "no release made before the live one is kept to roll back to (see `python deployment.py --list`;"
            " `--to RELEASE` moves to any kept one)"
        )
    logger.warning("the history does not say which release was live before %s: taking the newest made before it", live)
    return earlier[-1]


def rollback_on_disk(config: Config, target: str | None = None, conn: sqlite3.Connection | None = None):
    """Move production when the history cannot be written: to `target`, or the newest release made before
    the live one; return (from, to, whether its model was verified). The release must hold its files;
    with `conn` (the history, read-only) its model is verified as always, without it (or when the history
    opens but cannot be read) no one can: the API and the full process refuse to load it until the
    history is readable again. Nothing is recorded; the next run adopts what is live."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    name = target or release_made_before(config)
    release = kept_release(config, name, live)
    if conn is not None:
        try:
            verified_model_bytes(conn, release)
        except sqlite3.Error as error:  # readable enough to open, not to read (a malformed file)
            problem = history.history_error(error, config.history_path)
            logger.warning("%s: the model of release %s cannot be verified now", problem, name)
            conn = None
    check_release(conn, release)
    moved = artifacts.adopt_plain_folder(config.prod_deployment_path)
    if moved:
        logger.warning("moved the plain folder %s to %s", config.prod_deployment_path, moved)
    artifacts.switch_to(release, config.prod_deployment_path)
    return live, name, conn is not None


def kept_release(config: Config, name: str, live: str | None) -> Path:
    """The kept release `name` that a rollback may move to (not the live one)."""
    release = artifacts.release_path(config.prod_deployment_path, name)
    if release is None:
        raise PipelineError(
            f"release {name} is not kept in {artifacts.releases_path(config.prod_deployment_path)}"
            " (see `python deployment.py --list`)"
        )
    if name == live:
        raise PipelineError(f"release {name} is already live")
    return release


def rollback(conn: sqlite3.Connection, config: Config, actor: str, target: str | None = None) -> tuple[str, str]:
    """Move production to `target` (default: the release live before); return (from, to)."""
    for line in reconcile(conn, config, actor):
        logger.warning("%s", line)
    live = artifacts.live_release_name(config.prod_deployment_path)
    name = target or rollback_target(conn, config)
    release = kept_release(config, name, live)
    if history.get_release(conn, name) is None:  # a folder nobody recorded: never unpickled, never trusted
        raise ReleaseRefused(
            f"release {name} is refused: the history does not know it, so its model cannot be verified (a pickle"
            " is code); production left as it was"
        )
    load_release_model(conn, release, record=True)  # verified with its files, and loadable, before production moves
    switch_recorded(conn, config, release, "rollback", actor, None, decide=False)
    return live, name


def reconcile(conn: sqlite3.Connection, config: Config, actor: str) -> list[str]:
    """Make the history agree with production; return what was done, one line each. A plain production
    folder (the course's layout) is first moved into the releases and linked, so that it is recorded under
    the name it keeps, and a rollback can come back to it."""
    done = []
    moved = artifacts.adopt_plain_folder(config.prod_deployment_path)
    if moved:
        artifacts.switch_to(moved, config.prod_deployment_path)
        done.append(f"moved the plain folder {config.prod_deployment_path} to {moved}; production links to it")
    live = artifacts.live_release(config.prod_deployment_path)
    last = history.last_deployment(conn)
    with conn:
        for intent in history.pending_deployments(conn):
            if (
                live is not None
                and intent["to_release"] == live.name
                and (last is None or last["to_release"] != live.name)
            ):
                complete(conn, intent)
                last = intent
                done.append(f"completed the deployment of {live.name} that a stopped run had begun")
            else:
                history.update(conn, "deployments", "id", intent["id"], {"state": "abandoned"})
                done.append(f"abandoned the deployment of {intent['to_release']}: production never switched to it")
                never_live = not history.select_one(
                    conn,
                    "SELECT id FROM deployments WHERE to_release = ? AND state = 'done'",
                    (intent["to_release"],),
                )
                folder = artifacts.release_path(config.prod_deployment_path, intent["to_release"])
                if never_live and folder is not None and (live is None or folder.name != live.name):
                    try:
                        artifacts.discard_release(folder)
                    except OSError as error:
                        logger.warning("could not delete the abandoned release %s (%s)", folder.name, error)
                if never_live and artifacts.release_path(config.prod_deployment_path, intent["to_release"]) is None:
                    history.update(conn, "releases", "name", intent["to_release"], {"pruned_at": history.utc_now()})
        if live is not None and (last is None or last["to_release"] != live.name):
            model_id = ensure_release(conn, live)
            history.insert(
                conn,
                "deployments",
                {
                    "at": history.utc_now(),
                    "from_release": last["to_release"] if last else None,
                    "to_release": live.name,
                    "model_id": model_id,
                    "reason": "adopted",
                    "actor": actor,
                    "state": "done",
                    "note": "found live on disk without a record (deployed by hand or by an older version)",
                },
            )
            done.append(f"adopted release {live.name} (model {model_id}), live without a record")
        done += forget_gone_releases(conn, config)
    return done


def forget_gone_releases(conn: sqlite3.Connection, config: Config) -> list[str]:
    """Clear what a stopped deployment or deletion left on disk, and mark pruned each recorded release
    whose folder is gone (caller's transaction; the caller holds the full process's lock)."""
    artifacts.remove_leftovers(config.prod_deployment_path)
    kept = {path.name for path in artifacts.kept_releases(config.prod_deployment_path)}
    done = []
    for name in history.unpruned_releases(conn):
        if name not in kept:
            history.update(conn, "releases", "name", name, {"pruned_at": history.utc_now()})
            done.append(f"release {name} is gone from disk (a deployment or deletion was stopped): marked pruned")
    return done


def prune(conn: sqlite3.Connection, config: Config) -> None:
    """After a deployment: keep the newest releases, the live one and the rollback target; record what went."""
    protect = {history.last_deployment(conn)["from_release"]}  # the deployment just made; None protects nothing
    deleted, failures = artifacts.prune_releases(config.prod_deployment_path, protect)
    for failure in failures:
        logger.warning("could not delete the old release %s; it stays until the next deployment", failure)
    with conn:
        for name in deleted:
            history.update(conn, "releases", "name", name, {"pruned_at": history.utc_now()})


def list_releases(conn: sqlite3.Connection | None, config: Config) -> list[dict]:
    """The kept releases, newest first: live or not, model and its health verdict (overview.health; its words
    for the live release only, since they say what the risk list comes from), validation
    and test F1, its first deployment (when, why, by whom) and every later move that made it live again.
    Without a history (`conn` None), what the folders say."""
    live = artifacts.live_release_name(config.prod_deployment_path)
    rows = []
    for release in reversed(artifacts.kept_releases(config.prod_deployment_path)):
        record = history.get_release(conn, release.name) if conn else None
        model = history.get_model(conn, record["model_id"]) if record else None
        moves = history.release_moves(conn, release.name) if conn else []
        first = moves[0] if moves else None
        health = model_health(conn, record["model_id"]) if record else None
        if health and release.name != live:
            health["words"] = None  # its words say what the risk list comes from: only the live release's
        rows.append(
            {
                "release": release.name,
                "live": release.name == live,
                "model_id": record["model_id"] if record else None,
                "health": health,
                "validation_f1": model["validation_f1"] if model else None,
                "validation_low": model["validation_low"] if model else None,
                "validation_high": model["validation_high"] if model else None,
                "test_f1": record["test_f1"] if record else read_score(release / artifacts.SCORE_FILE),
                "deployed_at": first["at"] if first else None,
                "reason": first["reason"] if first else None,
                "actor": first["actor"] if first else None,
                "moves": moves[1:],
                "known": record is not None,
            }
        )
    return rows


def model_health(conn: sqlite3.Connection, model_id: str) -> dict:
    """The model's one health verdict, overview.health's."""
    from risk.overview import health  # pandas, through the risk list: only the list of releases needs it

    return health(conn, model_id)
