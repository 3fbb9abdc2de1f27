"""Progress on a terminal: a line that moves for generate, audit verify and audit replay; nothing when piped."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.progress import Progress

from ..conftest import POLICIES, ROOT, SAMPLES


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_counts_up_to_the_total_and_ends_with_a_newline() -> None:
    out = _Tty()
    with Progress("replaying", 10, unit="records", stream=out) as shown:
        for _ in range(10):
            shown.update()
    text = out.getvalue()
    assert text.startswith("\rreplaying: 0/10 records   0.0%") and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("replaying: 10/10 records 100.0%")


def test_silent_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress("replaying", 10, stream=out) as shown:
        shown.update(10)
    assert out.getvalue() == ""


def test_an_unknown_total_shows_the_count_and_clear_wipes_the_line() -> None:
    out = _Tty()
    shown = Progress("reading", stream=out)
    shown.update(1234)
    drawn = out.getvalue().split("\r")[-1]
    assert drawn.startswith("reading: 1,234  ") and "%" not in drawn
    shown.clear()  # before other output: the terminal line is blanked and the cursor back at its start
    assert out.getvalue().endswith("\r" + " " * len(drawn) + "\r")
    shown.close()
    assert out.getvalue().endswith("\n")


def _on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal (stdout piped); what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, seen.decode("utf-8", "replace")


def test_generate_verify_and_replay_move_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    env = {**os.environ, "POLICY_ENGINE_AUDIT_DB": str(tmp_path / "audit.db"), "POLICY_ENGINE_POLICIES": str(POLICIES)}
    code, seen = _on_a_terminal(["generate", "--n", "2500", "--out", str(tmp_path / "p.csv")], env, tmp_path)
    assert code == 0 and "\rgenerating: 2,500/2,500 clients 100.0%" in seen
    lines = b"".join(Path(f).read_bytes().replace(b"\n", b"") + b"\n" for f in SAMPLES[:6])
    decided = subprocess.run([sys.executable, str(ROOT / "cli.py"), "decide", "-p", "loss-client-management",
                              "--stream"], input=lines, capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert decided.returncode == 0 and decided.stdout.count(b"\n") == 6
    code, seen = _on_a_terminal(["audit", "verify", "--format", "text"], env, tmp_path)
    assert code == 0 and "\rverifying: 6/6 records 100.0%" in seen
    code, seen = _on_a_terminal(["audit", "replay", "--all", "--format", "text"], env, tmp_path)
    assert code == 0 and "\rreplaying: 6/6 records 100.0%" in seen and "6 identical" in seen
    code, seen = _on_a_terminal(["audit", "replay", "--policy", "loss-client-management", "--format", "text"], env,
                                tmp_path)
    assert code == 0 and "\rreplaying: 6 records" in seen  # filtered: no total known ahead, the count moves
    piped = subprocess.run([sys.executable, str(ROOT / "cli.py"), "audit", "replay", "--all"], capture_output=True,
                           env=env, cwd=tmp_path, timeout=120, text=True)
    assert piped.returncode == 0 and "\r" not in piped.stderr and "replaying" not in piped.stderr


def test_generate_in_a_pipe_says_only_what_it_wrote(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["generate", "--n", "1200", "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 0 and r.stderr == f"wrote 1200 clients to {tmp_path / 'p.jsonl'}\n"
    assert len((tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()) == 1200
