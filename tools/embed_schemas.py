"""Write into each shipped schema that refers to another by file name the current text of that one (under its
``$defs``, with its ``$id``), so the schema is whole on its own: `policy-engine schema NAME` prints one document a
validator takes without the others. Run after changing a schema another embeds; a test fails while one is stale.

    .venv/bin/python tools/embed_schemas.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policy_engine.policy.schemas import EMBEDS, schema_path, with_embedded


def main() -> None:
    for name in EMBEDS:
        path = schema_path(name)
        schema = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(with_embedded(name, schema), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
