"""Processes and databases that the benchmarks (and the tests that start servers) run beside govsite:
a free port, waiting until a server answers, stopping it, its log's tail, a PostgreSQL database made anew.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from psycopg import sql


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a process's log, for an error message."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def stop(process: subprocess.Popen | None, timeout: float = 15) -> None:
    """Terminate, then kill if it does not go."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def wait_for_http(
    url: str, process: subprocess.Popen, *, what: str, log: Path | None = None, timeout: float = 60.0
) -> None:
    """Return once `url` answers 200; RuntimeError (with the log's tail) if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it answered{_log(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s{_log(log)}")


def _log(log: Path | None) -> str:
    return f":\n{tail(log)}" if log is not None else ""


@contextlib.contextmanager
def postgres_server(config: dict) -> Iterator:
    """An autocommit connection to the server of a Django database config (its maintenance database)."""
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        yield conn


def recreate_database(config: dict, *, drop_only: bool = False, keep: bool = False) -> bool:
    """Drop the config's database and create it empty (`drop_only`: just drop it; `keep`: create it only
    when missing). Returns whether it was created."""
    name = sql.Identifier(config["NAME"])
    with postgres_server(config) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if exists and keep:
            return False
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if drop_only:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        return True
