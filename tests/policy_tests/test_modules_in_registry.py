"""`test` over a registry holding a module: the module file is no test file, and testing it alone is a usage error."""

from __future__ import annotations

from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES

MODULE = POLICIES / "financial-difficulty" / "module-1.0.0.yaml"


def test_the_registry_runs_the_policies_tests_and_reads_no_module_as_a_test_file() -> None:
    r = CliRunner().invoke(main, ["test", str(POLICIES), "--format", "text", "--coverage", "--min-coverage", "100"])
    assert r.exit_code == 0, r.stderr
    assert "0 failed" in r.stdout and str(MODULE) not in r.stderr


def test_testing_a_module_alone_says_to_test_its_importers_exit_2() -> None:
    r = CliRunner().invoke(main, ["test", str(MODULE), "--format", "text"])
    assert r.exit_code == 2
    assert f"{MODULE}: error: module-not-policy" in r.stderr and "test the policies that import it" in r.stderr
