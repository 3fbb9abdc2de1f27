"""Project configuration: found like other tools' (here or a parent), checked, and below options and env."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.config import find

from ..conftest import REFERENCE


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no setting from the environment."""
    (tmp_path / ".git").mkdir()  # the search for a configuration stops here, as at a repository root
    for var in ("POLICY_ENGINE_POLICIES", "POLICY_ENGINE_AUDIT_DB", "POLICY_ENGINE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _settings(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    r = _run(*args, "config", "--format", "json", env=env)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_without_a_configuration_the_defaults_apply(project: Path) -> None:
    s = _settings()
    assert s["config"] == {"value": None, "from": "none"}
    assert s["policies"] == {"value": "policies", "from": "default"}
    assert s["audit-db"] == {"value": "audit.db", "from": "default"}


def test_policy_engine_toml_sets_folders_relative_to_itself(project: Path) -> None:
    (project / "policy-engine.toml").write_text('policies = "rules"\naudit-db = "var/decisions.db"\n')
    (project / "sub" / "deeper").mkdir(parents=True)
    s = _settings()
    assert s["policies"] == {"value": str(project / "rules"), "from": str(project / "policy-engine.toml")}
    assert s["audit-db"]["value"] == str(project / "var" / "decisions.db")
    assert find(project / "sub" / "deeper") == project / "policy-engine.toml"  # found from a subfolder


def test_pyproject_table_is_read_and_a_pyproject_without_it_is_passed_over(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.policy-engine]\npolicies = "p"\n')
    inner = project / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert find(inner) == project / "pyproject.toml"
    assert _settings()["policies"]["value"] == str(project / "p")


def test_option_then_environment_then_file_then_default(project: Path) -> None:
    (project / "policy-engine.toml").write_text('policies = "from-file"\naudit-db = "file.db"\n')
    env = {"POLICY_ENGINE_POLICIES": "from-env"}
    s = _settings(env=env)
    assert s["policies"] == {"value": "from-env", "from": "$POLICY_ENGINE_POLICIES"}
    assert s["audit-db"]["from"] == str(project / "policy-engine.toml")
    s = _settings("--policies", "from-option", env=env)
    assert s["policies"] == {"value": "from-option", "from": "command line"}
    other = project / "elsewhere.toml"
    other.write_text('policies = "named"\n')
    assert _settings("--config", str(other))["policies"]["value"] == str(project / "named")
    assert _settings(env={"POLICY_ENGINE_CONFIG": str(other)})["policies"]["value"] == str(project / "named")


def test_commands_use_the_configured_policies_folder(project: Path) -> None:
    shutil.copytree(REFERENCE, project / "rules" / "loss-client-management")
    shutil.copytree(REFERENCE.parent / "financial-difficulty", project / "rules" / "financial-difficulty")
    (project / "policy-engine.toml").write_text('policies = "rules"\n')
    r = _run("validate", "--format", "json")
    # loss-client-management 1.0.0, 1.1.0, 2.0.0, 2.0.1, 2.0.2, 2.1.0 and the module financial-difficulty 1.0.0-1.2.0
    assert r.exit_code == 0 and [f["kind"] for f in json.loads(r.stdout)["files"]].count("policy") == 6
    r = _run("test", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["failed"] == 0


def test_default_formats_general_and_per_command(project: Path) -> None:
    shutil.copytree(REFERENCE, project / "policies" / "loss-client-management")
    shutil.copytree(REFERENCE.parent / "financial-difficulty", project / "policies" / "financial-difficulty")
    (project / "policy-engine.toml").write_text('format = "text"\n[formats]\ndiff = "markdown"\n'
                                                '"audit list" = "json"\n')
    old, new = "loss-client-management@1.0.0", "loss-client-management@1.1.0"
    assert _run("diff", old, new).stdout.startswith("### Policy change:")  # formats.diff
    assert _run("diff", old, new, "--format", "json").stdout.startswith("{")  # the option wins
    assert _run("catalogue").stdout.startswith("extend_term")  # format = text where the command has it
    assert _run("validate").stderr.startswith("ok  ")  # text, though stdout is not a terminal


def test_a_bad_configuration_is_a_located_usage_error(project: Path) -> None:
    (project / "policy-engine.toml").write_text('# settings\npolices = "rules"\nformat = 3\n')
    r = _run("validate")
    assert r.exit_code == 2
    assert f"{project / 'policy-engine.toml'}:2: error: config-invalid: unknown key 'polices'" in r.stderr
    assert "did you mean 'policies'?" in r.stderr
    assert f"{project / 'policy-engine.toml'}:3: error: config-invalid: 'format' must be text" in r.stderr
    (project / "policy-engine.toml").write_text('policies = "rules\n')
    r = _run("validate")
    assert r.exit_code == 2 and "config-syntax: not valid TOML" in r.stderr and ":1:" in r.stderr
    (project / "policy-engine.toml").write_text('[formats]\ndiff = "html"\n')
    r = _run("diff", "a@1", "b@2")
    assert r.exit_code == 2 and "'diff' has no format 'html'" in r.stderr and "one of text, json, markdown" in r.stderr
    (project / "policy-engine.toml").write_text('[formats]\ndif = "json"\n')
    r = _run("validate")
    assert r.exit_code == 2 and ":2: error: config-invalid: [formats] names no command 'dif'" in r.stderr
    assert "did you mean 'diff'?" in r.stderr
    (project / "policy-engine.toml").write_text('format = "json"\n[formats]\ndif = "json"\n')
    r = _run("validate")  # the file asks for JSON: a machine parsing stderr gets JSON for the file's own fault too
    assert r.exit_code == 2 and json.loads(r.stderr)["errors"][0]["path"] == "formats.dif"
    r = _run("--config", str(project / "missing.toml"), "validate")
    assert r.exit_code == 2 and "configuration file" in r.stderr and "does not exist" in r.stderr
    # a format no command has was passed over without a word: every command wrote its default (a CI review)
    (project / "policy-engine.toml").write_text('format = "jsn"\n')
    r = _run("validate")
    assert r.exit_code == 2 and ":1: error: config-invalid: no command has the format 'jsn'" in r.stderr
    assert "did you mean 'json'?" in r.stderr


@pytest.mark.parametrize("args", [["decide", "--bogus-opt"], ["impact", "a", "b"], ["--bogus", "validate"],
                                  ["test", "--min-coverage", "abc"], ["audit", "list", "--limit", "0"]])
def test_usage_errors_are_json_when_the_configuration_asks_for_json(project: Path, args: list[str]) -> None:
    """The command line's --format json made click's own usage errors JSON; format = "json" in the file did not, so
    a pipeline that set it once got text exactly when its command line was wrong (found by a CI review)."""
    (project / "policy-engine.toml").write_text('format = "json"\n')
    r = _run(*args)
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "usage" and error["hint"].endswith("--help")
    (project / "policy-engine.toml").write_text('format = "text"\n')
    r = _run(*args)
    assert r.exit_code == 2 and r.stderr.startswith(("Usage:", "Error:"))


@pytest.mark.parametrize("var", ["POLICY_ENGINE_AUDIT_DB", "POLICY_ENGINE_POLICIES", "POLICY_ENGINE_CONFIG"])
@pytest.mark.parametrize("value", ["", "  "])
def test_a_setting_variable_set_but_blank_is_a_usage_error(project: Path, var: str, value: str) -> None:
    """An unset CI secret exports '': the store fell back to ./audit.db without a word, and '  ' made a store file
    named two spaces (found by a CI review). The command line's option wins over the variable."""
    r = _run("config", "--format", "json", env={var: value})
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert (error["code"], error["message"]) == ("blank-setting", f"${var} is set but blank")
    option = {"POLICY_ENGINE_AUDIT_DB": ["--audit-db", "a.db"], "POLICY_ENGINE_POLICIES": ["--policies", "rules"],
              "POLICY_ENGINE_CONFIG": ["--config", str(project / "c.toml")]}[var]
    (project / "c.toml").write_text("")
    (project / "rules").mkdir()
    r = _run(*option, "config", "--format", "json", env={var: value})
    assert r.exit_code == 0, r.stderr
    assert not list(project.glob(" *"))


@pytest.mark.parametrize("case", ["blank-setting", "unknown-key", "format-the-command-lacks"])
def test_a_configuration_asking_for_json_gets_its_own_problems_as_json(project: Path, case: str) -> None:
    """format = "json" made every error JSON but the file's own and a blank variable's, exactly the unset CI secret
    the blank-setting check is for; and [formats] diff = "junit" passed validate, failing only when diff ran (found
    by a CI-integration review)."""
    text, env, code = {"blank-setting": ('format = "json"\n', {"POLICY_ENGINE_AUDIT_DB": ""}, "blank-setting"),
                       "unknown-key": ('format = "json"\naudit_db = "x.db"\n', None, "config-invalid"),
                       "format-the-command-lacks": ('format = "json"\n[formats]\ndiff = "junit"\n', None,
                                                   "config-invalid")}[case]
    (project / "policy-engine.toml").write_text(text)
    r = _run("validate", env=env)
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == code
    if case == "format-the-command-lacks":
        assert (error["message"], error["path"], error["line"]) == ("'diff' has no format 'junit'", "formats.diff", 3)


def test_explain_writes_json_when_the_configuration_asks_for_it_and_text_otherwise(project: Path) -> None:
    client = REFERENCE / "samples" / "clients" / "02-case-manufacturer-raw-material-squeeze.json"
    args = ["--policies", str(REFERENCE.parent), "explain", "-p", "loss-client-management", "-c", str(client)]
    assert _run(*args).stdout.startswith("Client ")
    (project / "policy-engine.toml").write_text('format = "json"\n')
    r = _run(*args)
    assert r.exit_code == 0, r.stderr
    assert set(json.loads(r.stdout)) == {"text", "decision"}


def test_config_says_where_the_configuration_file_came_from(project: Path) -> None:
    """It said "found" for a file named by --config or $POLICY_ENGINE_CONFIG too (a CI-integration review)."""
    (project / "c.toml").write_text('format = "json"\n')
    assert _settings("--config", "c.toml")["config"]["from"] == "command line"
    assert _settings(env={"POLICY_ENGINE_CONFIG": "c.toml"})["config"]["from"] == "$POLICY_ENGINE_CONFIG"
    assert _settings()["config"] == {"value": None, "from": "none"}
    (project / "policy-engine.toml").write_text("")
    assert _settings()["config"]["from"] == "found"


def test_the_command_lines_format_wins_over_the_files_for_the_files_own_problems(project: Path) -> None:
    """format = "json" in a file with an unknown key made its error JSON even under --format text (a commit review):
    the command-line option comes first, as for every setting."""
    (project / "policy-engine.toml").write_text('format = "json"\nbogus = 1\n')
    r = _run("config", "--format", "text")
    assert r.exit_code == 2 and "config-invalid: unknown key 'bogus'" in r.stderr and not r.stderr.startswith("{")
    assert json.loads(_run("config").stderr)["errors"][0]["code"] == "config-invalid"


@pytest.mark.parametrize(("entry", "message", "hint"), [
    ('audit = "json"', "[formats] names the group 'audit', which sets nothing", "name each command: audit list"),
    ('generate = "json"', "'generate' has no --format (so no format 'json')", "remove the entry"),
])
def test_a_formats_entry_that_would_set_nothing_is_refused(project: Path, entry: str, message: str, hint: str) -> None:
    (project / "policy-engine.toml").write_text(f"[formats]\n{entry}\n")
    r = _run("validate", "--format", "json")
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert (error["code"], error["message"]) == ("config-invalid", message) and error["hint"].startswith(hint)


def test_the_last_format_on_the_command_line_is_the_one_asked_for(project: Path) -> None:
    """click takes the last --format; the file's problems followed the first (a commit review)."""
    (project / "policy-engine.toml").write_text("bogus = 1\n")
    r = _run("config", "--format", "text", "--format", "json")
    assert r.exit_code == 2 and json.loads(r.stderr)["errors"][0]["code"] == "config-invalid"
