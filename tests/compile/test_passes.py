"""The compiler's passes: each declares the symbols of its own section, in an order that lets it
read only what the passes before it declared."""

from __future__ import annotations

from policy_engine.policy.compiler import BUILTIN_SYMBOLS, PASSES, _Compiler, check_document
from policy_engine.policy.loader import load_yaml_file, load_yaml_text

from ..conftest import CURRENT, DATA

SECTION_SYMBOLS = {"inputs": "input", "parameters": "param", "metrics": "metric"}


def test_passes_run_in_the_documented_order() -> None:
    assert [name for name, _ in PASSES] == [
        "imports", "scale and segments", "scopes", "inputs", "parameters", "metrics", "scorecard",
        "warning categories", "classification",
        "warnings", "action types", "actions", "cross-checks"]


def test_each_pass_declares_only_the_symbols_of_its_section() -> None:
    for path in (CURRENT, DATA / "mini-policy.yaml"):
        c = _Compiler(load_yaml_file(path))
        before = dict(c.symbols)
        for name, run_pass in PASSES:
            run_pass(c)
            added = {s.kind for n, s in c.symbols.items() if n not in before}
            assert added <= {SECTION_SYMBOLS[name]} if name in SECTION_SYMBOLS else not added, (path, name, added)
            before = dict(c.symbols)
        assert c.sink.ok and set(c.symbols) >= set(BUILTIN_SYMBOLS)
        # every section compiled in the policy's order (metrics in dependency order)
        data = c.data
        assert [f.id for f in c.parts["factors"]] == [f["id"] for f in data["scorecard"]["factors"]]
        assert [r.id for r in c.parts["floors"]] == [r["id"] for r in data["classification"]["rules"]]
        assert [w.id for w in c.parts["warnings"]] == [w["id"] for w in data["warnings"]]
        assert [a.id for a in c.parts["actions"]] == [a["id"] for a in data["actions"]]
        assert sorted(m.name for m in c.parts["metrics"]) == sorted(data["metrics"])


def test_a_parameter_named_like_an_input_is_reported_on_the_parameter() -> None:
    # inputs run before parameters, so the input keeps the name and the parameter is the duplicate
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    text = text.replace("parameters:\n", "parameters:\n  dpd: {value: 90}\n", 1)
    diags, policy = check_document(load_yaml_text(text, "mini.yaml"))
    assert policy is None
    assert [(d.code, d.path, d.line) for d in diags] == [("duplicate-name", "parameters.dpd", 20)]
