"""Running the pipeline's steps for the full process: its log, its steps timed, their failures.

Standard library only at import (the idle cron run writes one line through RunLog).
"""

import sys
import time

from risk import history
from risk.config import PipelineError
from risk.logs import LineFormatter, log_text, relative_paths, same_file


class RunLog:
    """Timestamped lines appended to the log file, and to stderr unless stderr is that file.

    Every line is one line, with paths relative to `root` (the config file's folder): a file name
    holding a newline cannot forge a line, and the log does not say where the server keeps its files.
    """

    def __init__(self, log_path: str, root: str):
        self.log_path, self.root = log_path, root
        self.handle = open(log_path, "a", encoding="utf-8", buffering=1)
        self.echo = not same_file(sys.stderr, log_path)

    def __call__(self, message: str, level: str = "INFO") -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        line = f"{stamp} {level} fullprocess: {log_text(message, self.root)}\n"
        self.handle.write(line)
        if self.echo:
            sys.stderr.write(line)

    def write_traceback(self) -> None:
        """The traceback of the exception being handled, for a bug's record, with relative paths."""
        import traceback

        self.handle.write(relative_paths(traceback.format_exc(), self.root))

    def attach_step_logging(self) -> None:
        """Send the steps' own log lines (the logging module) to the same places, written the same way."""
        import logging

        handlers = [logging.FileHandler(self.log_path, encoding="utf-8")]
        if self.echo:
            handlers.append(logging.StreamHandler(sys.stderr))
        for handler in handlers:
            handler.setFormatter(LineFormatter(self.root))
        logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)


class StepFailed(Exception):
    """A step of the run failed; the message says which and why."""

    def __init__(self, step: str, reason: str):
        super().__init__(f"step {step} failed: {reason}")
        self.step, self.reason = step, reason


def run_step(name: str, config_path: str, log: RunLog, steps: dict, **kwargs):
    """Run one step's main() in this process, timed and logged; return its result."""
    import importlib

    started = time.perf_counter()
    log(f"step {name} started")
    try:
        result = importlib.import_module(name).main(config_path, **kwargs)
    except history.FAILURES:  # the history, not the step: the run stops there (fullprocess.run_once)
        raise
    except PipelineError as error:
        raise StepFailed(name, str(error)) from None
    except Exception as error:  # a bug, not bad input: keep the traceback in the log
        log.write_traceback()
        raise StepFailed(name, f"unexpected {type(error).__name__}: {error}") from None
    seconds = time.perf_counter() - started
    steps[name] = round(seconds, 3)
    log(f"step {name} finished in {seconds:.2f}s")
    return result


def timed(name: str, log: RunLog, steps: dict, action):
    """A part of the run that is not a script (the drift check, the challenger search), timed."""
    started = time.perf_counter()
    try:
        result = action()
    except history.FAILURES:
        raise
    except PipelineError as error:
        raise StepFailed(name, str(error)) from None
    steps[name] = round(time.perf_counter() - started, 3)
    return result
