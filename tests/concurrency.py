"""Run calls at the same moment from separate threads (each with its own database connection)."""

import threading
from collections.abc import Callable


def at_once(*calls: Callable, expected: type[BaseException] = Exception) -> list:
    """Start every call together; return each one's result, or the `expected` exception it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index: int, call: Callable) -> None:
        from django.db import connection

        try:
            barrier.wait()
            outcomes[index] = call()
        except expected as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
