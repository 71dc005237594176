"""Simulation benchmark: how good are the full process's decisions over two years of changing data?

Per seed, a temporary project receives one file a month (monthNN.csv, 10,000 rows of that month's
regime) and fullprocess.py runs once as a subprocess, as cron would. Before each run, the model live
during the month is scored (F1) on the month's holdout, an independent draw the pipeline never sees.
Three baselines (the course's rule, monthly re-training, an oracle that re-trains at each change)
run in-process on the same files and holdouts. Schedule: month 0 source (bootstrap), 1-6 source,
7-12 exodus (exit rate), 13-18 shifted (concept), 19-24 shifted-grown (covariate); later months keep
the last regime. `python benchmark/simulate.py [--seeds 1 2 3] [--months 24]`; temporary folders only.
"""

import argparse
import datetime
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy.stats import ks_2samp

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from datagen.generate_data import build_regime_month  # noqa: E402
from risk import sandbox  # noqa: E402
from risk.contract import FEATURES  # noqa: E402
from risk.model import load_model, score_model, train_model  # noqa: E402

# (first month, regime, kind of change it starts); month 0 is the bootstrap file.
SCHEDULE = [
    (0, "source", None),
    (7, "exodus", "exit rate"),
    (13, "shifted", "concept"),
    (19, "shifted-grown", "covariate"),
]
ROWS = 10_000
TEST_ROWS = 1_200
TESTDATA_STREAM = 2  # the month-0 seed with this appended draws testdata.csv
POLICIES = ["new policy", "course rule", "monthly retrain", "oracle"]
OK_EXIT_CODES = {0: "ok", 2: "API unreachable", 3: "no better model"}
TARGET_GAP = 0.02  # mean served F1 at most this far below the oracle's
TARGET_NEEDLESS = 1  # needless redeploys in the whole run
TARGET_LAG = 1  # months until a change is acted on
LOG_TAIL_LINES = 40


class SimulationError(Exception):
    """The full process failed or was busy: the simulation cannot go on."""


@dataclass
class Month:
    """One month of one seed: what the new policy did, and each policy's F1 on the month's holdout."""

    month: int
    regime: str
    decision: str = ""
    exit_code: int | None = None
    served_f1: dict = field(default_factory=dict)
    redeployed: dict = field(default_factory=dict)
    acted: dict = field(default_factory=dict)


# --- the schedule and the data -----------------------------------------------------------------


def regime_of(month: int) -> str:
    return [regime for start, regime, _ in SCHEDULE if start <= month][-1]


def change_months(months: int) -> list[int]:
    return [start for start, _, kind in SCHEDULE if kind and start <= months]


def change_kind(month: int) -> str:
    return next(kind for start, _, kind in SCHEDULE if start == month)


def draw_month(seed: int, month: int, rows: int = ROWS, holdout: bool = False):
    return build_regime_month([seed, month], regime_of(month), rows, holdout=holdout)


def draw_testdata(seed: int):
    """The course's fixed test set: 1,200 rows of the source regime at month 0 (soon stale)."""
    return build_regime_month([seed, 0, TESTDATA_STREAM], "source", TEST_ROWS)


# --- the temporary project and the full process -----------------------------------------------


def make_project(root: Path, testdata) -> Path:
    """A config in `root` over an empty input folder, the test data and a fresh outdated-packages cache."""
    (root / "inputs").mkdir()
    (root / "testdata").mkdir()
    testdata.to_csv(root / "testdata" / "testdata.csv", index=False, lineterminator="\n")
    sandbox.seed_outdated_cache(root / "models", "not checked (simulation)")
    # nothing listens on port 9: apicalls fails fast (exit code 2)
    return sandbox.write_config(root, input_folder_path="inputs", api_base_url="http://127.0.0.1:9")


def log_tail(root: Path) -> str:
    log_path = root / "logs" / "fullprocess.log"
    if not log_path.is_file():
        return "(no log file)"
    return "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-LOG_TAIL_LINES:])


def run_fullprocess(config_path: Path) -> int:
    """One cron run of fullprocess.py as a subprocess; its exit code, or SimulationError on a failure."""
    env = {**os.environ, "RISK_CONFIG": str(config_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "fullprocess.py")],
        cwd=config_path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode not in OK_EXIT_CODES:
        raise SimulationError(
            f"fullprocess.py exited {result.returncode}; stderr tail:\n{result.stderr[-3000:]}\n"
            f"log tail:\n{log_tail(config_path.parent)}"
        )
    return result.returncode


def read_newest_run(history_path: Path) -> dict:
    """The newest run's record, whether a challenger check (a gate verdict) ran, and its flags."""
    conn = sqlite3.connect(f"file:{history_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        run = dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
        rows = conn.execute("SELECT kind, outcome, feature FROM verdicts WHERE run_id = ?", (run["id"],))
        verdicts = [dict(row) for row in rows]
    finally:
        conn.close()
    run["checked"] = any(v["kind"] == "gate" for v in verdicts)
    run["flags"] = sorted({v["kind"] for v in verdicts if v["outcome"] == "drift" and v["kind"] != "course"})
    run["window"] = next((v["feature"] for v in verdicts if v["outcome"] == "chosen"), None)
    release_after = run["release_after"]
    run["redeployed"] = release_after is not None and release_after != run["release_before"]
    return run


def describe_decision(run: dict) -> str:
    """The new policy's decision in a few words: what it did, what was flagged, which window won."""
    decision = run["decision"] or ""
    words = {
        "bootstrap": "bootstrap",
        "no drift": "no drift, kept",
        "insufficient": "waiting",
        "drift: re-trained": "redeployed",
        "drift, no better": "checked, kept",
        "no new rows": "rejected",
        "failed": "FAILED",
    }
    text = next((short for start, short in words.items() if decision.startswith(start)), decision)
    short_flags = {"performance": "F1", "data drift": "features", "exit rate": "exit rate"}
    if run["flags"]:
        text += f" [{', '.join(short_flags.get(flag, flag) for flag in run['flags'])}]"
    if run["redeployed"] and run["window"]:
        text += f" <- {run['window']}"
    return text


# --- the baselines -----------------------------------------------------------------------------


class CourseRule:
    """The course's full process: all data so far; re-train on it all when F1 there < the test score."""

    def __init__(self, first_file, testdata):
        self.testdata = testdata
        self.finaldata = first_file.drop_duplicates(ignore_index=True)
        self.model = train_model(self.finaldata)
        self.latestscore = score_model(self.model, testdata)

    def observe(self, month: int, df) -> bool:
        self.finaldata = pd.concat([self.finaldata, df], ignore_index=True).drop_duplicates(ignore_index=True)
        if score_model(self.model, self.finaldata) >= self.latestscore:
            return False
        self.model = train_model(self.finaldata)
        self.latestscore = score_model(self.model, self.testdata)
        return True


class MonthlyRetrain:
    """Re-train on the newest month only, and redeploy, every month."""

    def __init__(self, first_file):
        self.model = train_model(first_file)

    def observe(self, month: int, df) -> bool:
        self.model = train_model(df)
        return True


class Oracle:
    """Knows the schedule: re-trains on the change month's file only, exactly at each change."""

    def __init__(self, first_file, changes: list[int]):
        self.model = train_model(first_file)
        self.changes = set(changes)

    def observe(self, month: int, df) -> bool:
        if month not in self.changes:
            return False
        self.model = train_model(df)
        return True


# --- one seed ----------------------------------------------------------------------------------


def live_model_path(root: Path) -> Path:
    return root / "production_deployment" / "trainedmodel.pkl"


def play_month(month: int, df, holdout, root: Path, baselines: dict) -> Month:
    """Score every live model on the holdout, then let every policy see the month's file."""
    record = Month(month, regime_of(month))
    record.served_f1["new policy"] = score_model(load_model(live_model_path(root)), holdout)
    for name, baseline in baselines.items():
        record.served_f1[name] = score_model(baseline.model, holdout)
    df.to_csv(root / "inputs" / f"month{month:02d}.csv", index=False, lineterminator="\n")
    record.exit_code = run_fullprocess(root / "config.json")
    run = read_newest_run(root / "logs" / "history.db")
    record.decision = describe_decision(run)
    record.redeployed["new policy"] = run["redeployed"]
    record.acted["new policy"] = run["redeployed"] or run["checked"]
    for name, baseline in baselines.items():
        record.redeployed[name] = record.acted[name] = baseline.observe(month, df)
    return record


def bootstrap(root: Path, first_file) -> Month:
    first_file.to_csv(root / "inputs" / "month00.csv", index=False, lineterminator="\n")
    record = Month(0, regime_of(0), exit_code=run_fullprocess(root / "config.json"))
    run = read_newest_run(root / "logs" / "history.db")
    record.decision = describe_decision(run)
    if not live_model_path(root).is_file():
        raise SimulationError(f"the bootstrap run deployed nothing:\n{log_tail(root)}")
    return record


def simulate_seed(seed: int, months: int, work_path: Path, rows: int = ROWS) -> tuple[list[Month], dict]:
    """Play months 0..`months` of one seed; the per-month records and the data (for measuring)."""
    root = work_path / f"seed{seed}"
    root.mkdir()
    testdata = draw_testdata(seed)
    make_project(root, testdata)
    files = {month: draw_month(seed, month, rows) for month in range(months + 1)}
    holdouts = {month: draw_month(seed, month, holdout=True) for month in range(1, months + 1)}
    baselines = {
        "course rule": CourseRule(files[0], testdata),
        "monthly retrain": MonthlyRetrain(files[0]),
        "oracle": Oracle(files[0], change_months(months)),
    }
    records = [bootstrap(root, files[0])]
    for month in range(1, months + 1):
        records.append(play_month(month, files[month], holdouts[month], root, baselines))
    return records, {"files": files, "holdouts": holdouts}


# --- measuring -----------------------------------------------------------------------------------


def change_end(change: int, changes: list[int], months: int) -> int:
    """The last month in which acting on `change` still counts: the month before the next change."""
    later = [start for start in changes if start > change]
    return later[0] - 1 if later else months


def first_lag(records: list[Month], policy: str, flag: str, start: int, end: int) -> int | None:
    """Months from `start` to the first month in [start, end] whose `flag` is set; None if none is."""
    return next((r.month - start for r in records if start <= r.month <= end and getattr(r, flag)[policy]), None)


def summarize_policy(records: list[Month], policy: str, changes: list[int], months: int) -> dict:
    played = [record for record in records if record.month >= 1]
    redeploys = [record.month for record in played if record.redeployed[policy]]
    windows = {change: (change, change_end(change, changes, months)) for change in changes}
    return {
        "redeploys": len(redeploys),
        "needless": len([month for month in redeploys if month not in changes]),
        "checks": len([r for r in played if r.acted[policy] and not r.redeployed[policy]]),
        "act_lag": {c: first_lag(played, policy, "acted", *window) for c, window in windows.items()},
        "redeploy_lag": {c: first_lag(played, policy, "redeployed", *window) for c, window in windows.items()},
        "mean_f1": sum(record.served_f1[policy] for record in played) / len(played),
    }


def measure_change(files: dict, holdouts: dict, change: int) -> dict:
    """A change, measured: exit rates, employees medians, the largest KS D over the features, and
    the F1 on the change month's holdout of a model trained on the month before and on the month."""
    old, new, holdout = files[change - 1], files[change], holdouts[change]
    return {
        "exit_rate_before": old["exited"].mean(),
        "exit_rate_after": new["exited"].mean(),
        "employees_median_before": old["number_of_employees"].median(),
        "employees_median_after": new["number_of_employees"].median(),
        "ks_d": max(ks_2samp(old[feature], new[feature]).statistic for feature in FEATURES),
        "f1_old_model": score_model(train_model(old), holdout),
        "f1_new_model": score_model(train_model(new), holdout),
    }


# --- printing ----------------------------------------------------------------------------------


def is_number(text: str) -> bool:
    try:
        float(text.rstrip("*"))
    except ValueError:
        return text in ("", "-", "never")
    return True


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table, columns aligned: numbers to the right, text to the left."""
    cells = [headers] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(is_number(row[i]) for row in cells[1:]) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def lag_text(lag: int | None) -> str:
    return "never" if lag is None else str(lag)


def worst_lag(lags: list[int | None]) -> int | None:
    return None if any(lag is None for lag in lags) else max(lags)


def print_header(seeds: list[int], months: int, rows: int = ROWS) -> None:
    print("Simulation benchmark of the full process's decisions (benchmark/simulate.py)")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}; date {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    print(f"Seeds {' '.join(map(str, seeds))}; months 0..{months}; {rows:,} rows a month, holdouts of {ROWS:,}")
    print("\nSchedule (a change's first month is the first month of the new regime):")
    for index, (start, regime, kind) in enumerate(SCHEDULE):
        if start > months:
            break
        following = [s for s, _, _ in SCHEDULE[index + 1 :] if s <= months]
        end = following[0] - 1 if following else months
        what = "the bootstrap file, then no change" if kind is None else f"change: {kind}"
        print(f"  months {start:>2}-{end:<2} {regime:<14} {what}")


CHANGE_MEASURES = [
    ("exit rate, month before", "exit_rate_before", ".3f"),
    ("exit rate, change month", "exit_rate_after", ".3f"),
    ("employees median, month before", "employees_median_before", ".0f"),
    ("employees median, change month", "employees_median_after", ".0f"),
    ("largest KS D over the features", "ks_d", ".3f"),
    ("F1 of a model of the month before", "f1_old_model", ".3f"),
    ("F1 of a model of the change month", "f1_new_model", ".3f"),
]


def print_changes(measures: dict[int, list[dict]]) -> None:
    """Each change measured on every seed's files: the mean over seeds, and the range."""
    print("\nThe changes, measured on each seed's files (mean over seeds [min, max]); each model is")
    print(f"trained on one month's file ({ROWS:,} rows) and scored on the change month's holdout:")
    rows = []
    for label, key, spec in CHANGE_MEASURES:
        row = [label]
        for values in measures.values():
            numbers = [value[key] for value in values]
            mean = sum(numbers) / len(numbers)
            row.append(f"{mean:{spec}} [{min(numbers):{spec}}, {max(numbers):{spec}}]")
        rows.append(row)
    headers = ["measure"] + [
        f"@{change} {change_kind(change)}: {regime_of(change - 1)} -> {regime_of(change)}" for change in measures
    ]
    print(format_table(headers, rows))


def served_text(record: Month, policy: str) -> str:
    if not record.served_f1:
        return ""
    return f"{record.served_f1[policy]:.3f}" + ("*" if record.redeployed[policy] else "")


def print_months(seed: int, records: list[Month]) -> None:
    print(f"\nSeed {seed}: served F1 on each month's holdout (the model live before the month's file);")
    print("* = the policy redeployed after the month's file (so a new model serves the next month)")
    rows = [
        [
            record.month,
            record.regime,
            record.decision + ("" if record.exit_code == 0 else f" (exit {record.exit_code})"),
            *(served_text(record, policy) for policy in POLICIES),
        ]
        for record in records
    ]
    print(format_table(["month", "regime", "new policy's decision", *POLICIES], rows))


def print_seed_summary(seed: int, summaries: dict[str, dict], changes: list[int]) -> None:
    print(f"\nSeed {seed}: summary (lags in months after the change's first month; 0 = that month)")
    headers = ["policy", "redeploys", "needless", "checks only"]
    headers += [f"act @{c}" for c in changes] + [f"deploy @{c}" for c in changes] + ["mean F1"]
    rows = [
        [
            policy,
            s["redeploys"],
            s["needless"],
            s["checks"] if policy == "new policy" else "-",
            *(lag_text(s["act_lag"][c]) for c in changes),
            *(lag_text(s["redeploy_lag"][c]) for c in changes),
            f"{s['mean_f1']:.4f}",
        ]
        for policy, s in summaries.items()
    ]
    print(format_table(headers, rows))


def print_aggregate(results: dict[int, dict[str, dict]], changes: list[int]) -> None:
    print(f"\nAggregate over {len(results)} seed(s): mean served F1 (mean [min, max] over seeds),")
    print("needless redeploys summed over seeds, worst lag over seeds per change")
    headers = ["policy", "mean F1", "[min, max]", "needless", "redeploys"]
    headers += [f"worst act @{c}" for c in changes] + [f"worst deploy @{c}" for c in changes]
    rows = []
    for policy in POLICIES:
        per_seed = [summaries[policy] for summaries in results.values()]
        f1s = [s["mean_f1"] for s in per_seed]
        rows.append(
            [
                policy,
                f"{sum(f1s) / len(f1s):.4f}",
                f"[{min(f1s):.4f}, {max(f1s):.4f}]",
                sum(s["needless"] for s in per_seed),
                sum(s["redeploys"] for s in per_seed),
                *(lag_text(worst_lag([s["act_lag"][c] for s in per_seed])) for c in changes),
                *(lag_text(worst_lag([s["redeploy_lag"][c] for s in per_seed])) for c in changes),
            ]
        )
    print(format_table(headers, rows))


def target_checks(summary: dict, oracle: dict) -> dict[str, bool]:
    return {
        f"mean F1 within {TARGET_GAP} of the oracle": oracle["mean_f1"] - summary["mean_f1"] <= TARGET_GAP,
        f"at most {TARGET_NEEDLESS} needless redeploy": summary["needless"] <= TARGET_NEEDLESS,
        f"every change acted on within {TARGET_LAG} month": all(
            lag is not None and lag <= TARGET_LAG for lag in summary["act_lag"].values()
        ),
    }


def print_targets(results: dict[int, dict[str, dict]]) -> None:
    print("\nNew policy against the oracle, per seed (difference in mean served F1, new - oracle):")
    rows, held = [], {}
    for seed, summaries in results.items():
        new, oracle = summaries["new policy"], summaries["oracle"]
        checks = target_checks(new, oracle)
        for target, ok in checks.items():
            held.setdefault(target, []).append(ok)
        rows.append(
            [
                seed,
                f"{new['mean_f1'] - oracle['mean_f1']:+.4f}",
                *("yes" if ok else "NO" for ok in checks.values()),
            ]
        )
    print(format_table(["seed", "F1 - oracle", *held], rows))
    differences = [s["new policy"]["mean_f1"] - s["oracle"]["mean_f1"] for s in results.values()]
    print(
        f"Difference over seeds: mean {sum(differences) / len(differences):+.4f}, "
        f"min {min(differences):+.4f}, max {max(differences):+.4f}"
    )
    print("Targets on every seed:")
    for target, oks in held.items():
        verdict = "HOLDS" if all(oks) else f"MISSED on {oks.count(False)} of {len(oks)} seed(s)"
        print(f"  {target}: {verdict}")


# --- the command line ----------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="seeds to play")
    parser.add_argument("--seed", type=int, help="play this one seed (instead of --seeds)")
    parser.add_argument("--months", type=int, default=24, help="months after the bootstrap (>= 1)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows in each month's file (holdouts keep 10,000)")
    args = parser.parse_args(argv)
    if args.seed is not None:
        args.seeds = [args.seed]
    args.seeds = list(dict.fromkeys(args.seeds))  # a seed played twice would give the same figures
    if args.months < 1:
        parser.error("--months must be at least 1")
    return args


def main(argv=None) -> dict[int, dict[str, dict]]:
    args = parse_args(argv)
    started = time.perf_counter()
    changes = change_months(args.months)
    print_header(args.seeds, args.months, args.rows)
    results, measures = {}, {change: [] for change in changes}
    with tempfile.TemporaryDirectory(prefix="risk-simulate-") as folder:
        for seed in args.seeds:
            try:
                records, data = simulate_seed(seed, args.months, Path(folder), args.rows)
            except SimulationError as error:
                print(f"\nSeed {seed}: the simulation stopped: {error}")
                raise SystemExit(1) from None
            for change in changes:
                measures[change].append(measure_change(data["files"], data["holdouts"], change))
            results[seed] = {policy: summarize_policy(records, policy, changes, args.months) for policy in POLICIES}
            print_months(seed, records)
            print_seed_summary(seed, results[seed], changes)
    if changes:
        print_changes(measures)
    print_aggregate(results, changes)
    print_targets(results)
    print(f"\nWall time: {time.perf_counter() - started:.0f} s")
    return results


if __name__ == "__main__":
    main()
