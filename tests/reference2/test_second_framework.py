"""A second framework on the same record: IFRS 9 staging (tests/data/packs/ifrs9-staging) beside the reference policy.

The record 2.0 carries facts, not one framework's conclusions, so a policy grading on another scale decides the
same debtors, and the restructuring test it imports from financial-difficulty 1.3.0 finds the restructurings the
reference policy finds (through 1.2.0). 1.2.0 typed the modification's grade before the change as a grade of the
importer's scale, and refused every modification of a staging policy's debtors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, POLICIES, REFERENCE

SAMPLES = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
SHARED = ("restructuring_count", "restructuring_date", "first_restructuring_date", "nonperforming_before_restructuring")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    shutil.copytree(POLICIES / "financial-difficulty", root / "financial-difficulty")
    shutil.copytree(DATA / "packs" / "ifrs9-staging", root / "ifrs9-staging")
    return root


@pytest.fixture(scope="module")
def staging(registry: Path) -> Decider:
    return Decider(load_policy(registry / "ifrs9-staging" / "policy-1.0.0.yaml"))


@pytest.fixture(scope="module")
def reference() -> Decider:
    return Decider(load_policy(REFERENCE / "policy-2.1.0.yaml"))


def _record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_pack_and_the_module_version_it_imports_validate(registry: Path) -> None:
    r = CliRunner().invoke(main, ["--policies", str(registry), "validate", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert {f["kind"] for f in json.loads(r.stdout)["files"]} == {"policy", "module"}


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_debtor_is_decided_under_both_and_the_restructurings_agree(
        sample: Path, staging: Decider, reference: Decider) -> None:
    record = _record(sample)
    stages = staging.decide(record, as_of=record["as_of"])  # refused before: unknown value 'special_mention'
    grades = reference.decide(record, as_of=record["as_of"])
    assert stages["classification"]["grade"] in {"stage_1", "stage_2", "stage_3"}
    by_id = {e["exposure_id"]: e["metrics"] for e in grades["exposures"]}
    for e in stages["exposures"]:
        assert {n: e["metrics"][n] for n in SHARED} == {n: by_id[e["exposure_id"]][n] for n in SHARED}, \
            (sample.stem, e["exposure_id"])


@pytest.mark.parametrize(("sample", "exposure", "stage", "rule"), [
    ("10-extension-in-difficulty", "E1", "stage_2", "forborne_stage_2"),  # an extension while 30 days overdue
    ("11-rate-cut-healthy-debtor", "E1", "stage_1", "default"),  # not a restructuring: no forbearance
    ("16-npl-before-restructuring", "E1", "stage_3", "forborne_nonperforming"),  # substandard before the change
])
def test_the_imported_restructuring_test_stages_the_exposure(staging: Decider, sample: str, exposure: str,
                                                             stage: str, rule: str) -> None:
    record = _record(REFERENCE / "samples" / "debtors" / f"{sample}.json")
    e = next(x for x in staging.decide(record, as_of=record["as_of"])["exposures"] if x["exposure_id"] == exposure)
    assert (e["grade"], e["decided_by"]) == (stage, rule)


def test_a_grade_before_the_change_off_the_five_tier_scale_is_refused_by_name(staging: Decider) -> None:
    from policy_engine.diagnostics import InputError

    record = _record(REFERENCE / "samples" / "debtors" / "10-extension-in-difficulty.json")
    record["exposures"][0]["modifications"][0]["grade_before"] = "stage_2"
    with pytest.raises(InputError) as caught:
        staging.decide(record, as_of=record["as_of"])
    (problem,) = caught.value.diagnostics
    assert problem.path == "exposures[0].modifications[0].grade_before" and "'stage_2'" in problem.message


def test_the_stage_warning_names_the_exposures_finance_is_to_review(staging: Decider) -> None:
    fired = 0
    for sample in SAMPLES:
        record = _record(sample)
        decision = staging.decide(record, as_of=record["as_of"])
        behind = [e["exposure_id"] for e in decision["exposures"] if e["metrics"]["stage_mismatch"] is True]
        warning = next((w for w in decision["warnings"] if w["id"] == "reported_stage_behind"), None)
        assert (warning["exposures"] if warning else []) == behind, sample.stem
        fired += warning is not None
    assert fired  # some sample debtor's books are behind the rule stage
