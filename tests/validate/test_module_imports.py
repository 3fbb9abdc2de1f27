"""Imports: each broken module/policy pair gives its diagnostic at the file, line and column it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.registry import check_paths

from ..conftest import DATA

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "modules" / "broken_cases.yaml").read_text(encoding="utf-8"))
MODULES = DATA / "modules" / "registry"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_every_case_names_what_it_expects() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert case["expect"] and case["check"] in case["files"], case["name"]
        for e in case["expect"]:
            assert {"code", "file", "line", "column"} <= set(e), (case["name"], e)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_broken_pair_is_located(case: dict[str, Any], tmp_path: Path) -> None:
    _write(tmp_path, case["files"])
    (result,) = check_paths([tmp_path / case["check"]])
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert sorted({d.code for d in errors}) == sorted({e["code"] for e in case["expect"]}), \
        [d.render() for d in errors]
    for e in case["expect"]:
        found = [d for d in errors if (d.code, d.file, d.line, d.column) ==
                 (e["code"], str(tmp_path / e["file"]), e["line"], e["column"])]
        assert found, (e, [d.render() for d in errors])
        assert e.get("says", "") in found[0].message, found[0].message
        assert e.get("hint", "") in (found[0].hint or ""), found[0].hint


def test_validate_exits_4_on_a_broken_pair_and_names_the_module_file(tmp_path: Path) -> None:
    case = next(c for c in CASES if c["name"].startswith("an error inside"))
    _write(tmp_path, case["files"])
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--format", "text"])
    assert r.exit_code == 4
    assert f"{tmp_path / 'ratio-library' / 'module-1.0.0.yaml'}:9:35: error: unknown-name" in r.stderr


def test_a_modules_problem_is_listed_once_when_the_module_is_validated_beside_its_importer(tmp_path: Path) -> None:
    """Validating a folder checks the module on its own and the policy through it: the module's bad id was printed
    twice, and a warning told the author to move the file to a folder named by that bad id."""
    case = next(c for c in CASES if c["name"].startswith("a module id not of the form"))
    _write(tmp_path, case["files"])
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--format", "text"])
    assert r.exit_code == 4
    module = tmp_path / "ratio-library" / "module-1.0.0.yaml"
    assert r.stderr.count(f"{module}:2:1: error: bad-value") == 1, r.stderr
    assert "ratio_library/" not in r.stderr and "module-file-name" not in r.stderr, r.stderr
    assert "module-invalid" in r.stderr  # the importer still says why it cannot load


def test_validate_checks_modules_on_their_own_and_the_policies_through_them() -> None:
    results = {Path(r.file).relative_to(MODULES).as_posix(): r for r in check_paths([MODULES])}
    assert all(not r.diagnostics for r in results.values()), {f: r.diagnostics for f, r in results.items()}
    assert results["ratio-library/module-1.0.0.yaml"].module == "ratio-library@1.0.0"
    policy = results["mini-imports/policy-1.0.0.yaml"].policy
    assert policy is not None
    assert [m.key for m in policy.modules] == ["ratio-library@1.0.0", "debt-library@1.0.0"]
    assert policy.imported["leverage"] == "debt-library 1.0.0" and policy.imported["ratio_al"] == "ratio-library 1.0.0"


@pytest.mark.parametrize("target", ["ratio-library", str(MODULES / "ratio-library" / "module-1.0.0.yaml")])
def test_deciding_a_module_is_a_usage_error(target: str) -> None:
    r = CliRunner().invoke(main, ["--policies", str(MODULES), "--no-audit", "decide", "-p", target,
                                  "-c", str(DATA / "modules" / "client.json")])
    assert r.exit_code == 2 and "module-not-policy" in r.stderr, r.stderr


def test_module_schema_shares_the_policy_sections() -> None:
    """Editors check a module's inputs, parameters and metrics exactly as a policy's, less what needs a policy."""
    import json

    from policy_engine.policy.schemas import load_schema

    policy, module = load_schema("policy"), json.loads(json.dumps(load_schema("module")))
    assert module["properties"]["inputs"] | {"minProperties": 1} == policy["properties"]["inputs"]
    assert module["properties"]["imports"] == policy["properties"]["imports"]
    mp, pp = module["properties"]["metrics"], policy["properties"]["metrics"]
    policy_metric = pp["additionalProperties"]["properties"]
    assert mp["additionalProperties"]["properties"] == {k: v for k, v in policy_metric.items() if k != "after"}
    params = module["properties"]["parameters"]["additionalProperties"]
    assert params["required"] == ["value"] and "by_segment" not in params["properties"]


def test_a_chain_of_imports_deeper_than_the_limit_is_located(tmp_path: Path) -> None:
    from policy_engine.policy.modules import MAX_IMPORT_DEPTH

    n = MAX_IMPORT_DEPTH + 2
    for k in range(n):
        imports = f"imports:\n  - {{module: m{k + 1}, version: 1.0.0, names: [x{k + 1}]}}\n" if k + 1 < n else ""
        expr = f"x{k + 1} + 1" if k + 1 < n else "1"
        _write(tmp_path, {f"m{k}/module-1.0.0.yaml": f"kind: module\nid: m{k}\nversion: 1.0.0\n"
                          f"title: {{zh: 模, en: M}}\n{imports}metrics:\n  x{k}: {{expr: '{expr}'}}\n"})
    (result,) = check_paths([tmp_path / "m0" / "module-1.0.0.yaml"])
    deep = [d for d in result.diagnostics if d.code == "import-too-deep"]
    assert len(deep) == 1 and deep[0].file == str(tmp_path / f"m{MAX_IMPORT_DEPTH - 1}" / "module-1.0.0.yaml")
    assert (deep[0].line, deep[0].column) == (6, 6)


def test_schema_module_prints_the_module_schema() -> None:
    r = CliRunner().invoke(main, ["schema", "module"])
    assert r.exit_code == 0 and '"const": "module"' in r.stdout


def test_a_module_valid_against_its_schema_is_memoised_and_a_broken_one_never(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loading a policy with imports checks each module against the module schema once per text: a later
    ``decide`` neither imports jsonschema nor runs it for them. A module the schema refuses is refused each time."""
    from policy_engine.policy import compiler
    from policy_engine.policy.registry import load_policy

    monkeypatch.setenv("POLICY_ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []
    real = compiler.schema_errors
    monkeypatch.setattr(compiler, "schema_errors", lambda doc, name, sink: calls.append(name) or real(doc, name, sink))
    registry = tmp_path / "registry"
    for f in MODULES.rglob("*.yaml"):
        _write(registry, {f.relative_to(MODULES).as_posix(): f.read_text(encoding="utf-8")})
    policy_file = registry / "mini-imports" / "policy-1.0.0.yaml"
    for _ in range(2):
        load_policy(policy_file)
    assert calls == ["policy", "module", "module"]  # the policy and its two modules, the first time only
    module = registry / "debt-library" / "module-1.0.0.yaml"
    module.write_text(module.read_text(encoding="utf-8") + "surprise: 1\n", encoding="utf-8")
    calls.clear()
    for _ in range(2):
        (result,) = check_paths([policy_file])
        assert any(d.code == "unknown-key" and d.file == str(module) for d in result.diagnostics), result.diagnostics
    assert calls == ["module", "module"]  # the broken module each time; the rest from the memo


def test_a_name_left_out_of_an_import_is_one_error_naming_every_metric_that_reads_it(tmp_path: Path) -> None:
    """One name left out gave one error per imported metric reading it (six, each with the same fix; found by a
    policy author's review): one error, at the first, naming them all."""
    case = next(c for c in CASES if c["name"] == "an imported metric whose reads are not imported")
    files = dict(case["files"])
    files["ratio-library/module-1.0.0.yaml"] += "  debt_share: {expr: \"ratio(liabilities, assets)\"}\n"
    files["pol/policy.yaml"] = files["pol/policy.yaml"].replace("names: [assets, ratio_al]",
                                                                "names: [assets, ratio_al, debt_share]")
    _write(tmp_path, files)
    (result,) = check_paths([tmp_path / case["check"]])
    [error] = [d for d in result.diagnostics if d.code == "missing-import"]
    assert error.message == ("imported metrics 'ratio_al', 'debt_share' (ratio-library 1.0.0) read 'liabilities', "
                             "which this file does not import"), error.message


def test_a_name_the_module_offers_and_the_import_left_out_is_told_where_it_is(tmp_path: Path) -> None:
    """It was "unknown name 'mod_date'; did you mean 'dpd_at_date'?" (found by a policy author's review)."""
    case = next(c for c in CASES if c["name"] == "an imported metric whose reads are not imported")
    files = dict(case["files"])
    files["pol/policy.yaml"] = files["pol/policy.yaml"].replace("names: [assets, ratio_al]", "names: [assets]").replace(
        'when: "ratio_al < 1"', 'when: "liabilities > assets"')
    _write(tmp_path, files)
    (result,) = check_paths([tmp_path / case["check"]])
    [error] = [d for d in result.diagnostics if d.severity == "error"]
    assert (error.code, error.message) == ("unknown-name", "unknown name 'liabilities'"), error.render()
    assert error.hint == ("'liabilities' is an input of ratio-library 1.0.0, left out of the import: add it to names "
                          "of imports[0]")
