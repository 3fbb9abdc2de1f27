"""An engine error crosses a process boundary whole (a Dask worker to the client): same class, same
diagnostics, so the client reports the worker's problems with their exit code."""

from __future__ import annotations

import pickle

import pytest

from policy_engine.diagnostics import Diagnostic, InputError, PolicyEngineError, PolicyError, UsageError


@pytest.mark.parametrize("cls", [InputError, PolicyError, UsageError])
def test_an_error_pickles_with_its_diagnostics(cls: type[PolicyEngineError]) -> None:
    problems = [Diagnostic("bad-field", "balance must be a number", file="t.parquet", path="exposures[2].balance",
                           hint="a number"), Diagnostic("missing-field", "required field 'as_of' is missing")]
    again = pickle.loads(pickle.dumps(cls(problems)))
    assert type(again) is cls and again.exit_code == cls.exit_code
    assert again.diagnostics == cls(problems).diagnostics and str(again) == str(cls(problems))
