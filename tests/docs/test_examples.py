"""`examples/`: the CI workflow a policy repository copies installs the engine from its repository and runs
commands that work."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ..conftest import ROOT
from .conftest import scratch_env

WORKFLOW = ROOT / "examples" / "policy-ci.yml"


def _steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_the_workflow_installs_the_engine_from_its_repository_not_a_package_index() -> None:
    steps = _steps()
    installs = [s["run"] for s in steps if "pip install" in s.get("run", "")]
    assert installs, "the workflow installs nothing"
    for line in installs:
        targets = line.split("pip install", 1)[1].split()
        # a checkout folder or a git URL: the package name alone would ask an index that does not have it
        assert all(t.startswith(("./", "git+", "-")) or "@ git+" in t for t in targets), line
    checkout_paths = {s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/checkout")
                      and "repository" in s.get("with", {})}
    for line in installs:
        for t in line.split("pip install", 1)[1].split():
            if t.startswith("./"):
                assert t[2:].rstrip("/") in checkout_paths, f"{t} is not a checked-out repository"


def test_the_workflow_commands_run_against_the_shipped_policies(scratch: Path) -> None:
    runs = [s["run"] for s in _steps() if s.get("run", "").startswith("policy-engine ")]
    assert len(runs) >= 3
    for line in runs:
        r = subprocess.run(["bash", "-c", line], cwd=scratch, env=scratch_env(scratch), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, f"{WORKFLOW.name}: {line}: exit {r.returncode}\n{r.stdout[-600:]}{r.stderr[-600:]}"
        m = re.search(r">\s*(\S+)\s*$", line)
        if m:
            assert (scratch / m.group(1)).stat().st_size > 0
    report = (scratch / "policy-tests.xml").read_text(encoding="utf-8")
    assert "rule coverage loss-client-management@1.1.0" in report and 'failures="0"' in report
