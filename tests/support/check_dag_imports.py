"""`make lint`: DAG files import only `airflow.sdk`, the local `assets` module and the standard
library at top level.

The scheduler parses every DAG file every few seconds, so anything heavy (vigil, training, pandas,
torch, feast, duckdb, ...) belongs inside the task that uses it. import-linter sees every import in a
module and cannot tell top-level imports from those inside a function, hence this small AST check.
Top level means every statement that runs when the file is imported: module body, `if`/`try`/`with`
blocks and class bodies, but not function bodies nor `if TYPE_CHECKING:` blocks.

Usage: python tests/support/check_dag_imports.py [DAG_FOLDER]   (default: dags/ of this checkout)
Exit 0 when every file keeps the rule, 1 with one line per violation otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ALLOWED_PACKAGES = ("airflow.sdk",)
LOCAL_MODULES = ("assets",)
DYNAMIC_IMPORTERS = ("__import__", "import_module")


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if module == "__future__" or top in LOCAL_MODULES or top in sys.stdlib_module_names:
        return True
    return any(module == p or module.startswith(p + ".") for p in ALLOWED_PACKAGES)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node executed at import time, skipping function bodies and TYPE_CHECKING blocks."""
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            # decorators and default values run at import time; the body does not
            for expr in [*stmt.decorator_list, *stmt.args.defaults, *stmt.args.kw_defaults]:
                if expr is not None:
                    yield from ast.walk(expr)
            continue
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _top_level_nodes(stmt.orelse)
            continue
        yield stmt
        nested = [
            getattr(stmt, field, [])
            for field in ("body", "orelse", "finalbody", "handlers")
            if isinstance(getattr(stmt, field, None), list)
        ]
        for block in nested:
            for child in block:
                if isinstance(child, ast.ExceptHandler):
                    yield from _top_level_nodes(child.body)
                else:
                    yield from _top_level_nodes([child])
        for field, value in ast.iter_fields(stmt):
            if field not in ("body", "orelse", "finalbody", "handlers"):
                for node in value if isinstance(value, list) else [value]:
                    if isinstance(node, ast.AST):
                        yield from (n for n in ast.walk(node) if not isinstance(n, ast.Lambda))


def violations(path: Path) -> list[str]:
    """One message per top-level import in ``path`` that the rule does not allow."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in _top_level_nodes(tree.body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in DYNAMIC_IMPORTERS:
                continue
            names = ["<dynamic import>"]
        else:
            continue
        for name in names:
            if not _allowed(name):
                found.append(
                    f"{path}:{node.lineno}: top-level import of {name!r}; DAG files import only "
                    f"{', '.join(ALLOWED_PACKAGES)}, {', '.join(LOCAL_MODULES)} and the standard "
                    "library at top level: move it inside the task that uses it."
                )
    return sorted(set(found), key=lambda m: (m.split(":")[0], int(m.split(":")[1])))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "dags"
    files = sorted(folder.glob("*.py"))
    if not files:
        print(f"check_dag_imports: no DAG files in {folder}", file=sys.stderr)
        return 1
    problems = [message for f in files for message in violations(f)]
    for message in problems:
        print(message)
    print(f"check_dag_imports: {len(files)} DAG files, {len(problems)} top-level import problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
