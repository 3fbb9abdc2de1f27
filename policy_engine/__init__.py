"""policy_engine: versioned YAML credit-risk policies -> auditable decisions.

Load and compile a policy once, then decide many clients::

    import policy_engine as pe

    policy = pe.load_policy("policies/loss-client-management/policy-1.1.0.yaml")
    decider = pe.Decider(policy)
    record = decider.decide(client_dict)            # a dict, DESIGN section 5
    print(record["classification"]["grade"])

Or pick the version in force from a registry directory::

    policy = pe.Registry("policies").select("loss-client-management", as_of="2025-03-31")

With the guarantees of the command line (the version in force on each client's day, every
decision recorded in the decision store, every row of a portfolio accounted for)::

    record = pe.decide_and_record("loss-client-management", client_dict, registry="policies",
                                  audit_db="audit.db")
    run = pe.run_batch("loss-client-management", "portfolio.csv", registry="policies",
                       out="decisions.parquet", rejects="rejects.jsonl", audit_db="audit.db")
    run.summary["accounting"]        # rows_read = decided + rejected

Names are imported on first use (PEP 562) so that ``import policy_engine`` and
the CLI's ``--help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .version import __version__

_EXPORTS = {
    "CompiledPolicy": "policy.compiler",
    "check_document": "policy.compiler",
    "compile_document": "policy.compiler",
    "Diagnostic": "diagnostics",
    "InputError": "diagnostics",
    "PolicyEngineError": "diagnostics",
    "PolicyError": "diagnostics",
    "UsageError": "diagnostics",
    "Decider": "decide.evaluate",
    "canonical_json": "decide.canonical",
    "decide": "decide.evaluate",
    "dumps": "decide.evaluate",
    "explain": "decide.explain",
    "decision_warnings": "decide.explain",
    "load_yaml_file": "policy.loader",
    "load_yaml_text": "policy.loader",
    "parse_json_text": "policy.loader",
    "Registry": "policy.registry",
    "check_paths": "policy.registry",
    "load_policy": "policy.registry",
    "BatchRun": "run",
    "PolicyRef": "run",
    "decide_and_record": "run",
    "run_batch": "run",
    "run_dataset": "portfolio.distributed",
    "run_tests": "review.tester",
}

__all__ = [
    "BatchRun", "CompiledPolicy", "Decider", "Diagnostic", "InputError", "PolicyEngineError", "PolicyError",
    "PolicyRef", "Registry", "UsageError", "__version__", "canonical_json", "check_document", "check_paths",
    "compile_document", "decide", "decide_and_record", "decision_warnings", "dumps", "explain", "load_policy",
    "load_yaml_file", "load_yaml_text", "parse_json_text", "run_batch", "run_dataset", "run_tests",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policy_engine' has no attribute '{name}'")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .decide.canonical import canonical_json
    from .decide.evaluate import Decider, decide, dumps
    from .decide.explain import decision_warnings, explain
    from .diagnostics import Diagnostic, InputError, PolicyEngineError, PolicyError, UsageError
    from .policy.compiler import CompiledPolicy, check_document, compile_document
    from .policy.loader import load_yaml_file, load_yaml_text, parse_json_text
    from .policy.registry import Registry, check_paths, load_policy
    from .portfolio.distributed import run_dataset
    from .review.tester import run_tests
    from .run import BatchRun, PolicyRef, decide_and_record, run_batch
