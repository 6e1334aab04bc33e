"""Lint: test modules outside packages must have unique basenames.

pytest imports a test file that sits in a folder without ``__init__.py`` under its bare basename
(``prepend`` import mode), so two ``test_features.py`` in different folders collide: the second is
an "import file mismatch" collection error, and a sibling's ``from test_features import ...`` picks
up the wrong module. CI failed on exactly that once (stop 29). Run by ``make lint``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "tests"


def clashes(root: Path = ROOT) -> dict[str, list[Path]]:
    """Basenames of top-level-imported modules (folder has no __init__.py) found more than once."""
    seen: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        if path.name in {"__init__.py", "conftest.py"} or (path.parent / "__init__.py").exists():
            continue
        seen[path.name].append(path)
    return {name: paths for name, paths in seen.items() if len(paths) > 1}


def main() -> int:
    found = clashes()
    for name, paths in found.items():
        where = ", ".join(str(p.relative_to(ROOT.parent)) for p in paths)
        print(f"test module name {name} is used more than once ({where}): rename one of them "
              "so pytest can import both", file=sys.stderr)
    if not found:
        print("test module names: all unique")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
