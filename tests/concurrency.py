"""Run calls at the same moment from separate threads (each with its own database connection), and
force the race a row lock must win: each thread is held at a barrier right after it has read the row.

Without the lock both threads read the row as it was, meet at the barrier and both decide on that same
state, so a test of "exactly one outcome" fails every time. With the lock the second thread's read
waits inside PostgreSQL for the first one's transaction; the main thread sees that wait in
`pg_stat_activity` and breaks the barrier, so the first thread goes on and commits, and the second one
then reads the decided row.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from django.db import connection

# Long enough for a loaded machine, short enough that a broken test does not hang the suite.
BOUND_SECONDS = 30.0
_POLL_SECONDS = 0.02


class _HeldAfterFirstRead:
    """A database execute wrapper: after the thread's first SELECT from `table`, wait at `barrier`."""

    def __init__(self, table: str, barrier: threading.Barrier):
        self.table, self.barrier, self.held = table, barrier, False

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not self.held and sql.lstrip().upper().startswith("SELECT") and f'FROM "{self.table}"' in sql:
            self.held = True
            # Broken: another thread waits for the row lock, so the lock, not the barrier, orders them now.
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()
        return result


def at_once(*calls: Callable, expected: type[BaseException] = Exception, held_after_reading: str = "") -> list:
    """Start every call together; return each one's result, or the `expected` exception it raised.

    `held_after_reading`: a table; each thread then waits right after its first SELECT from it until
    every thread has read it (the race) or one of them waits for a row lock (the lock works)."""
    start = threading.Barrier(len(calls))
    after_read = threading.Barrier(len(calls), timeout=BOUND_SECONDS)
    backend_pids: list[int] = []
    outcomes: list = [None] * len(calls)

    def run(index: int, call: Callable) -> None:
        try:
            connection.ensure_connection()
            backend_pids.append(connection.connection.info.backend_pid)
            start.wait()
            if held_after_reading:
                with connection.execute_wrapper(_HeldAfterFirstRead(held_after_reading, after_read)):
                    outcomes[index] = call()
            else:
                outcomes[index] = call()
        except expected as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    if held_after_reading:
        _break_barrier_once_a_thread_waits_for_a_lock(after_read, backend_pids, threads)
    for thread in threads:
        thread.join()
    return outcomes


def _break_barrier_once_a_thread_waits_for_a_lock(
    barrier: threading.Barrier, backend_pids: list[int], threads: list[threading.Thread]
) -> None:
    with connection.cursor() as cursor:
        while not barrier.broken and any(thread.is_alive() for thread in threads):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
                [list(backend_pids)],
            )
            if cursor.fetchone()[0]:
                barrier.abort()
                return
            # Not a fixed sleep: the wait ends as soon as the first thread is done.
            for thread in threads:
                if thread.is_alive():
                    thread.join(_POLL_SECONDS)
                    break
