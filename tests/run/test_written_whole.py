"""Outputs written whole or not at all (``batch --records``, ``audit export``): an interrupted rerun keeps the last
file, its permissions and the link that names it, and leaves no partial file of client data behind."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from policy_engine.whole_files import text_written_whole

from ..conftest import REFERENCE, ROOT


def test_a_file_stopped_half_way_leaves_the_earlier_one_whole_and_no_part_behind(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    target.write_text("earlier run\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), text_written_whole(target) as fh:
        fh.write("half of a new run\n")
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "earlier run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]


def test_a_file_written_whole_replaces_the_earlier_one_keeping_its_mode_and_its_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "records.jsonl"
    real.write_text("earlier run\n", encoding="utf-8")
    real.chmod(0o600)
    link = tmp_path / "records.jsonl"
    link.symlink_to(real)
    with text_written_whole(link) as fh:
        fh.write("new run\n")
        assert real.read_text(encoding="utf-8") == "earlier run\n"  # not touched until whole
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new run\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["records.jsonl"]


def test_batch_records_stopped_by_sigterm_keeps_the_last_file_and_leaves_no_partial(tmp_path: Path) -> None:
    """A rerun stopped by a CI timeout (SIGTERM) truncated a complete --records file (a CI-integration review)."""
    portfolio = tmp_path / "portfolio.jsonl"  # debtors: their records are written as they are decided, for seconds
    debtor = json.loads((REFERENCE / "samples" / "debtors" / "02-pass-three-facilities.json").read_text("utf-8"))
    portfolio.write_text("".join(json.dumps({**debtor, "client_id": f"D{k}"}) + "\n" for k in range(3000)),
                         encoding="utf-8")
    records = tmp_path / "records.jsonl"
    records.write_text("the last run\n", encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.Popen([sys.executable, "cli.py", "batch", str(portfolio), "-p", "loss-client-management",
                          "--no-audit", "--records", str(records), "--format", "json"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not any(f.name.endswith(".partial") for f in tmp_path.iterdir()):
        assert p.poll() is None, p.communicate()[1]  # until the records are being written
    p.send_signal(signal.SIGTERM)
    _, said = p.communicate(timeout=120)
    assert p.returncode == 143, said
    assert records.read_text(encoding="utf-8") == "the last run\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["portfolio.jsonl", "records.jsonl"]


def test_an_ignored_sighup_stays_ignored_and_the_partial_is_the_owners_while_written(tmp_path: Path) -> None:
    """Under nohup (SIGHUP ignored) the writer set its own handler, so closing the session killed the batch (exit
    129); and a 600 file's new content was readable by others until the rename (a commit review)."""
    target = tmp_path / "records.jsonl"
    target.write_text("earlier\n", encoding="utf-8")
    target.chmod(0o640)
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with text_written_whole(target) as fh:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # left to its default: cleans up
            [partial] = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
            assert stat.S_IMODE(partial.stat().st_mode) == 0o600
            fh.write("new\n")
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text(encoding="utf-8") == "new\n"
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_partial_file_is_new_and_its_own_and_a_new_file_gets_the_umasks_mode(tmp_path: Path) -> None:
    """The partial file's name was NAME.PID.partial, opened without O_EXCL: a leftover or a planted link of that name
    was written through (and a leftover kept its wider mode); and the new file's mode came from setting the umask to
    0 for a moment, a race with any thread creating a file then (a commit review)."""
    from policy_engine.whole_files import _umask, replaced_whole

    mask = os.umask(0o022)
    try:
        assert _umask() == 0o022
        target = tmp_path / "new.jsonl"
        with replaced_whole(target) as one, replaced_whole(tmp_path / "other.jsonl") as two:
            assert one != two and one.parent == tmp_path and one.name.startswith(".new.jsonl.")
            assert stat.S_IMODE(one.stat().st_mode) == 0o600
            one.write_text("x\n", encoding="utf-8")
            two.write_text("y\n", encoding="utf-8")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_text(encoding="utf-8") == "x\n"
    finally:
        os.umask(mask)


def test_a_partial_file_that_cannot_be_made_names_the_output_and_restores_the_handlers(tmp_path: Path) -> None:
    """mkstemp ran after the handlers were set and outside the clean-up: a name too long for the partial file
    named that file, not the output, and left SIGTERM on the writer's handler (a commit review)."""
    from policy_engine.whole_files import replaced_whole

    target = tmp_path / ("r" * 240)  # a name the file system takes, but not with the partial's 18 more characters
    with pytest.raises(OSError) as e, replaced_whole(target):
        pass
    assert e.value.filename == str(target)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert list(tmp_path.iterdir()) == []
