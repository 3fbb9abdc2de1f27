"""`batch` on a policy with scopes: JSON Lines of debtor records in, one row per debtor and one per
exposure out, every line accounted for, records equal to `decide`'s, bad input named.

The reference policy 2.0.0 decides the shipped sample debtors; the multi-exposure test policy the
hand-made ones. Version per line, recording and the Dask engine have their own files
(test_scoped_versions.py, test_scoped_audit.py, test_scoped_dask.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, POLICIES, REFERENCE

POLICY_2 = REFERENCE / "policy-2.0.0.yaml"
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
MULTI = DATA / "scopes" / "policy-multi-exposure.yaml"
THREE = DATA / "scopes" / "clients" / "three-exposures.json"
VOLATILE = ("decision_id", "evaluated_at")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records))
    return path


def sample_debtors() -> list[dict[str, Any]]:
    return [json.loads(f.read_text("utf-8")) for f in DEBTORS]


def steady(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def test_the_sample_debtors_are_decided_as_decide_decides_them(tmp_path: Path) -> None:
    debtors = sample_debtors()
    assert len(debtors) >= 20
    src = write_lines(tmp_path / "debtors.jsonl", debtors)
    out, exposures, records = tmp_path / "d.parquet", tmp_path / "e.parquet", tmp_path / "r.jsonl"
    r = run("batch", str(src), "-p", str(POLICY_2), "--no-audit", "--format", "json", "--out", str(out),
            "--exposures-out", str(exposures), "--records", str(records))
    assert r.exit_code == 0, r.stderr
    decider = Decider(load_policy(POLICY_2))
    want = [decider.decide(d) for d in debtors]
    got = [json.loads(line) for line in records.read_text("utf-8").splitlines()]
    assert [steady(g) for g in got] == [steady(w) for w in want]
    table = pd.read_parquet(out)
    assert table["client_id"].tolist() == [w["client_id"] for w in want]
    assert table["grade"].tolist() == [w["classification"]["grade"] for w in want]
    assert table["decided_by"].tolist() == [w["classification"]["decided_by"] for w in want]
    assert [None if pd.isna(x) else x for x in table["decided_by_exposure"]] == \
        [w["classification"].get("decided_by_exposure") for w in want]
    assert table["exposures"].tolist() == [len(w["exposures"]) for w in want]
    rows = pd.read_parquet(exposures)
    flat = [(w["client_id"], x["exposure_id"], x["grade"], x["own_grade"], x["decided_by"]) for w in want
            for x in w["exposures"]]
    assert list(zip(rows["client_id"], rows["exposure_id"], rows["grade"], rows["own_grade"], rows["decided_by"],
                    strict=True)) == flat
    assert [list(f) for f in rows["floors"]] == [[f["id"] for f in x["floors"]] for w in want for x in w["exposures"]]
    # each exposure's balance as read (what impact weighs a migration by)
    assert rows["balance"].tolist() == [x["balance"] for d in debtors for x in d["exposures"]]
    s = json.loads(r.stdout)
    assert s["accounting"] == {"rows_read": len(debtors), "decided": len(debtors), "rejected": 0}
    assert s["policy"]["version"] == "2.0.0"
    assert sum(v["count"] for v in s["by_grade"].values()) == len(debtors)
    assert s["exposures"]["count"] == len(flat)
    for grade, v in s["exposures"]["by_grade"].items():
        assert v["count"] == sum(1 for f in flat if f[2] == grade)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_output_format_holds_one_row_per_debtor_and_per_exposure(tmp_path: Path, suffix: str) -> None:
    three = json.loads(THREE.read_text("utf-8"))
    debtors = [{**three, "client_id": f"D{k}"} for k in range(3)]
    src = write_lines(tmp_path / "debtors.jsonl", debtors)
    out, exposures = tmp_path / f"d{suffix}", tmp_path / f"e{suffix}"
    r = run("batch", str(src), "-p", str(MULTI), "--no-audit", "--out", str(out), "--exposures-out", str(exposures))
    assert r.exit_code == 0, r.stderr
    read = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
            ".jsonl": lambda p: pd.read_json(p, lines=True)}[suffix]
    d, e = read(out), read(exposures)
    assert d["client_id"].tolist() == ["D0", "D1", "D2"] and d["row"].tolist() == [1, 2, 3]
    assert len(e) == 3 * len(three["exposures"])
    assert e["exposure_id"].tolist() == [x["exposure_id"] for x in three["exposures"]] * 3
    assert {"grade", "own_grade", "decided_by", "floors"} <= set(e.columns)


def test_the_text_summary_counts_debtors_and_exposures_by_grade(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "debtors.jsonl", sample_debtors()[:5])
    r = run("batch", str(src), "-p", str(POLICY_2), "--no-audit", "--format", "text")
    assert r.exit_code == 0, r.stderr
    assert "rows read 5 = decided 5 + rejected 0" in r.stdout
    assert "exposures " in r.stdout and ", by grade:" in r.stdout


def test_every_line_is_decided_or_a_reject_with_its_reason(tmp_path: Path) -> None:
    three = json.loads(THREE.read_text("utf-8"))
    bad_exposure = {**three, "client_id": "BAD", "exposures": [{**three["exposures"][0], "balance": "ten"}]}
    lines: list[Any] = [{**three, "client_id": "A"}, b"", b"{not json", b"[1, 2]", bad_exposure,
                        {**three, "client_id": "A"}, {**three, "client_id": "B"}]
    src = write_lines(tmp_path / "debtors.jsonl", lines)
    rejects = tmp_path / "rejects.jsonl"
    r = run("batch", str(src), "-p", str(MULTI), "--no-audit", "--format", "json", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["accounting"] == {"rows_read": 6, "decided": 2, "rejected": 4}  # the blank line 2 is no row
    got = {x["line"]: x for x in map(json.loads, rejects.read_text("utf-8").splitlines())}
    assert sorted(got) == [3, 4, 5, 6]
    assert got[3]["problems"][0]["code"] == "bad-json"
    assert got[4]["problems"][0]["code"] == "wrong-type"
    assert got[5]["client_id"] == "BAD" and got[5]["problems"][0]["field"] == "exposures[0].balance"
    assert got[6]["problems"] == [{"field": "client_id", "code": "duplicate-id",
                                   "message": "duplicate client_id 'A' (first at row 1)"}]
    assert "4 row(s) rejected" in r.stderr
    strict = run("batch", str(src), "-p", str(MULTI), "--no-audit", "--fail-on-rejects")
    assert strict.exit_code == 3


def test_a_record_of_a_policy_without_scopes_is_named_as_such(tmp_path: Path) -> None:
    old = json.loads((REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json").read_text("utf-8"))
    src = write_lines(tmp_path / "old.jsonl", [{**old, "as_of": "2026-09-30"}])
    rejects = tmp_path / "rejects.jsonl"
    r = run("batch", str(src), "-p", str(POLICY_2), "--no-audit", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    problems = json.loads(rejects.read_text("utf-8"))["problems"]
    # 1.1.0 beside 2.0.0 reads it: decide's one diagnostic names its kind (not its 30 missing fields)
    [named] = problems
    assert (named["code"], named["field"]) == ("wrong-record-kind", "(record)")
    assert named["message"].startswith("this is a client record 1.x (it has ")
    assert "--policy-version 1.1.0" in named["hint"] and "policy-engine convert" in named["hint"]


def test_a_record_of_a_policy_without_scopes_and_no_version_reading_it_is_named_too(tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "policy-2.0.0.yaml").write_text(POLICY_2.read_text("utf-8").replace("tests: tests-2.0.0\n", ""), "utf-8")
    shutil.copytree(POLICIES / "financial-difficulty", tmp_path / "financial-difficulty")  # the module it imports
    old = json.loads((REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json").read_text("utf-8"))
    src = write_lines(tmp_path / "old.jsonl", [{**old, "as_of": "2026-09-30"}])
    rejects = tmp_path / "rejects.jsonl"
    r = run("batch", str(src), "-p", str(lone / "policy-2.0.0.yaml"), "--no-audit", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    problems = json.loads(rejects.read_text("utf-8"))["problems"]
    named = [p for p in problems if p["code"] == "record-version"]
    assert len(named) == 1 and named[0]["field"] == "exposures"
    assert "looks like a record of a policy without scopes" in named[0]["message"]
    assert "--policy-version" in named[0]["hint"] and "policy-engine convert" in named[0]["hint"]
    # not said of a debtor without its list whose only other fault is an element's field, nor of '{}' (hostile
    # review: decide and --stream never said it of those)
    debtor = json.loads(DEBTORS[0].read_text(encoding="utf-8"))
    del debtor["exposures"]
    debtor["events"] = [{"date": "2026-01-01"}]
    src = write_lines(tmp_path / "debtor.jsonl", [debtor, {}])
    r = run("batch", str(src), "-p", str(lone / "policy-2.0.0.yaml"), "--no-audit", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    lines = rejects.read_text("utf-8").splitlines()
    assert len(lines) == 2 and not any("record-version" in line for line in lines), lines


BAD_INPUT = [  # (what, how the input is made, extra options, exit code, text the error holds)
    ("empty file", lambda t: (t / "e.jsonl").write_bytes(b"") or t / "e.jsonl", [], 3, "empty-table"),
    ("a directory", lambda t: (t / "d.jsonl").mkdir() or t / "d.jsonl", [], 2,  # read as long tables
     "no debtors table (debtors.parquet or debtors.csv)"),
    ("a CSV", lambda t: ((t / "d.csv").write_text("client_id,industry\nD1,x\n"), t / "d.csv")[1], [], 2,
     "scoped-policy-in-table"),
    ("a missing file", lambda t: t / "none.jsonl", [], 2, "no such file"),
    ("periods beside debtors", lambda t: write_lines(t / "d.jsonl", [json.loads(THREE.read_text("utf-8"))]),
     ["--financials", str(THREE)], 2, "--financials"),
]


@pytest.mark.parametrize("what,make,extra,code,text", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_a_located_error_never_a_traceback(tmp_path: Path, what: str, make: Any, extra: list[str],
                                                        code: int, text: str) -> None:
    src = make(tmp_path)
    r = run("batch", str(src), "-p", str(MULTI), "--no-audit", *extra)
    assert r.exit_code == code, (what, r.stderr)
    assert text in r.stderr and "Traceback" not in r.stderr


def test_exposures_out_for_a_policy_without_scopes_is_a_usage_error(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "c.jsonl", [json.loads((REFERENCE / "samples" / "clients" /
                                                         "01-pass-healthy-manufacturer.json").read_text("utf-8"))])
    r = run("batch", str(src), "-p", str(REFERENCE / "policy-1.1.0.yaml"), "--no-audit",
            "--exposures-out", str(tmp_path / "e.csv"))
    assert r.exit_code == 2
    assert "has no exposures" in r.stderr




def test_a_file_decided_chunk_by_chunk_is_recorded_and_written_as_decide_gives_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine.portfolio import scoped_batch
    from policy_engine.record.audit import AuditStore
    from policy_engine.run import run_batch

    monkeypatch.setattr(scoped_batch, "CHUNK_DEBTORS", 4)  # 22 debtors: six chunks, each dropped once handed on
    debtors = sample_debtors()
    src = write_lines(tmp_path / "debtors.jsonl", [*debtors[:5], b"{bad", *debtors[5:]])
    db, records = tmp_path / "audit.db", tmp_path / "r.jsonl"
    first = run_batch(POLICY_2, src, audit_db=db, records=records, out=tmp_path / "d.parquet")
    assert first.run.streamed and (first.recorded, first.already_recorded) == (len(debtors), 0)
    assert first.run.decided == len(debtors) and [r["line"] for r in first.rejects] == [6]
    decider = Decider(load_policy(POLICY_2))
    want = [steady(decider.decide(d)) for d in debtors]
    assert [steady(json.loads(x)) for x in records.read_text("utf-8").splitlines()] == want
    assert pd.read_parquet(tmp_path / "d.parquet")["client_id"].tolist() == [d["client_id"] for d in debtors]
    with AuditStore(db) as store:
        rows = list(store.query())
        assert [r["client_id"] for r in rows] == [d["client_id"] for d in debtors]
        assert store.verify()[1] is None
        assert {store.replay(r)[0] for r in rows} == {"identical"}
        assert [steady(store.stored(r)[0]) for r in rows] == want
    again = run_batch(POLICY_2, src, audit_db=db)
    assert (again.recorded, again.already_recorded) == (0, len(debtors))


def test_the_tables_do_not_depend_on_how_the_file_is_chunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks fire different rules and hold different days: the column types stay those of one chunk
    (``decided_by`` categories are every rule that can decide, ``as_of`` the days of the run), so a
    Parquet file's schema does not depend on where the chunks were cut."""
    from policy_engine.portfolio import scoped_batch
    from policy_engine.portfolio.scoped_batch import decider_names, run_scoped_batch

    debtors = sample_debtors()
    for i, d in enumerate(debtors):  # the days of the run differ from chunk to chunk
        d["as_of"] = max(d["as_of"], ["2026-09-30", "2026-10-31", "2026-12-31"][i % 7 % 3])
    src = write_lines(tmp_path / "debtors.jsonl", debtors)
    policy = load_policy(POLICY_2)
    whole = run_scoped_batch(policy, src)
    monkeypatch.setattr(scoped_batch, "CHUNK_DEBTORS", 3)
    chunked = run_scoped_batch(policy, src)
    assert whole.decided == chunked.decided == len(debtors)
    pd.testing.assert_frame_equal(whole.decisions, chunked.decisions)
    pd.testing.assert_frame_equal(whole.exposures, chunked.exposures)
    for frame in (chunked.decisions, chunked.exposures):
        assert list(frame["decided_by"].cat.categories) == decider_names(policy)
    assert list(chunked.decisions["as_of"].cat.categories) == ["2026-09-30", "2026-10-31", "2026-12-31"]
    assert len(set(chunked.decisions["decided_by"])) >= 3  # several rules decide: the comparison is not of defaults


def test_a_file_changed_while_it_is_decided_is_refused_not_read_again_unchecked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch reads a line again by its number or offset (the split into versions, then the decision, then the
    store) and trusts it as read before (its depth is not measured again). A file rewritten in between held other
    text at those places, decided or stored unchecked (found by review); it is refused (file-changed, exit 2)."""
    import os

    from policy_engine.decide.ref import PolicyRef
    from policy_engine.diagnostics import UsageError
    from policy_engine.portfolio import scoped_batch

    path = tmp_path / "debtors.jsonl"
    path.write_text("".join(json.dumps(json.loads(f.read_text("utf-8"))) + "\n" for f in DEBTORS[:3]), "utf-8")
    split = scoped_batch._split

    def split_then_rewrite(*args: Any, **kwargs: Any) -> Any:
        found = split(*args, **kwargs)
        path.write_text(path.read_text("utf-8") + "\n", encoding="utf-8")  # another writer, between the reads
        return found

    monkeypatch.setattr(scoped_batch, "_split", split_then_rewrite)
    with pytest.raises(UsageError) as refused:
        scoped_batch.decide_debtor_file(PolicyRef("loss-client-management", registry=POLICIES), path)
    assert refused.value.diagnostics[0].code == "file-changed"
    monkeypatch.undo()
    batch = scoped_batch.run_scoped_batch(load_policy(POLICY_2), path)
    assert len(list(batch.inputs())) == 3  # unchanged: read again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(UsageError, match="changed while it was being decided"):
        list(batch.inputs())


def test_a_recorded_batch_stores_the_input_its_hash_was_taken_of_without_reading_the_line_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk handed to the store keeps each debtor's canonical JSON from the read that hashed it: the line was
    read a third time and written again for the store. The stored inputs replay identical."""
    from policy_engine.portfolio import scoped_batch

    path = tmp_path / "debtors.jsonl"
    path.write_text("".join(json.dumps(json.loads(f.read_text("utf-8"))) + "\n" for f in DEBTORS), "utf-8")
    monkeypatch.setattr(scoped_batch.ScopedBatch, "inputs", lambda self: pytest.fail("a line read again"))
    db = tmp_path / "audit.db"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), "batch", str(path), "-p",
                                  "loss-client-management@2.0.0", "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    monkeypatch.undo()
    replay = CliRunner().invoke(main, ["--audit-db", str(db), "audit", "replay", "--all", "--strict", "--format",
                                       "json"], catch_exceptions=False)
    assert replay.exit_code == 0 and len(replay.stdout.splitlines()) == len(DEBTORS)
    assert {json.loads(x)["status"] for x in replay.stdout.splitlines()} == {"identical"}


def test_a_line_too_long_to_decide_is_not_parsed_for_misspelt_fields(tmp_path: Path) -> None:
    """A 12 MB line took 19 s and 1.2 GB to be looked through for a misspelling before the run rejected it for its
    size: the look skips it (the reject says why), and still names a misspelling on the lines after it."""
    from policy_engine.decide.ref import PolicyRef
    from policy_engine.policy.loader import MAX_JSON_BYTES
    from policy_engine.portfolio.scoped_batch import misspelt_in_lines

    debtor = json.loads((REFERENCE / "samples" / "debtors" / "02-pass-three-facilities.json").read_text("utf-8"))
    debtor["exposures"][0]["days_pastdue"] = debtor["exposures"][0].pop("days_past_due")
    huge = {**debtor, "exposures": [{**e, "days_Past_due": 0} for e in debtor["exposures"]],
            "notes": "x" * MAX_JSON_BYTES}
    path = tmp_path / "debtors.jsonl"
    path.write_bytes(orjson.dumps(huge) + b"\n" + orjson.dumps(debtor) + b"\n")
    found = misspelt_in_lines(PolicyRef("loss-client-management", None, POLICIES), [path], None)
    assert [(given, meant) for _, given, meant in found] == [("exposures[*].days_pastdue",
                                                              "exposures[*].days_past_due")]


def test_the_collector_runs_less_often_while_debtors_are_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of parsed debtors is millions of objects without cycles: the collector's first threshold is
    raised while a chunk is read and decided (a third of a batch went to traversing them), and comes back
    after, also when the run fails."""
    import gc

    from policy_engine.portfolio import scoped_batch

    lines = write_lines(tmp_path / "d.jsonl", [json.loads(p.read_text(encoding="utf-8")) for p in DEBTORS[:3]])
    policy = load_policy(POLICY_2)
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    evaluate = scoped_batch.evaluate_debtors
    monkeypatch.setattr(scoped_batch, "evaluate_debtors", lambda *a: seen.append(gc.get_threshold()) or evaluate(*a))
    assert scoped_batch.run_scoped_batch(policy, lines).decided == 3
    assert seen == [(max(scoped_batch.FEWER_COLLECTIONS, before[0]), *before[1:])] and gc.get_threshold() == before

    def fail(*a: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(scoped_batch, "evaluate_debtors", fail)
    with pytest.raises(KeyboardInterrupt):
        scoped_batch.run_scoped_batch(policy, lines)
    assert gc.get_threshold() == before


def test_a_reject_keeps_the_hint_decide_gives(tmp_path: Path) -> None:
    """A calling system reading the rejects got decide's reasons without their hints (hostile review)."""
    record = json.loads(DEBTORS[0].read_text(encoding="utf-8"))
    record["exposures"][0]["balance"] = "abc"
    lines = write_lines(tmp_path / "d.jsonl", [record])
    r = run("--no-audit", "batch", "-p", str(POLICY_2), str(lines), "--out", str(tmp_path / "o.jsonl"),
            "--rejects", str(tmp_path / "r.jsonl"))
    assert r.exit_code == 0, r.output
    [reject] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    decided = run("--no-audit", "decide", "-p", str(POLICY_2), "-c", str(tmp_path / "d.jsonl"), "--format", "json")
    errors = json.loads(decided.stderr or decided.stdout)["errors"]
    assert [(p["field"], p["code"], p.get("hint")) for p in reject["problems"]] == \
        [(e["path"], e["code"], e.get("hint")) for e in errors]
    assert reject["problems"][0]["hint"] == "send numbers without quotes"


def test_every_json_lines_output_escapes_the_line_separators_as_the_stream_does(tmp_path: Path) -> None:
    """An id holding U+2028 (or U+0085, NEL) was written raw: a reader splitting lines as Python's splitlines does
    read one decision as two lines in --out, --records, --exposures-out and --rejects (hostile reviews); the stream
    escaped it."""
    good = json.loads(DEBTORS[0].read_text(encoding="utf-8"))
    good["client_id"] = "D\u2028one\u2029"
    bad = {**good, "client_id": "D\u2028bad\x85", "exposures": "none"}  # an id with NEL is refused: its reject has it
    lines = write_lines(tmp_path / "d.jsonl", [good, bad])
    outs = {name: tmp_path / f"{name}.jsonl" for name in ("out", "records", "exposures-out", "rejects")}
    r = run("--no-audit", "batch", "-p", str(POLICY_2), str(lines), *(x for k, p in outs.items() for x in (f"--{k}",
                                                                                                       str(p))))
    assert r.exit_code == 0, r.output
    for name, path in outs.items():
        text = path.read_text(encoding="utf-8")
        assert "\u2028" not in text and "\u2029" not in text and "\x85" not in text, name
        assert len(text.splitlines()) == text.count("\n") >= 1, name
        assert all("D\u2028" in json.dumps(json.loads(x), ensure_ascii=False) for x in text.splitlines()
                   if "client_id" in x), name


@pytest.mark.parametrize(("name", "hint"), [("debtor.json", "decide -c"), ("debtors.txt", ".jsonl")])
def test_a_portfolio_of_a_kind_batch_does_not_read_is_named_as_the_input(tmp_path: Path, name: str,
                                                                         hint: str) -> None:
    """Under a version with scopes a .json or .txt file read 'a .json row cannot hold a debtor', naming the policy
    file as the place of the error; under 1.1.0 the same file was unknown-format at the input (hostile review)."""
    source = tmp_path / name
    source.write_text(DEBTORS[0].read_text(encoding="utf-8"), encoding="utf-8")
    for policy in (str(POLICY_2), "loss-client-management@1.1.0"):
        r = run("--no-audit", "batch", "-p", policy, str(source), "--out", str(tmp_path / "o.jsonl"),
                "--format", "json")
        [error] = json.loads(r.stderr)["errors"]
        assert r.exit_code == 2 and error["code"] == "unknown-format" and error["file"] == str(source), r.output
        assert hint in error["hint"]


@pytest.mark.parametrize("policy", ["loss-client-management@1.1.0", "loss-client-management@2.0.0"])
def test_a_decision_record_in_a_batch_is_rejected_as_decide_refuses_it(tmp_path: Path, policy: str) -> None:
    """A 1.x batch named a decision line 'a client record 2.x' where decide names it a decision record."""
    decision = json.loads((DATA / "record_kind" / "decision-of-debtor-10.json").read_text(encoding="utf-8"))
    lines = write_lines(tmp_path / "d.jsonl", [decision])
    r = run("--no-audit", "batch", "-p", policy, str(lines), "--rejects", str(tmp_path / "r.jsonl"))
    assert r.exit_code == 0, r.output
    [reject] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    [problem] = reject["problems"]
    assert problem["code"] == "wrong-record-kind" and "this is a decision record" in problem["message"]
