"""The full process's steps as it calls them: each timed and logged, its seconds kept for the run's record,
and its failure turned into StepFailed (one line saying which step and why). Standard library only.
"""

import logging
import time

from risk import history
from risk.config import PipelineError

logger = logging.getLogger("fullprocess")  # the full process's own lines


class StepFailed(Exception):
    """A step of the run failed; the message says which and why. An unexpected error (a bug) is kept as the
    cause, so that the line the run logs carries its traceback into the log."""

    def __init__(self, step: str, reason: str):
        super().__init__(f"step {step} failed: {reason}")
        self.step, self.reason = step, reason


def run_step(name: str, steps: dict, step, *args, **kwargs):
    """`step(*args, **kwargs)`, a pipeline step, with a line when it starts and one when it ends; its seconds
    go into `steps` under `name`; returns its result. The history's failures pass through (the run stops there)."""
    started = time.perf_counter()
    logger.info("step %s started", name)
    try:
        result = step(*args, **kwargs)
    except history.FAILURES:
        raise
    except PipelineError as error:
        raise StepFailed(name, str(error)) from None
    except Exception as error:  # a bug, not bad input: its traceback goes to the log with the run's line
        raise StepFailed(name, f"unexpected {type(error).__name__}: {error}") from error
    seconds = time.perf_counter() - started
    steps[name] = round(seconds, 3)
    logger.info("step %s finished in %.2fs", name, seconds)
    return result


def timed(name: str, steps: dict, action, *args, **kwargs):
    """`action(*args, **kwargs)`, a part of the run that is not a script (the drift check, the challenger
    search), timed into `steps` under `name`; an expected failure is StepFailed, anything else passes."""
    started = time.perf_counter()
    try:
        result = action(*args, **kwargs)
    except history.FAILURES:
        raise
    except PipelineError as error:
        raise StepFailed(name, str(error)) from None
    steps[name] = round(time.perf_counter() - started, 3)
    return result
