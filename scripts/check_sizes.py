"""The firmware's size guide, checked: modules under about 200 lines, functions under about 30.

    python scripts/check_sizes.py [ROOT]     (ROOT: the firmware directory, default firmware/)

Fails (exit status 1, one line per offender) when a module in firmware/ has more than MODULE_LINES lines or a
function or method anywhere in it more than FUNCTION_LINES. Lines are counted without blank lines: a module's
every non-blank line (docstrings and comments included), a function's non-blank lines from its `def` to its
last line (its docstring included). `make lint` runs it; ruff's statement and complexity rules (pyproject.toml)
cover the whole tree.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODULE_LINES = 200
FUNCTION_LINES = 30
FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"


def non_blank(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip())


def offenders(path: Path) -> list[str]:
    """What in one module breaks the guide, as `path:line: what` lines."""
    text = path.read_text()
    lines = text.splitlines()
    out = []
    n = non_blank(lines)
    if n > MODULE_LINES:
        out.append(f"{path}:1: module of {n} non-blank lines (limit {MODULE_LINES})")
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            k = non_blank(lines[start - 1 : node.end_lineno])
            if k > FUNCTION_LINES:
                out.append(f"{path}:{node.lineno}: {node.name}() of {k} non-blank lines (limit {FUNCTION_LINES})")
    return out


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else FIRMWARE
    found = [line for path in sorted(root.glob("*.py")) for line in offenders(path)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
