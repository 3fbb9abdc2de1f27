"""The README's examples are executed: every command of its `sh` code blocks, its policy-test YAML and its
Python snippet run against the shipped policies and samples in a scratch copy, so an example cannot rot.

The blocks are parsed, not copied here: a command added to the README is run by this test as it is. A
command that cannot run in a test says why in SKIP; one that promises a non-zero exit says so in EXIT.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..conftest import ROOT
from .conftest import scratch_env as _env

README = ROOT / "README.md"

# Commands that cannot run inside the test suite, each with the reason; a rule matching no command fails the test.
SKIP = {
    r"^make (demo|test)\b": "creates .venv with pip and runs the demo or the whole suite, which holds this test",
    r"benchmarks/bench_\w+\.py": "measures for minutes (1,000,000 clients); benchmarks measure, never assert",
    r"--engine dask": "starts a Dask cluster on a partitioned dataset: tests/batch/test_dask.py runs that path",
}
# Commands whose documented outcome is a non-zero exit, with the reason.
EXIT: dict[str, tuple[int, str]] = {}
# Options whose value is a file the command promises to write.
WRITES = ("--out", "--html", "--records", ">")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # of the first line of code in README.md
    text: str


@dataclass(frozen=True)
class Command:
    line: int
    text: str


def code_blocks(text: str) -> list[Block]:
    """Fenced code blocks with their language and first line."""
    out, lang, start, body = [], None, 0, []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip(), n + 1, []
            else:
                out.append(Block(lang, start, "\n".join(body) + "\n"))
                lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md: the code block opened at line {start - 1} is never closed"
    return out


def _strip_comment(line: str) -> str:
    """The line without its shell comment (a '#' at the start or after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def commands(block: Block) -> list[Command]:
    """A shell block's commands: continuation lines joined, comments and [optional] synopsis parts left out."""
    out: list[Command] = []
    pending, first = "", 0
    for n, raw in enumerate(block.text.splitlines(), block.line):
        line = _strip_comment(raw)
        if not pending:
            first = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = re.sub(r"\s\[-[^\]]*\]", "", pending + line).strip()  # `[--as-of D]`: a synopsis's optional part
        pending = ""
        if text:
            out.append(Command(first, " ".join(text.split())))
    return out


def _skip_reason(cmd: Command) -> str | None:
    return next((why for pattern, why in SKIP.items() if re.search(pattern, cmd.text)), None)


def _written(cmd: Command) -> list[str]:
    lexer = shlex.shlex(cmd.text, posix=True, punctuation_chars=True)
    words = list(lexer)  # quotes respected: `--fail-if "x > 1"` writes nothing
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in WRITES]


def test_readme_blocks_parse_into_commands() -> None:
    blocks = code_blocks(README.read_text(encoding="utf-8"))
    cmds = [c for b in blocks if b.lang == "sh" for c in commands(b)]
    assert len(cmds) >= 20
    assert all("\\" not in c.text and not c.text.startswith("#") for c in cmds)
    for pattern in SKIP:
        assert any(re.search(pattern, c.text) for c in cmds), f"SKIP rule {pattern!r} matches no README command"
    for pattern in EXIT:
        assert any(re.search(pattern, c.text) for c in cmds), f"EXIT rule {pattern!r} matches no README command"


def test_every_readme_command_runs_as_documented(scratch: Path) -> None:
    """One run in README order (later commands read what earlier ones wrote), every command checked."""
    text = README.read_text(encoding="utf-8")
    assignments: list[str] = []
    failures: list[str] = []
    ran = 0
    for block in code_blocks(text):
        if block.lang != "sh":
            continue
        for cmd in commands(block):
            if re.fullmatch(r"[A-Z_]+=\S+", cmd.text):  # PE=..., C=...: kept for the commands after it
                assignments.append(cmd.text)
                continue
            if _skip_reason(cmd):
                continue
            want = next((code for pattern, (code, _) in EXIT.items() if re.search(pattern, cmd.text)), 0)
            for out in _written(cmd):
                (scratch / out).unlink(missing_ok=True)
            script = "set -o pipefail\n" + "".join(f"{a}\n" for a in assignments) + cmd.text + "\n"
            r = subprocess.run(["bash", "-c", script], cwd=scratch, env=_env(), capture_output=True, text=True,
                               timeout=300)
            ran += 1
            where = f"README.md:{cmd.line}: {cmd.text}"
            if r.returncode != want:
                failures.append(f"{where}\n    exit {r.returncode}, documented {want}\n    {r.stderr.strip()[-800:]}")
                continue
            if "Traceback" in r.stderr:
                failures.append(f"{where}\n    printed a traceback")
            for out in _written(cmd):
                path = scratch / out
                written = any(path.iterdir()) if path.is_dir() else path.is_file() and path.stat().st_size > 0
                if not written:
                    failures.append(f"{where}\n    promised {out}, which is missing or empty")
    assert failures == [], "\n".join(failures)
    assert ran >= 20


def test_readme_policy_test_example_is_a_passing_test_file(scratch: Path) -> None:
    """The YAML example of a policy test file is one: written next to the reference policy's tests, it passes."""
    examples = [b for b in code_blocks(README.read_text(encoding="utf-8"))
                if b.lang == "yaml" and b.text.startswith("policy:")]
    assert examples, "README.md has no policy-test example"
    tests_dir = scratch / "policies" / "loss-client-management" / "tests"
    for i, block in enumerate(examples):
        (tests_dir / f"readme-example-{i}.yaml").write_text(block.text, encoding="utf-8")
        r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "test", str(tests_dir / f"readme-example-{i}.yaml"),
                            "--format", "json"], cwd=scratch, env=_env(), capture_output=True, text=True)
        (tests_dir / f"readme-example-{i}.yaml").unlink()
        assert r.returncode == 0, f"README.md:{block.line}: {r.stdout[-800:]} {r.stderr[-800:]}"


def test_readme_python_example_runs(scratch: Path) -> None:
    blocks = [b for b in code_blocks(README.read_text(encoding="utf-8")) if b.lang == "python"]
    assert blocks, "README.md has no Python example"
    for block in blocks:
        script = block.text + "\nassert record['classification']['grade'] and text\n"
        r = subprocess.run([sys.executable, "-c", script], cwd=scratch, env=_env(), capture_output=True, text=True)
        assert r.returncode == 0, f"README.md:{block.line}: {r.stderr[-1500:]}"
