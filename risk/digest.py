"""The diagnostics in a few lines a person reads: predictions counted, each column's statistics, the
missing values, the steps' timings, the packages behind their latest release.

apicalls.py heads apireturns.txt with them and diagnostics.py prints them; both keep the full values in a
file. Pure functions of the answers' shapes (risk.diagnosis makes them); standard library only.
"""


def predictions_text(predictions: list) -> str:
    """`271 of 1200 predicted to exit (22.6 %)`."""
    exits = sum(1 for value in predictions if value == 1)
    share = f" ({100 * exits / len(predictions):.1f} %)" if predictions else ""
    return f"{exits} of {len(predictions)} predicted to exit{share}"


def column_lines(summary: dict[str, dict]) -> list[str]:
    """One line per column: `lastmonth_activity  mean 95.27, median 50.00, std 155.02` (`-`: nothing to measure)."""
    width = max(map(len, summary), default=0)
    return [
        f"{column:<{width}}  " + ", ".join(f"{key} {number(stats.get(key))}" for key in ("mean", "median", "std"))
        for column, stats in summary.items()
    ]


def number(value) -> str:
    return "-" if value is None else f"{value:,.2f}"


def missing_text(missing: dict[str, float]) -> str:
    """`none`, or each column with missing values and its percentage: `exited 12.5 %`."""
    return ", ".join(f"{column} {share:g} %" for column, share in missing.items() if share) or "none"


def timings_text(execution_time: dict) -> str:
    """`ingestion 0.08 s, training not run yet` from {ingestion_seconds: 0.0772, training_seconds: None}."""
    return (
        ", ".join(
            f"{step.removesuffix('_seconds')} {'not run yet' if seconds is None else f'{seconds:.2f} s'}"
            for step, seconds in execution_time.items()
        )
        or "none recorded"
    )


def packages_text(packages: list[dict]) -> str:
    """`1 of 14 behind their latest release, 1 not checked (flask)`: a package whose latest version is not
    known (`unknown (...)`, `not checked ...`) is not counted as behind."""
    checked = [item for item in packages if str(item.get("latest", ""))[:1].isdigit()]
    behind = [item["package"] for item in checked if item["latest"] != item.get("installed")]
    unchecked = f", {len(packages) - len(checked)} not checked" if len(checked) < len(packages) else ""
    names = f" ({', '.join(behind)})" if behind else ""
    return f"{len(behind)} of {len(packages)} behind their latest release{unchecked}{names}"
