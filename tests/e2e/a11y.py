"""What every browser journey checks on every page it walks: axe-core's WCAG 2.1 A/AA rules and the
Content-Security-Policy.

- axe-core comes from the npm registry (tests/e2e/axe/package.json and its lock file, installed by
  `npm ci` the first time) and is put into each page by the browser itself, from these files, as an init
  script (Playwright's `add_init_script`, which the page's CSP does not govern): never from a CDN.
- A CSP violation is reported by the browser as a `securitypolicyviolation` event: an init script
  listening from the first moment of every document writes each one to the console, where the journey
  collects it (Chromium also logs its own "Refused to ..." line; both count).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
NPM_TIMEOUT = 300
# WCAG 2.0 and 2.1, levels A and AA: the rules the issue is judged by (no best-practice rules).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber} ${event.sample || ""}`);
});
"""
_RUN_AXE = """async ({options, exclude}) => {
  const context = exclude.length ? {exclude: exclude.map((selector) => [selector])} : document;
  const results = await axe.run(context, options);
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + (n.failureSummary || "").split("\\n")[1]),
    count: v.nodes.length,
  }));
}"""


def axe_source() -> str:
    """axe.min.js from the npm registry, installed from the committed lock file once per machine."""
    with (Path(tempfile.gettempdir()) / "govsite-tests-axe-npm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE_JS.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is not installed: cannot install axe-core (tests/e2e/axe)")
            result = subprocess.run(  # noqa: S603 - npm ci from our own lock file
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=AXE_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
            )
            if result.returncode != 0 or not AXE_JS.exists():
                pytest.fail(f"npm ci in {AXE_DIR} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return AXE_JS.read_text()


@dataclass
class Finding:
    url: str
    rule: str
    impact: str
    help: str
    count: int
    nodes: list[str]

    def __str__(self) -> str:
        where = "\n      ".join(self.nodes)
        return f"{self.url}: {self.rule} ({self.impact}, {self.count} elements) {self.help}\n      {where}"


# Pages whose body is a third party's: what axe finds inside them is listed in the README
# ("Accessibility and Content-Security-Policy"), not counted against govsite's own markup.
THIRD_PARTY = {"/api/docs/": ["#swagger-ui"]}


def audit(page, path: str) -> tuple[list[Finding], list[Finding]]:
    """axe-core over the page as it is now: (govsite's own findings, third-party findings)."""
    exclude = THIRD_PARTY.get(path, [])
    own = [_finding(page.url, v) for v in page.evaluate(_RUN_AXE, {"options": AXE_OPTIONS, "exclude": exclude})]
    third = []
    if exclude:
        options = {**AXE_OPTIONS}
        found = page.evaluate(
            """async ({options, include}) => (await axe.run({include: include.map((s) => [s])}, options))
                 .violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                   nodes: v.nodes.slice(0, 12).map((n) => n.target.join(" ") + " :: "
                     + (n.failureSummary || "").split("\\n")[1])}))""",
            {"options": options, "include": exclude},
        )
        third = [_finding(page.url, v) for v in found]
    return own, third


def _finding(url: str, v: dict) -> Finding:
    return Finding(url, v["id"], v["impact"] or "", v["help"], v["count"], v["nodes"])


def is_csp_message(text: str) -> bool:
    return text.startswith("CSP violation:") or "Content Security Policy" in text
