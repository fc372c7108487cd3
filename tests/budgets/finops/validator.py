"""Runs the FinOps Foundation's own FOCUS validator (focus-validator from PyPI, installed by
.ci/install-focus-validator into its own Python 3.12 venv) over a file, offline, and reads its verdict."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VENV = Path(os.environ.get("FOCUS_VALIDATOR_VENV") or Path.home() / ".cache" / "focus-validator")
_TOTAL = re.compile(r"^Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)", re.M)
_RESULT = re.compile(r"^\S+ ([A-Za-z]+-[A-Z]-\d{3}-[A-Z]): (PASS|FAIL|SKIPPED)\s+\(violations=(\d+), (.*)$", re.M)
# focus-validator 2.2.1 reports both branches of an OR (InvoiceId is null, or it is not) as rules of their own,
# so the branch a file does not take always "fails" while the OR, and the dataset's composites, pass.
_SITE = "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))"
OR_BRANCHES = {"InvoiceId-C-005-C": "InvoiceId-C-003-C"}


@dataclass
class Verdict:
    total: int
    passed: int
    failed: int
    skipped: int
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    results: dict[str, tuple[str, str]] = field(default_factory=dict)
    output: str = ""

    def conforms(self) -> list[str]:
        """What keeps the file from conforming: failed rules, less an OR branch whose OR passed; and the
        dataset's composite rules (every mandatory column present, every column's rules) must have passed."""
        problems = [
            f"{rule}: {message}"
            for rule, (_count, message) in self.failures.items()
            if not (rule in OR_BRANCHES and self.results.get(OR_BRANCHES[rule], ("",))[0] == "PASS")
        ]
        for composite in ("CostAndUsage-D-001-M", "CostAndUsage-D-002-M"):
            status, message = self.results.get(composite, ("missing", ""))
            if "AND passed" not in message:
                problems.append(f"{composite}: {status} {message}")
        return problems


def validator() -> Path:
    """The validator's executable; a skip without it, a failure in CI (.ci/run installs it)."""
    exe = VENV / "bin" / "focus-validator"
    if not exe.exists():
        if os.environ.get("CI"):
            pytest.fail(f"focus-validator is not installed in {VENV}: run .ci/install-focus-validator")
        pytest.skip("focus-validator is not installed (.ci/install-focus-validator)")
    return exe


def focus_validate(path: Path, version: str = "1.2") -> Verdict:
    exe = validator()
    site = subprocess.run(  # noqa: S603 - our own venv's python
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    fmt = "parquet" if path.suffix == ".parquet" else "csv"
    # It opens its bundled rule files by a relative path, so it runs from its own site-packages.
    done = subprocess.run(  # noqa: S603
        [
            str(exe),
            "--data-file",
            str(path.resolve()),
            "--data-format",
            fmt,
            "--validate-version",
            version,
            "--block-download",
            "--rule-set-path",
            "focus_validator/rules",
            "--show-violations",
        ],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    found = _TOTAL.findall(output)
    assert found, f"focus-validator gave no verdict:\n{output[-3000:]}"
    total, passed, failed, skipped = (int(n) for n in found[-1])
    results, failures = {}, {}
    for rule, status, count, message in _RESULT.findall(output):
        results[rule] = (status, message)
        if status == "FAIL":
            failures[rule] = (int(count), message)
    return Verdict(total, passed, failed, skipped, failures, results, output)
