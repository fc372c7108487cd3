"""Wait for something another process does (a worker, a server starting), never for a fixed time."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Between two checks the wait blocks on the process that should act, when there is one (so its exit
# ends the wait at once); otherwise it pauses this long. The bound is always `timeout`.
_CHECK_EVERY = 0.1


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    process: subprocess.Popen | None = None,
) -> T:
    """Check `predicate()` until it is truthy and return its value; fail after `timeout` seconds, or as
    soon as `process` (the one expected to make it true) exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if process is None:
            time.sleep(_CHECK_EVERY)  # the poll interval between checks, not a wait for time to pass
            continue
        try:
            process.wait(_CHECK_EVERY)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the process expected to bring about {what} exited with {process.returncode}")
