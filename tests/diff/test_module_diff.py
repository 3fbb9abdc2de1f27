"""diff, test --coverage and lint see through imports: a module pin, the definitions it changes, their places."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.lint import lint
from policy_engine.policy.loader import load_yaml_file
from policy_engine.policy.registry import load_policy
from policy_engine.review.diffing import diff_policies, resolve
from policy_engine.review.tester import coverage, run_tests

from ..conftest import DATA

REGISTRY = DATA / "modules" / "registry"


def _lines(old: Path, new: Path) -> list[str]:
    return [c.text() for c in diff_policies(load_policy(old), load_policy(new))]


def test_a_changed_pin_shows_the_pin_and_the_definitions_it_changes() -> None:
    lines = _lines(REGISTRY / "mini-imports" / "policy-1.0.0.yaml", REGISTRY / "mini-imports" / "policy-1.1.0.yaml")
    assert lines == ["metadata version: 1.0.0 -> 1.1.0", "metadata status: active -> draft",
                     "metadata changelog: added: 1.1.0 (2024-02-01): ratio library 1.1.0 (min_ratio 1.1)",
                     "import debt-library: 1.0.0 -> 1.1.0", "import ratio-library: 1.0.0 -> 1.1.0",
                     "parameter min_ratio[default]: 1.0 -> 1.1 (read by metric thin)",
                     'parameter min_ratio: description removed (was "Assets over liabilities below this is thin.")']


def test_inline_and_imported_definitions_differ_only_by_where_they_come_from() -> None:
    lines = _lines(REGISTRY / "mini-inline" / "policy-1.0.0.yaml", REGISTRY / "mini-imports" / "policy-1.0.0.yaml")
    # the definitions are the same: only where each is written changes, name by name (a definition copied out of a
    # module into the file reads the other way round, where it once read only as an edited expression)
    moved = {"assets": "ratio", "income_q": "ratio", "leverage": "debt", "liabilities": "ratio", "losses": "ratio",
             "min_ratio": "ratio", "ratio_al": "ratio", "thin": "ratio"}
    assert lines == ["metadata id: mini-inline -> mini-imports", "import debt-library: added: 1.0.0",
                     "import ratio-library: added: 1.0.0",
                     *(f"import {name}: was defined in this file, now imported from {lib}-library 1.0.0"
                       for name, lib in moved.items())]
    back = [c.text() for c in diff_policies(load_policy(REGISTRY / "mini-imports" / "policy-1.0.0.yaml"),
                                            load_policy(REGISTRY / "mini-inline" / "policy-1.0.0.yaml"))]
    assert "import thin: was imported from ratio-library 1.0.0, now defined in this file" in back


def test_a_git_revision_reads_its_modules_at_that_revision(tmp_path: Path, monkeypatch: object) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REGISTRY, repo / "policies")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "registry"], check=True)
    module = repo / "policies" / "ratio-library" / "module-1.0.0.yaml"
    module.write_text(module.read_text(encoding="utf-8").replace('expr: "ratio_al < min_ratio"',
                                                                 'expr: "ratio_al <= min_ratio"'), encoding="utf-8")
    monkeypatch.chdir(repo)  # type: ignore[attr-defined]
    old = resolve("HEAD:policies/mini-imports/policy-1.0.0.yaml", repo / "policies")
    new = resolve("policies/mini-imports/policy-1.0.0.yaml", repo / "policies")
    assert [c.text() for c in diff_policies(old, new)] == [
        "import ratio-library: 1.0.0: the module text differs under the same version",
        "metric thin: expression `ratio_al < min_ratio` -> `ratio_al <= min_ratio`"]
    assert old.modules[0].file == "HEAD:policies/ratio-library/module-1.0.0.yaml"


def test_coverage_counts_imported_metrics_at_their_module_lines() -> None:
    run = run_tests([REGISTRY / "mini-imports" / "policy-1.0.0.yaml", REGISTRY / "mini-imports" / "tests"])
    assert run.ok if hasattr(run, "ok") else not run.diagnostics
    rules = {(r.kind, r.rule): r for r in coverage(run)["mini-imports@1.0.0"].rules}
    thin = rules[("metric", "thin")]
    assert thin.status == "covered"
    assert (Path(thin.file).as_posix().endswith("ratio-library/module-1.0.0.yaml"), thin.line) == (True, 15)
    assert rules[("floor", "late")].file.endswith("mini-imports/policy-1.0.0.yaml")


def test_lint_names_an_import_nothing_reads(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    shutil.copytree(REGISTRY, root)
    policy_file = root / "mini-imports" / "policy-1.0.0.yaml"
    text = policy_file.read_text(encoding="utf-8")
    assert lint(load_policy(policy_file), load_yaml_file(policy_file)) == []
    # Only the warning read 'thin': without it, the import of 'thin' brings in nothing the policy uses.
    policy_file.write_text(text.replace("when: thin and leverage > 0.5", "when: leverage > 0.5"), encoding="utf-8")
    found = [(d.code, d.line, d.column, d.rule) for d in lint(load_policy(policy_file), load_yaml_file(policy_file))]
    line = text.splitlines()[10]
    assert found == [("import-unused", 11, line.index("thin,") + 1, "thin")], found
    r = CliRunner().invoke(main, ["validate", str(policy_file), "--format", "text"])
    assert r.exit_code == 0 and "import-unused" in r.stderr


def test_a_text_metrics_words_changed_in_a_module_show_per_value(tmp_path: Path) -> None:
    # An explanation prints a text metric's words, never its value: a change to them is a change to review.
    root = tmp_path / "policies"
    shutil.copytree(DATA.parents[1] / "policies", root)
    module = root / "financial-difficulty" / "module-1.1.0.yaml"
    text = module.read_text(encoding="utf-8")
    edited = text.replace("grace_period: {zh: 宽限期, en: grace period}",
                          "grace_period: {zh: 宽限期, en: grace period granted}")
    edited = edited.replace("      debt_swap: {zh: 债务置换, en: debt swap}\n", "")
    assert edited.count("\n") == text.count("\n") - 1
    policy = root / "loss-client-management" / "policy-2.0.2.yaml"
    old = load_policy(policy)
    module.write_text(edited, encoding="utf-8")
    lines = [c.text() for c in diff_policies(old, load_policy(policy))]
    assert lines == [
        "import financial-difficulty: 1.1.0: the module text differs under the same version",
        'metric restructuring_measure: labels[grace_period] changed: (en) "grace period" -> "grace period granted"',
        'metric restructuring_measure: labels[debt_swap] removed (was "debt swap")'], lines


# ---- diff of two module versions: shown through the policies that import the old one ----------------------

POLICIES_ROOT = DATA.parent.parent / "policies"


def _module_registry(tmp_path: Path, edit: tuple[str, str]) -> tuple[Path, Path]:
    """The repository's policies, with module financial-difficulty 1.9.0 = 1.1.0 and one edit (1.2.0, which 2.1.0
    imports, is another version)."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES_ROOT, root)
    folder = root / "financial-difficulty"
    text = (folder / "module-1.1.0.yaml").read_text(encoding="utf-8")
    assert edit[0] in text
    (folder / "module-1.9.0.yaml").write_text(text.replace("version: 1.1.0", "version: 1.9.0", 1).replace(*edit),
                                              encoding="utf-8")
    return root, folder


def _module_diff(root: Path, old: str, new: str, fmt: str = "json") -> object:
    return CliRunner().invoke(main, ["--policies", str(root), "diff", old, new, "--format", fmt],
                              catch_exceptions=False)


def test_a_module_change_shows_what_it_changes_in_each_policy_pinning_the_old_version(tmp_path: Path) -> None:
    root, folder = _module_registry(tmp_path, ("  difficulty_overdue_days:\n    value: 0",
                                               "  difficulty_overdue_days:\n    value: 30"))
    r = _module_diff(root, "financial-difficulty@1.1.0", str(folder / "module-1.9.0.yaml"))
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["module"] | {"old_sha256": None, "new_sha256": None} == {
        "id": "financial-difficulty", "old": "1.1.0", "new": "1.9.0", "old_sha256": None, "new_sha256": None}
    pinned = [(i["policy"]["id"], i["policy"]["version"]) for i in report["importers"]]
    assert pinned == [("loss-client-management", v) for v in ("2.0.1", "2.0.2")]
    for importer in report["importers"]:
        assert [(c["section"], c["rule"], c["detail"]) for c in importer["changes"]] == [
            ("import", "financial-difficulty", "1.1.0 -> 1.9.0"),
            ("parameter", "difficulty_overdue_days[default]", "0 -> 30 days")]
        assert importer["changes"][1]["read_by"] and importer["problems"] == []
    text = _module_diff(root, "financial-difficulty@1.1.0", "financial-difficulty@1.9.0", "text").stdout
    assert text.splitlines()[:4] == [
        "module financial-difficulty 1.1.0 -> 1.9.0: imported by 2 policy version(s)",
        "loss-client-management 2.0.1 with financial-difficulty 1.9.0: 2 change(s)",
        "  import financial-difficulty: 1.1.0 -> 1.9.0",
        text.splitlines()[3]]
    assert text.splitlines()[3].startswith("  parameter difficulty_overdue_days[default]: 0 -> 30")
    md = _module_diff(root, "financial-difficulty@1.1.0", "financial-difficulty@1.9.0", "markdown").stdout
    assert md.startswith("### Module change: `financial-difficulty` 1.1.0 → 1.9.0")


def test_a_name_the_new_version_drops_is_a_located_problem_of_each_importer(tmp_path: Path) -> None:
    root, folder = _module_registry(tmp_path, ("kind: module", "kind: module"))
    renamed = (folder / "module-1.9.0.yaml").read_text(encoding="utf-8").replace("nonperforming_rank", "npl_rank")
    (folder / "module-1.9.0.yaml").write_text(renamed, encoding="utf-8")
    r = _module_diff(root, "financial-difficulty@1.1.0", "financial-difficulty@1.9.0")
    assert r.exit_code == 0, r.output
    for importer in json.loads(r.stdout)["importers"]:
        assert importer["changes"] == []
        first = importer["problems"][0]
        assert Path(first["file"]).name == f"policy-{importer['policy']['version']}.yaml"
        assert (first["code"], first["message"]) == (
            "unknown-name", "module financial-difficulty 1.9.0 defines no 'nonperforming_rank'")


def test_a_module_no_policy_imports_says_so_and_a_module_beside_a_policy_is_a_usage_error(tmp_path: Path) -> None:
    root, _folder = _module_registry(tmp_path, ("value: 0", "value: 0"))
    text = _module_diff(root, "financial-difficulty@1.9.0", "financial-difficulty@1.1.0", "text").stdout
    assert "no policy of the registry imports financial-difficulty 1.9.0" in text
    r = _module_diff(root, "financial-difficulty@1.1.0", "loss-client-management@2.1.0")
    assert r.exit_code == 2
    assert "'loss-client-management@2.1.0' is not a module, 'financial-difficulty@1.1.0' is" in r.stderr
    r = _module_diff(root, "financial-difficulty@9.9.9", "financial-difficulty@1.1.0")
    assert r.exit_code == 2 and "module financial-difficulty has no version '9.9.9'" in r.stderr


def test_a_module_with_errors_is_invalid_input_not_a_diff_of_no_importer(tmp_path: Path) -> None:
    """A typo in the old module made its importers fail to compile, so they were left out: the diff said 'no policy
    of the registry imports financial-difficulty 1.1.0' and exited 0 with --exit-code (found by a CI review)."""
    root, folder = _module_registry(tmp_path, ("kind: module", "kind: module"))
    old = folder / "module-1.1.0.yaml"
    text = old.read_text(encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "(modification, (dpd_at_date > " in t)
    old.write_text(text.replace("(modification, (dpd_at_date > ", "(modification, (dpd_at_datee > ", 1),
                   encoding="utf-8")
    for pair in (("financial-difficulty@1.1.0", "financial-difficulty@1.9.0"),
                 ("financial-difficulty@1.9.0", "financial-difficulty@1.1.0")):
        r = CliRunner().invoke(main, ["--policies", str(root), "diff", *pair, "--exit-code", "--format", "json"])
        assert r.exit_code == 4, r.output
        [error] = json.loads(r.stderr)["errors"]
        assert (error["code"], Path(error["file"]).name, error["line"]) == ("unknown-name", old.name, line)
        assert r.stdout == ""


def test_an_importer_that_does_not_compile_is_shown_with_its_problems(tmp_path: Path) -> None:
    root, _folder = _module_registry(tmp_path, ("value: 0", "value: 30"))
    policy = root / "loss-client-management" / "policy-2.0.1.yaml"
    text = policy.read_text(encoding="utf-8")
    assert "scope: exposure\n    expr: days_past_due" in text
    broken = text.replace("scope: exposure\n    expr: days_past_due", "scope: exposure\n    expr: dayz_past_due", 1)
    policy.write_text(broken, encoding="utf-8")
    r = _module_diff(root, "financial-difficulty@1.1.0", "financial-difficulty@1.9.0")
    importers = {i["policy"]["version"]: i for i in json.loads(r.stdout)["importers"]}
    assert sorted(importers) == ["2.0.1", "2.0.2"]  # 2.0.1 was left out, as if it imported nothing
    assert importers["2.0.1"]["changes"] == [] and importers["2.0.1"]["problems"][0]["code"] == "unknown-name"
    assert importers["2.0.2"]["changes"] and importers["2.0.2"]["problems"] == []
