"""CI-native renderings of `validate` and `test` results: JUnit XML and GitHub workflow annotations.

JUnit XML is what CI servers (Jenkins, GitLab, Azure) show as a test report; GitHub's
``::error file=...,line=...::message`` lines become annotations on the pull request's diff.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..diagnostics import Diagnostic


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def junit_validate(results: Sequence[Any]) -> str:
    """One test case per policy file; its errors as the failure, warnings as system-out."""
    errors = [r for r in results if any(d.severity == "error" for d in r.diagnostics)]
    suites = ET.Element("testsuites", name="policy-engine validate", tests=str(len(results)),
                        failures=str(len(errors)))
    suite = ET.SubElement(suites, "testsuite", name="validate", tests=str(len(results)), failures=str(len(errors)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="validate", name=r.file)
        bad = [d for d in r.diagnostics if d.severity == "error"]
        if bad:
            failure = ET.SubElement(case, "failure", message=f"{len(bad)} error(s); first: {bad[0].code}: "
                                    f"{bad[0].message}", type=bad[0].code)
            failure.text = "\n".join(d.render() for d in r.diagnostics)
        elif r.diagnostics:
            ET.SubElement(case, "system-out").text = "\n".join(d.render() for d in r.diagnostics)
    return _xml(suites)


def junit_tests(run: Any, coverage: Mapping[str, Any] | None = None, min_coverage: float | None = None) -> str:
    """One test case per (policy version, case); failures carry expected vs actual.

    With ``coverage``, one suite per policy version holds one test case per rule: a rule no expectation
    pins both ways is ``skipped`` with what is missing (a ``failure`` when the version is below
    ``min_coverage``), and the suite's properties give the figures a CI dashboard plots.
    """
    suites = ET.Element("testsuites", name="policy-engine test")
    by_file: dict[str, list[Any]] = {}
    for r in run.results:
        by_file.setdefault(r.file, []).append(r)
    for file, results in by_file.items():
        bad = [r for r in results if not r.passed]
        suite = ET.SubElement(suites, "testsuite", name=file, tests=str(len(results)), failures=str(len(bad)))
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=r.policy, name=r.name, file=file,
                                 line=str(r.line or 0))
            if not r.passed:
                failure = ET.SubElement(case, "failure", message=r.failures[0], type="expectation")
                failure.text = "\n".join(failures_at_lines(r))
    if run.diagnostics:
        suite = ET.SubElement(suites, "testsuite", name="policy and test files", tests=str(len(run.diagnostics)),
                              errors=str(len(run.diagnostics)))
        for d in run.diagnostics:
            case = ET.SubElement(suite, "testcase", classname="load", name=f"{d.file}:{d.line or 0}")
            ET.SubElement(case, "error", message=f"{d.code}: {d.message}", type=d.code).text = d.render()
    for policy, cov in (coverage or {}).items():
        _junit_coverage(suites, policy, cov, min_coverage)
    for key in ("tests", "failures", "errors", "skipped"):  # the totals are those of every suite below
        suites.set(key, str(sum(int(suite.get(key, "0")) for suite in suites)))
    return _xml(suites)


def _junit_coverage(suites: ET.Element, policy: str, cov: Any, min_coverage: float | None) -> None:
    below = min_coverage is not None and cov.percent < min_coverage
    missing = [r for r in cov.rules if not r.covered]
    suite = ET.SubElement(suites, "testsuite", name=f"rule coverage {policy}", tests=str(len(cov.rules)),
                          failures=str(len(missing) if below else 0), skipped=str(0 if below else len(missing)))
    props = ET.SubElement(suite, "properties")
    for name, value in (("coverage.percent", f"{cov.percent:.2f}"), ("coverage.covered", str(cov.covered)),
                        ("coverage.rules", str(len(cov.rules)))):
        ET.SubElement(props, "property", name=name, value=value)
    for r in cov.rules:
        case = ET.SubElement(suite, "testcase", classname=f"coverage.{policy}", name=r.name,
                             file=r.file or "", line=str(r.line or 0))
        if not r.covered:
            text = f"{r.place}: {r.status}: {r.missing}"
            if below:
                ET.SubElement(case, "failure", message=text, type="coverage").text = text
            else:
                ET.SubElement(case, "skipped", message=text)


def _escape(text: str, prop: bool = False) -> str:
    # GitHub's workflow-command escaping: data escapes %, CR, LF; properties also ':' and ','.
    out = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        out = out.replace(":", "%3A").replace(",", "%2C")
    return out


def _workspace_path(file: str | None) -> str:
    """A path as GitHub attaches an annotation: relative to the checkout (the working folder) when the file lies
    in it; an absolute path (``--policies $PWD/policies``) annotates nothing."""
    import os

    if not file or not os.path.isabs(file):
        return file or ""
    rel = os.path.relpath(file)
    return file if rel.startswith("..") else rel


def github_diagnostics(diags: Iterable[Diagnostic]) -> str:
    lines = []
    for d in diags:
        level = {"error": "error", "warning": "warning", "info": "notice"}[d.severity]
        props = [f"file={_escape(_workspace_path(d.file), True)}"]
        if d.line is not None:
            props.append(f"line={d.line}")
        if d.column is not None:
            props.append(f"col={d.column}")
        props.append(f"title={_escape(d.code, True)}")
        message = d.message + (f" [at {d.path}]" if d.path else "") + (f" — {d.hint}" if d.hint else "")
        lines.append(f"::{level} {','.join(props)}::{_escape(message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def failures_at_lines(r: Any) -> list[str]:
    """A failing case's failures, each with the line of its expectation (as the text report writes them)."""
    return [f if at is None else f"line {at}: {f}" for f, at in zip(r.failures, r.lines_of_failures,
                                                                  strict=True)]


def github_tests(run: Any, coverage: Mapping[str, Any] | None = None, min_coverage: float | None = None,
                 show_rules: bool = False) -> str:
    """Failures as error annotations on the case's line, then the counts and each version's rule coverage.

    A version below ``min_coverage`` is an error, and each rule it leaves unpinned is annotated on the
    policy's line (a warning with ``show_rules`` alone): the pull request shows which rule lacks a case.
    """
    lines = [github_diagnostics(run.diagnostics).rstrip("\n")] if run.diagnostics else []
    for r in run.results:
        if not r.passed:  # one annotation per failure, on the line of its expectation (the case's, for its own)
            for failure, at in zip(r.failures, r.lines_of_failures, strict=True):
                props = (f"file={_escape(_workspace_path(r.file), True)},line={at or r.line or 1},"
                         f"title={_escape('policy test failed', True)}")
                lines.append(f"::error {props}::{_escape(f'[{r.policy}] {r.name}: {failure}')}")
    lines.append(f"::notice title=policy tests::{run.passed} passed, {run.failed} failed")
    for policy, cov in (coverage or {}).items():
        below = min_coverage is not None and cov.percent < min_coverage
        figure = f"{_escape(policy)}: {cov.covered}/{len(cov.rules)} rules pinned both ways ({cov.percent:.1f}%)"
        if below:
            lines.append(f"::error title=rule coverage::{figure}, below --min-coverage {min_coverage:g}%")
        else:
            lines.append(f"::notice title=rule coverage::{figure}")
        if below or show_rules:
            for r in cov.rules:
                if not r.covered:
                    props = f"file={_escape(_workspace_path(r.file), True)}" + (f",line={r.line}" if r.line else "")
                    lines.append(f"::{'error' if below else 'warning'} {props},title={_escape('rule coverage', True)}"
                                 f"::{_escape(f'[{policy}] {r.status} {r.name}: {r.missing}')}")
    return "\n".join(lines) + "\n"
