"""``--records`` is written beside its path and renamed over it once whole: an interrupted rerun keeps the last file."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine.run import written_whole


def test_a_file_stopped_half_way_leaves_the_earlier_one_whole_and_no_part_behind(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    target.write_text("earlier run\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), written_whole(target) as fh:
        fh.write("half of a new run\n")
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "earlier run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]


def test_a_file_written_whole_replaces_the_earlier_one(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    target.write_text("earlier run\n", encoding="utf-8")
    with written_whole(target) as fh:
        fh.write("new run\n")
        assert target.read_text(encoding="utf-8") == "earlier run\n"  # not touched until whole
    assert target.read_text(encoding="utf-8") == "new run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]
