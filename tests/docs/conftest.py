"""A scratch copy of what the documented examples read, where they run as a reader would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

COPIED = ("policies", "scenarios", "schemas", "examples", "tools", "tests")  # tools/ imports the fuzz harness


def scratch_env(root: Path | None = None) -> dict[str, str]:
    """The environment of a documented command: the defaults (./policies, ./audit.db), and with ``root``
    its `.venv/bin` first on PATH, so `policy-engine` is this checkout's engine."""
    env = {k: v for k, v in os.environ.items() if k not in ("POLICY_ENGINE_AUDIT_DB", "POLICY_ENGINE_POLICIES")}
    env["TERM"] = "dumb"
    if root is not None:
        env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the examples read, a `.venv/bin` whose `policy-engine` runs this checkout, and a git
    history of two commits (the README diffs against `HEAD~1`)."""
    root = tmp_path_factory.mktemp("readme")
    for name in COPIED:
        shutil.copytree(ROOT / name, root / name)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "policy-engine").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "cli.py"}" "$@"\n')
    (bin_dir / "policy-engine").chmod(0o755)
    # A wrapper, not a symlink: a symlinked interpreter outside its venv would not see the venv's packages.
    # This checkout first on the path: `python tools/...` imports this checkout's engine, not the one installed.
    (bin_dir / "python").write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
                                    f'export PYTHONPATH\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "policies"], cwd=root, check=True)
    (root / "NOTES").write_text("a second commit, so that HEAD~1 exists\n")
    subprocess.run([*git, "add", "NOTES"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "notes"], cwd=root, check=True)
    return root

