"""The decision simulation (benchmark/simulate.py) on a short scenario, through the real full process:
every month's state and evidence are read back from the history, and no expectation was lowered."""

import importlib.util

import pytest
from conftest import PROJECT_DIR


def load_simulate():
    spec = importlib.util.spec_from_file_location("simulate", PROJECT_DIR / "benchmark" / "simulate.py")
    simulate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulate)
    return simulate


@pytest.mark.slow
def test_a_short_scenario_reads_every_months_state_and_evidence_and_no_lowered_expectation(tmp_path):
    simulate = load_simulate()
    # The rule changes at month 7 (of 8), 300 rows a month: the live model falls to F1 0.01 on it.
    scenario = simulate.Scenario("short", "rule change", 300, 8, (simulate.Change(7, "shifted", "rule"),))
    simulate.SCENARIOS["short"] = scenario
    result = simulate.simulate_seed("short", 1, str(tmp_path))
    months = result.months
    assert [m.month for m in months] == list(range(9))
    assert all(m.state in ("unproven", "healthy", "degraded", "unproven (new)") for m in months[1:])
    assert all(m.evidence.startswith(m.state.split(" ")[0] + ":") or m.state == "unproven (new)" for m in months[1:])
    assert all(m.evidence for m in months[1:])
    assert months[7].redeployed["new policy"] and months[7].decision.startswith("redeployed")
    assert not any(m.redeployed["new policy"] for m in months[1:7])  # six quiet months: no redeploy
    assert result.lowered == []
    targets = simulate.targets([result], scenario)
    assert targets["no expectation lowered without a deployment"] == (True, "none")
    assert targets["every month's state and evidence in the history"] == (True, "all")
    assert targets["needless redeploys"][0] and targets["material changes acted on in time"] == (True, "all")


def test_an_expectation_lowered_without_a_deployment_is_found_in_the_history(tmp_path):
    import sqlite3

    simulate = load_simulate()
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE monitoring (id INTEGER PRIMARY KEY, run_id INTEGER, model_id TEXT, reference_f1 REAL);"
        "CREATE TABLE model_references (id INTEGER PRIMARY KEY, model_id TEXT, run_id INTEGER, kind TEXT);"
        "INSERT INTO monitoring (run_id, model_id, reference_f1) VALUES (1, 'a', 0.8), (2, 'a', 0.8), (3, 'b', 0.6),"
        " (4, 'a', 0.7);"
        "INSERT INTO model_references (model_id, run_id, kind) VALUES ('a', 1, 'validation'), ('b', 5, 'revalidation');"
    )
    conn.close()
    assert simulate.lowered_expectations(path) == [
        "model b re-baselined by run 5",
        "model a judged against 0.700 in run 4",
    ]
