"""Simulation benchmark: how good are the full process's decisions over years of changing data?

Scenario families (SCENARIOS), each played over several seeds: a temporary project receives one file
a month (monthNN.csv) and fullprocess.py runs once as a subprocess, as cron would. Month 0 is the
bootstrap file: `history_months` months of rows, the history a company starts with. Before each run,
the model live during the month is scored (F1) on the month's holdout (10,000 rows of the same regime,
never shown to the pipeline). Baselines run in-process on the same files and holdouts: never re-train,
re-train monthly on the newest rows, the course's rule, and an oracle that knows the change points.
After each seed the history database is read: the live model's state and evidence every month, and
whether an expectation was ever lowered without a deployment.
`python benchmark/simulate.py [--scenarios NAME ...] [--seeds 1 2 3] [--jobs 2] [--report FILE]`;
temporary folders only (the report file aside).
"""

import argparse
import concurrent.futures
import datetime
import math
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

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from datagen.generate_data import REGIMES, blend, build_regime_month  # noqa: E402
from risk import sandbox  # noqa: E402
from risk.model import load_model, score_model, train_model  # noqa: E402

HOLDOUT_ROWS = 10_000
TEST_ROWS = 1_200
TESTDATA_STREAM = 2  # appended to the month-0 seed: the stream testdata.csv is drawn from
MARGIN = 0.05  # drift_margin's default: a change is material when a new model beats the old by more
TARGET_GAP = 0.02  # mean served F1 at most this far below the better of the oracle and the monthly baseline
TARGET_NEEDLESS = 1  # needless redeploys per 24 months
LAG_ABRUPT, LAG_SLOW = 2, 3  # months to act on an abrupt change, and after the end of a slow one
MONTHLY_ROWS_MONTHS = 6  # the monthly baseline re-trains on the newest this many months of rows
OK_EXIT_CODES = {0: "ok", 2: "API unreachable", 3: "no better model"}
LOG_TAIL_LINES = 40
POLICIES = ["new policy", "never re-train", "monthly", "course rule", "oracle"]


class SimulationError(Exception):
    """The full process failed or was busy: the simulation cannot go on."""


@dataclass(frozen=True)
class Change:
    """The business moves to `regime` from month `start`, abruptly, or blended over `months` months."""

    start: int
    regime: str
    kind: str
    months: int = 1

    @property
    def end(self) -> int:
        """The first month wholly in the new regime."""
        return self.start + self.months - 1

    @property
    def slow(self) -> bool:
        return self.months > 1


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    rows: int
    months: int
    changes: tuple[Change, ...] = ()
    first: str = "source"
    history_months: int = 12


SCENARIOS = {
    scenario.name: scenario
    for scenario in [
        Scenario(
            "abrupt-300",
            "three abrupt changes (exit rate, rule, client size), 300 rows a month",
            300,
            24,
            (Change(7, "exodus", "exit rate"), Change(13, "shifted", "rule"), Change(19, "shifted-grown", "size")),
        ),
        Scenario(
            "abrupt-150",
            "the same three abrupt changes, 150 rows a month",
            150,
            24,
            (Change(7, "exodus", "exit rate"), Change(13, "shifted", "rule"), Change(19, "shifted-grown", "size")),
        ),
        Scenario(
            "slow-300",
            "9 quiet months, then the rule turns over 8 months, 300 rows a month",
            300,
            24,
            (Change(9, "shifted", "rule, slowly", 8),),
        ),
        Scenario(
            "quiet-slow-scarce-150",
            "18 quiet months, the rule turns over 6, then exits grow scarce (13 %), 150 rows a month",
            150,
            36,
            (Change(18, "shifted", "rule, slowly", 6), Change(28, "shifted-scarce", "scarce exits")),
        ),
        Scenario(
            "scarce-300",
            "scarce exits (14 %) throughout, the rule changes at month 12, 300 rows a month",
            300,
            24,
            (Change(12, "shifted-scarce", "rule"),),
            first="scarce",
        ),
        Scenario("no-change-150", "no change at all for 36 months, 150 rows a month", 150, 36),
        Scenario("no-change-300", "no change at all for 36 months, 300 rows a month", 300, 36),
        Scenario(
            "large-10000",
            "the three abrupt changes with 10,000 rows a month (one month of history)",
            10_000,
            24,
            (Change(7, "exodus", "exit rate"), Change(13, "shifted", "rule"), Change(19, "shifted-grown", "size")),
            history_months=1,
        ),
    ]
}


@dataclass
class Month:
    """One month of one seed: what the new policy did and its live model's state, and each policy's
    F1 on the month's holdout (the model live before the month's file arrived)."""

    month: int
    regime: str
    decision: str = ""
    state: str = ""
    evidence: str = ""
    exit_code: int | None = None
    served_f1: dict = field(default_factory=dict)
    redeployed: dict = field(default_factory=dict)
    acted: dict = field(default_factory=dict)


@dataclass
class SeedResult:
    scenario: str
    seed: int
    months: list[Month]
    materiality: dict  # change start -> (F1 of the old regime's model, of the new regime's) on the holdout
    lowered: list[str]  # expectations lowered without a deployment, described
    seconds: float


# --- the scenario's data -------------------------------------------------------------------------


def regime_of(scenario: Scenario, month: int):
    """The Regime in force in `month` (a blend during a slow change) and its name for people."""
    regime, name = REGIMES[scenario.first], scenario.first
    for change in scenario.changes:
        if month >= change.end:
            regime, name = REGIMES[change.regime], change.regime
        elif month >= change.start:
            weight = (month - change.start + 1) / change.months
            return blend(regime, REGIMES[change.regime], weight), f"{name}>{change.regime} {weight:.0%}"
    return regime, name


def draw_file(scenario: Scenario, seed: int, month: int) -> pd.DataFrame:
    rows = scenario.rows * (scenario.history_months if month == 0 else 1)
    return build_regime_month([seed, month], regime_of(scenario, month)[0], rows)


def draw_holdout(scenario: Scenario, seed: int, month: int) -> pd.DataFrame:
    return build_regime_month([seed, month], regime_of(scenario, month)[0], HOLDOUT_ROWS, holdout=True)


def draw_testdata(scenario: Scenario, seed: int) -> pd.DataFrame:
    """The course's fixed test set: 1,200 rows of the first regime (soon stale)."""
    return build_regime_month([seed, 0, TESTDATA_STREAM], scenario.first, TEST_ROWS)


def boundaries(scenario: Scenario) -> list[int]:
    """Months in which the regime differs from the month before (every month of a slow turn)."""
    return sorted({month for change in scenario.changes for month in range(change.start, change.end + 1)})


# --- the temporary project and the full process -----------------------------------------------


def make_project(root: Path, testdata: pd.DataFrame) -> Path:
    """A config in `root` over an empty input folder, the test data and a fresh outdated-packages cache."""
    (root / "inputs").mkdir(parents=True)
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


def connect(history_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{history_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def read_newest_run(history_path: Path) -> dict:
    """The newest run: its record, whether a challenger search (a gate verdict) ran, what it flagged,
    the window that won, and the live model's state after it with its evidence."""
    conn = connect(history_path)
    try:
        run = dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
        verdicts = [dict(row) for row in conn.execute("SELECT * FROM verdicts WHERE run_id = ?", (run["id"],))]
        check = conn.execute("SELECT state, evidence FROM monitoring WHERE run_id = ?", (run["id"],)).fetchone()
    finally:
        conn.close()
    run["checked"] = any(v["kind"] == "gate" for v in verdicts)
    run["flags"] = sorted({v["kind"] for v in verdicts if v["outcome"] == "drift" and v["kind"] != "course"})
    run["window"] = next((v["feature"] for v in verdicts if v["outcome"] == "chosen"), None)
    run["redeployed"] = run["release_after"] is not None and run["release_after"] != run["release_before"]
    run["state"], run["evidence"] = (check["state"], check["evidence"]) if check else ("", "")
    if run["redeployed"]:
        run["state"] = "unproven (new)"
    return run


def lowered_expectations(history_path: Path) -> list[str]:
    """Every expectation lowered without a deployment: a check of a model against a lower reference
    than an earlier check of the same model, or a 'revalidation' reference (the old ratchet)."""
    conn = connect(history_path)
    try:
        checks = conn.execute("SELECT run_id, model_id, reference_f1 FROM monitoring ORDER BY id").fetchall()
        ratchets = conn.execute("SELECT model_id, run_id FROM model_references WHERE kind = 'revalidation'").fetchall()
    finally:
        conn.close()
    found = [f"model {row['model_id']} re-baselined by run {row['run_id']}" for row in ratchets]
    highest: dict[str, float] = {}
    for row in checks:
        if row["reference_f1"] is None:
            continue
        if row["reference_f1"] < highest.get(row["model_id"], -1) - 1e-12:
            found.append(f"model {row['model_id']} judged against {row['reference_f1']:.3f} in run {row['run_id']}")
        highest[row["model_id"]] = max(highest.get(row["model_id"], -1), row["reference_f1"])
    return found


def describe_decision(run: dict) -> str:
    """The new policy's decision in a few words: what it did, what was flagged, which window won."""
    decision = run["decision"] or ""
    words = {
        "bootstrap": "bootstrap",
        "no drift": "no drift",
        "insufficient": "too little evidence",
        "healthy again": "healthy again",
        "drift: re-trained": "redeployed",
        "drift, no better": "searched, kept",
        "data drift, no better": "searched, kept",
        "exit rate, no better": "searched, kept",
        "data drift and exit rate, no better": "searched, kept",
        "no new rows": "rejected",
        "failed": "FAILED",
    }
    text = next((short for start, short in words.items() if decision.startswith(start)), decision)
    short_flags = {"performance": "F1", "data drift": "features", "exit rate": "exit rate", "recovery": "F1"}
    if run["flags"]:
        text += f" [{', '.join(sorted({short_flags.get(flag, flag) for flag in run['flags']}))}]"
    if run["redeployed"] and run["window"]:
        text += f" <- {run['window']}"
    return text


# --- the baselines -----------------------------------------------------------------------------


class NeverRetrain:
    """The bootstrap model, forever."""

    def __init__(self, first_file):
        self.model = train_model(first_file)

    def observe(self, month: int, df) -> bool:
        return False


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


class Monthly:
    """Re-train every month on the newest `rows` rows, and redeploy."""

    def __init__(self, first_file, rows: int):
        self.rows = rows
        self.recent = first_file.tail(rows)
        self.model = train_model(self.recent)

    def observe(self, month: int, df) -> bool:
        self.recent = pd.concat([self.recent, df], ignore_index=True).tail(self.rows)
        self.model = train_model(self.recent)
        return True


class Oracle:
    """Knows when the business changed: re-trains every month on all rows since the newest change
    (during a slow turn, on the newest month alone)."""

    def __init__(self, first_file, scenario: Scenario):
        self.model = train_model(first_file)
        self.since = [first_file]
        self.boundaries = set(boundaries(scenario))

    def observe(self, month: int, df) -> bool:
        self.since = [df] if month in self.boundaries else [*self.since, df]
        self.model = train_model(pd.concat(self.since, ignore_index=True))
        return True


# --- one seed ----------------------------------------------------------------------------------


def live_model_path(root: Path) -> Path:
    return root / "production_deployment" / "trainedmodel.pkl"


def play_month(month: int, scenario: Scenario, seed: int, root: Path, baselines: dict) -> Month:
    """Score every live model on the holdout, then let every policy see the month's file."""
    df, holdout = draw_file(scenario, seed, month), draw_holdout(scenario, seed, month)
    record = Month(month, regime_of(scenario, month)[1])
    record.served_f1["new policy"] = score_model(load_model(live_model_path(root)), holdout)
    for name, baseline in baselines.items():
        record.served_f1[name] = score_model(baseline.model, holdout)
    df.to_csv(root / "inputs" / f"month{month:02d}.csv", index=False, lineterminator="\n")
    record.exit_code = run_fullprocess(root / "config.json")
    run = read_newest_run(root / "logs" / "history.db")
    record.decision, record.state, record.evidence = describe_decision(run), run["state"], run["evidence"]
    record.redeployed["new policy"] = run["redeployed"]
    record.acted["new policy"] = run["redeployed"] or run["checked"]
    for name, baseline in baselines.items():
        record.redeployed[name] = record.acted[name] = baseline.observe(month, df)
    return record


def materiality(scenario: Scenario, seed: int) -> dict:
    """Each change, measured on the month it is complete: F1 on its holdout of a model of the month
    before the change and of a model of that month (as many rows as the bootstrap file)."""
    measured = {}
    for change in scenario.changes:
        rows = scenario.rows * scenario.history_months
        before = build_regime_month([seed, change.start, 7], regime_of(scenario, change.start - 1)[0], rows)
        after = build_regime_month([seed, change.end, 8], regime_of(scenario, change.end)[0], rows)
        holdout = draw_holdout(scenario, seed, change.end)
        measured[change.start] = (score_model(train_model(before), holdout), score_model(train_model(after), holdout))
    return measured


def simulate_seed(scenario_name: str, seed: int, work_path: str) -> SeedResult:
    """Play months 0..months of one seed of a scenario."""
    started = time.perf_counter()
    scenario = SCENARIOS[scenario_name]
    root = Path(work_path) / f"{scenario.name}-seed{seed}"
    testdata = draw_testdata(scenario, seed)
    make_project(root, testdata)
    first = draw_file(scenario, seed, 0)
    first.to_csv(root / "inputs" / "month00.csv", index=False, lineterminator="\n")
    bootstrap = Month(0, regime_of(scenario, 0)[1], exit_code=run_fullprocess(root / "config.json"))
    if not live_model_path(root).is_file():
        raise SimulationError(f"the bootstrap run deployed nothing:\n{log_tail(root)}")
    run = read_newest_run(root / "logs" / "history.db")
    bootstrap.decision, bootstrap.state = describe_decision(run), run["state"]
    baselines = {
        "never re-train": NeverRetrain(first),
        "monthly": Monthly(first, MONTHLY_ROWS_MONTHS * scenario.rows),
        "course rule": CourseRule(first, testdata),
        "oracle": Oracle(first, scenario),
    }
    months = [bootstrap]
    for month in range(1, scenario.months + 1):
        months.append(play_month(month, scenario, seed, root, baselines))
    lowered = lowered_expectations(root / "logs" / "history.db")
    return SeedResult(scenario.name, seed, months, materiality(scenario, seed), lowered, time.perf_counter() - started)


# --- measuring -----------------------------------------------------------------------------------


def response_window(change: Change, scenario: Scenario) -> tuple[int, int]:
    """The months in which acting on `change` counts: from its start to its end plus the allowed lag."""
    return change.start, min(scenario.months, change.end + (LAG_SLOW if change.slow else LAG_ABRUPT))


def first_month(months: list[Month], policy: str, flag: str, start: int, end: int) -> int | None:
    return next((m.month for m in months if start <= m.month <= end and getattr(m, flag)[policy]), None)


def summarize(result: SeedResult, policy: str, scenario: Scenario) -> dict:
    played = result.months[1:]
    windows = [response_window(change, scenario) for change in scenario.changes]
    redeploys = [m.month for m in played if m.redeployed[policy]]
    needless = [month for month in redeploys if not any(start <= month <= end for start, end in windows)]
    lags = {}
    for change in scenario.changes:
        later = [c.start for c in scenario.changes if c.start > change.start]
        last = (later[0] - 1) if later else scenario.months
        acted = first_month(played, policy, "acted", change.start, last)
        deployed = first_month(played, policy, "redeployed", change.start, last)
        lags[change.start] = (
            None if acted is None else acted - change.end,
            None if deployed is None else deployed - change.end,
        )
    return {
        "mean_f1": sum(m.served_f1[policy] for m in played) / len(played),
        "redeploys": len(redeploys),
        "needless": len(needless),
        "needless_months": needless,
        "lags": lags,
    }


def material(result: SeedResult, change: Change) -> bool:
    old, new = result.materiality[change.start]
    return new - old > MARGIN


def lag_allowed(change: Change) -> int:
    return LAG_SLOW if change.slow else LAG_ABRUPT


def targets(results: list[SeedResult], scenario: Scenario) -> dict[str, tuple[bool, str]]:
    """The issue's targets for one scenario family, mean over seeds: (met, the figures behind it)."""
    mean = {
        policy: sum(summarize(r, policy, scenario)["mean_f1"] for r in results) / len(results) for policy in POLICIES
    }
    best = max(mean["oracle"], mean["monthly"])
    needless = [summarize(r, "new policy", scenario)["needless"] for r in results]
    per_24 = sum(needless) / len(results) * 24 / scenario.months
    found = {
        "mean served F1": (
            mean["new policy"] >= best - TARGET_GAP,
            f"{mean['new policy']:.4f} vs {best:.4f} - {TARGET_GAP} (best of oracle and monthly)",
        ),
        "needless redeploys": (
            (sum(needless) == 0) if not scenario.changes else per_24 <= TARGET_NEEDLESS,
            f"{per_24:.2f} per 24 months (per seed: {', '.join(map(str, needless))})",
        ),
    }
    late = []
    for change in scenario.changes:
        for result in results:
            if not material(result, change):
                continue
            acted = summarize(result, "new policy", scenario)["lags"][change.start][0]
            if acted is None or acted > lag_allowed(change):
                late.append(f"seed {result.seed} @{change.start}: {lag_text(acted)}")
    if scenario.changes:
        found["material changes acted on in time"] = (not late, "; ".join(late) or "all")
    lowered = [f"seed {r.seed}: {text}" for r in results for text in r.lowered]
    found["no expectation lowered without a deployment"] = (not lowered, "; ".join(lowered) or "none")
    unrecorded = [f"seed {r.seed} month {m.month}" for r in results for m in r.months[1:] if not m.evidence]
    found["every month's state and evidence in the history"] = (not unrecorded, "; ".join(unrecorded) or "all")
    return found


# --- printing ----------------------------------------------------------------------------------


def format_table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def lag_text(lag: int | None) -> str:
    return "never" if lag is None else str(lag)


def machine_line() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}; "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )


def family_table(by_scenario: dict[str, list[SeedResult]]) -> str:
    """One row per family and policy: mean served F1 over seeds [min, max], redeploys, needless ones."""
    rows = []
    for name, results in by_scenario.items():
        scenario = SCENARIOS[name]
        for policy in POLICIES:
            summaries = [summarize(result, policy, scenario) for result in results]
            f1s = [s["mean_f1"] for s in summaries]
            redeploys = sum(s["redeploys"] for s in summaries)
            needless = sum(s["needless"] for s in summaries)
            new = policy == "new policy"
            rows.append(
                [
                    name if policy == POLICIES[0] else "",
                    f"**{policy}**" if new else policy,
                    f"{sum(f1s) / len(f1s):.4f} [{min(f1s):.4f}, {max(f1s):.4f}]",
                    "every month" if policy in ("monthly", "oracle") else redeploys,
                    "-" if policy in ("monthly", "oracle") else needless,
                ]
            )
    headers = ["scenario", "policy", "mean served F1 (mean [min, max] over seeds)", "redeploys", "needless"]
    return format_table(headers, rows)


def lag_table(by_scenario: dict[str, list[SeedResult]]) -> str:
    """Each change of each family: its size, and how many months the new policy took to act on it."""
    rows = []
    for name, results in by_scenario.items():
        scenario = SCENARIOS[name]
        for change in scenario.changes:
            olds = [r.materiality[change.start][0] for r in results]
            news = [r.materiality[change.start][1] for r in results]
            acts = [summarize(r, "new policy", scenario)["lags"][change.start] for r in results]
            when = f"{change.start}" + (f"-{change.end}" if change.slow else "")
            rows.append(
                [
                    name,
                    f"@{when} {change.kind}",
                    f"{sum(olds) / len(olds):.2f} -> {sum(news) / len(news):.2f}",
                    f"{sum(material(r, change) for r in results)} of {len(results)}",
                    ", ".join(lag_text(a) for a, _ in acts),
                    ", ".join(lag_text(d) for _, d in acts),
                    lag_allowed(change),
                ]
            )
    headers = [
        "scenario",
        "change",
        "F1 old model -> new model",
        "material (seeds)",
        "months to act, per seed",
        "months to redeploy, per seed",
        "allowed",
    ]
    return format_table(headers, rows)


def target_table(by_scenario: dict[str, list[SeedResult]]) -> str:
    rows = []
    for name, results in by_scenario.items():
        for target, (met, figures) in targets(results, SCENARIOS[name]).items():
            rows.append([name, target, "met" if met else "**missed**", figures])
    return format_table(["scenario", "target (mean over seeds)", "", "measured"], rows)


def month_table(result: SeedResult) -> str:
    rows = [
        [
            m.month,
            m.regime,
            m.decision + ("" if m.exit_code in (0, None) else f" (exit {m.exit_code})"),
            m.state,
            *(
                "" if not m.served_f1 else f"{m.served_f1[p]:.3f}" + ("*" if m.redeployed.get(p) else "")
                for p in ("new policy", "never re-train", "monthly", "oracle")
            ),
            m.evidence.replace("|", "/"),
        ]
        for m in result.months
    ]
    headers = ["month", "regime", "decision", "state after", "new policy", "never", "monthly", "oracle", "evidence"]
    return format_table(headers, rows)


def report(by_scenario: dict[str, list[SeedResult]], seeds: list[int], seconds: float) -> str:
    """The whole report: the scenarios, the tables, and every month of every seed."""
    parts = [
        "# Simulation of the decisions\n",
        f"Generated by `make simulate` (`benchmark/simulate.py`) on {machine_line()}; seeds {seeds}; "
        f"{seconds / 60:.0f} min. Each month is served by the model live before its file arrived, scored on "
        f"{HOLDOUT_ROWS:,} holdout rows of that month's regime. 'monthly' re-trains every month on the newest "
        f"{MONTHLY_ROWS_MONTHS} months of rows; the oracle re-trains every month on all rows since the newest "
        "change (it knows when the business changed). A redeploy is needless outside every change's window "
        f"(its start to its end plus {LAG_ABRUPT} months, {LAG_SLOW} for a slow change). A change is material "
        f"when a model of the new regime beats one of the old by more than {MARGIN} on its holdout.\n",
        "## Scenario families\n",
        format_table(
            ["scenario", "what happens", "rows a month", "months", "history at the start"],
            [
                [s.name, s.title, s.rows, s.months, f"{s.history_months} month(s)"]
                for s in SCENARIOS.values()
                if s.name in by_scenario
            ],
        ),
        "\n## Targets\n",
        target_table(by_scenario),
        "\n## Served F1 and redeploys\n",
        family_table(by_scenario),
        "\n## Changes: their size and the time to act (0 = the month the change is complete)\n",
        lag_table(by_scenario),
        "\n## Every month: the new policy's decision, its live model's state after it, and the evidence\n",
        "(* = that policy redeployed after the month's file, so a new model serves the next month; the evidence is "
        "the check of the model that was live, as recorded in the history's `monitoring` table)\n",
    ]
    for name, results in by_scenario.items():
        for result in results:
            parts += [f"\n### {name}, seed {result.seed} ({result.seconds:.0f} s)\n", month_table(result)]
    return "\n".join(parts) + "\n"


# --- the command line ----------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="seeds to play")
    parser.add_argument("--months", type=int, help="play only this many months of each scenario (a quick look)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="seeds played at once")
    parser.add_argument("--report", type=Path, help="also write the report (Markdown) to this file")
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(args.seeds))
    if args.months is not None and args.months < 1:
        parser.error("--months must be at least 1")
    return args


def shortened(months: int | None) -> None:
    """--months: every scenario cut to that many months (changes after it dropped)."""
    if months is None:
        return
    for name, scenario in list(SCENARIOS.items()):
        changes = tuple(change for change in scenario.changes if change.end <= months)
        SCENARIOS[name] = Scenario(**{**vars(scenario), "months": min(months, scenario.months), "changes": changes})


def main(argv=None) -> dict[str, list[SeedResult]]:
    args = parse_args(argv)
    shortened(args.months)
    started = time.perf_counter()
    print(f"Simulating {', '.join(args.scenarios)} over seeds {args.seeds} on {machine_line()}", flush=True)
    by_scenario: dict[str, list[SeedResult]] = {name: [] for name in args.scenarios}
    with tempfile.TemporaryDirectory(prefix="risk-simulate-") as folder:
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=args.jobs, initializer=shortened, initargs=(args.months,)
        ) as pool:
            futures = {
                pool.submit(simulate_seed, name, seed, folder): (name, seed)
                for name in args.scenarios
                for seed in args.seeds
            }
            for future in concurrent.futures.as_completed(futures):
                name, seed = futures[future]
                try:
                    result = future.result()
                except SimulationError as error:
                    print(f"\n{name}, seed {seed}: the simulation stopped: {error}")
                    raise SystemExit(1) from None
                print(f"  {name} seed {seed}: {result.seconds:.0f} s", flush=True)
                by_scenario[name].append(result)
    for results in by_scenario.values():
        results.sort(key=lambda result: result.seed)
    seconds = time.perf_counter() - started
    text = report(by_scenario, args.seeds, seconds)
    print("\n" + text.split("\n## Every month")[0])
    if args.report:
        args.report.write_text(text, encoding="utf-8")
        print(f"Report with every month of every seed: {args.report}")
    print(f"Wall time: {seconds:.0f} s ({math.ceil(seconds / 60)} min)")
    return by_scenario


if __name__ == "__main__":
    main()
