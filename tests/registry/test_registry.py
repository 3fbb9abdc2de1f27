"""The registry: versions side by side, chosen by date or pinned."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from policy_engine.diagnostics import PolicyError, UsageError
from policy_engine.policy.registry import ENV_VAR, Registry, default_root

from ..conftest import DATA, POLICIES

ID = "loss-client-management"


@pytest.mark.parametrize(("as_of", "version"), [
    ("2024-01-01", "1.0.0"), ("2024-12-31", "1.0.0"), ("2025-01-01", "1.1.0"), ("2026-06-30", "1.1.0"),
    ("2026-07-01", "2.0.0"), ("2026-12-31", "2.0.0"), ("2027-01-01", "2.0.1"), ("2027-03-31", "2.0.1"),
    ("2027-04-01", "2.0.2"), ("2027-06-30", "2.0.2"), ("2027-07-01", "2.1.0"), ("2030-06-30", "2.1.0")])
def test_version_in_force_is_chosen_by_date(as_of: str, version: str) -> None:
    assert Registry(POLICIES).select(ID, as_of=as_of).version == version


def test_without_a_date_the_version_in_force_today_is_chosen() -> None:
    import datetime as dt

    today = dt.date.today().isoformat()
    in_force = ("2.1.0" if today >= "2027-07-01" else "2.0.2" if today >= "2027-04-01"
                else "2.0.1" if today >= "2027-01-01" else "2.0.0" if today >= "2026-07-01" else "1.1.0")
    assert Registry(POLICIES).select(ID).version == in_force


def test_the_shipped_versions_follow_each_other_without_a_gap_or_an_overlap() -> None:
    """Each active version ends the day before the next begins: every day from 2024 has exactly one."""
    from policy_engine.policy.registry import version_conflicts

    reg = Registry(POLICIES)
    versions = sorted((p for p in reg.policies() if p.id == ID and p.status == "active"),
                      key=lambda p: p.effective_from)
    assert [p.version for p in versions] == ["1.0.0", "1.1.0", "2.0.0", "2.0.1", "2.0.2", "2.1.0"]
    for before, after in pairwise(versions):
        assert before.effective_to is not None and _next_day(before.effective_to) == after.effective_from
    assert versions[-1].effective_to is None and version_conflicts(versions) == []


def _next_day(day: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def test_a_version_can_be_pinned() -> None:
    assert Registry(POLICIES).select(ID, as_of="2030-01-01", version="1.0.0").version == "1.0.0"


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"policy_id": "loss-client-managment"}, "unknown-policy"),
    ({"policy_id": ID, "version": "9.9.9"}, "unknown-version"),
    ({"policy_id": ID, "as_of": "2023-06-30"}, "no-version-in-force"),
])
def test_selection_failures_are_usage_errors_with_hints(kwargs: dict[str, str], code: str) -> None:
    with pytest.raises(UsageError) as err:
        Registry(POLICIES).select(**kwargs)
    d = err.value.diagnostics[0]
    assert d.code == code and d.hint
    if code == "unknown-policy":
        assert d.hint == f"did you mean '{ID}'?"


def test_missing_registry_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Registry(tmp_path / "nope")


def test_registry_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_root() == tmp_path
    monkeypatch.delenv(ENV_VAR)
    assert default_root() == Path("policies")


def test_overlapping_versions_make_the_registry_invalid(tmp_path: Path) -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "policy-2.0.0.yaml").write_text(text.replace("version: 1.0.0", "version: 2.0.0"), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        Registry(tmp_path).select("mini", as_of="2024-06-01")
    assert err.value.diagnostics[0].code == "version-overlap"
    # at the line to change: the later version's effective_from
    assert err.value.diagnostics[0].line == text.splitlines().index("effective_from: 2024-01-01") + 1


def test_draft_versions_are_never_chosen_by_date(tmp_path: Path) -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "policy-2.0.0.yaml").write_text(
        text.replace("version: 1.0.0", "version: 2.0.0").replace("status: active", "status: draft"), encoding="utf-8")
    reg = Registry(tmp_path)
    assert reg.select("mini", as_of="2025-01-01").version == "1.0.0"
    assert reg.select("mini", version="2.0.0").version == "2.0.0"


@pytest.mark.parametrize("kwargs", [{"version": "1.0.0"}, {"as_of": "2024-06-01"}], ids=["pinned", "by-date"])
def test_a_version_defined_twice_is_refused_not_picked(tmp_path: Path, kwargs: dict[str, str]) -> None:
    """A copy left beside its original with the same version (a hotfix not renumbered): which file 'mini 1.0.0'
    means would depend on how it is asked, and a decision recording 1.0.0 could not be told apart."""
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    hotfix = text.replace("effective_from: 2024-01-01", "effective_from: 2031-01-01")
    assert hotfix != text
    (tmp_path / "policy-1.0.0-hotfix.yaml").write_text(hotfix, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        Registry(tmp_path).select("mini", **kwargs)
    (d,) = err.value.diagnostics
    assert d.code == "duplicate-version" and d.line == text.splitlines().index("version: 1.0.0") + 1
    assert "policy-1.0.0-hotfix.yaml" in d.message and "policy-1.0.0.yaml" in d.message



def test_a_test_file_named_as_a_policy_in_a_registry_is_a_broken_policy_listed_with_the_rest(tmp_path: Path) -> None:
    """Refused as not-a-policy (a UsageError) in the scan, it stopped `test` from running any case: only a file the
    user names as the policy (-p FILE) is refused so (a commit review)."""
    folder = tmp_path / "loss-client-management"
    folder.mkdir()
    reference = POLICIES / "loss-client-management"
    (folder / "policy-1.1.0.yaml").write_text((reference / "policy-1.1.0.yaml").read_text("utf-8"), "utf-8")
    (folder / "policy-tests.yaml").write_text((reference / "tests" / "classification.yaml").read_text("utf-8"), "utf-8")
    with pytest.raises(PolicyError) as e:
        Registry(tmp_path).policies()
    assert {d.file for d in e.value.diagnostics} == {str(folder / "policy-tests.yaml")}


def test_the_python_api_names_a_test_file_given_as_the_policy_not_a_policy() -> None:
    """load_policy(path) is the file the caller named: not a dozen missing-key errors (a commit review)."""
    from policy_engine.policy.registry import load_policy

    with pytest.raises(UsageError) as e:
        load_policy(POLICIES / "loss-client-management" / "tests" / "classification.yaml")
    assert [d.code for d in e.value.diagnostics] == ["not-a-policy"]
