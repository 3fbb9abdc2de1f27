"""Write the generated part of docs/language.md from the engine's tables (functions, operators,
message formats, null rules, built-in names); tests/docs/test_language_page.py fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policy_engine.review.reference import PAGE, update_page  # the checkout's engine, not an installed one

if __name__ == "__main__":
    page = ROOT / PAGE
    page.write_text(update_page(page.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {page}")
