"""The size guide holds in `make lint` (issue 9 item 7): scripts/check_sizes.py passes on the firmware as it is,
and fails, naming the offender, on a module over MODULE_LINES non-blank lines or a function over FUNCTION_LINES.
Without the failing cases a check that never fails would look the same as one that holds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check_sizes.py"
sys.path.insert(0, str(CHECK.parent))

import check_sizes  # noqa: E402


def run(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(CHECK)] + ([str(root)] if root is not None else [])
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


def function(name: str, body_lines: int) -> str:
    return f"def {name}():\n" + "".join(f"    x{i} = {i}\n" for i in range(body_lines)) + "    return 0\n"


def test_the_firmware_keeps_the_guide() -> None:
    done = run()
    assert (done.returncode, done.stdout) == (0, "")


def test_a_module_over_the_guide_fails_lint(tmp_path: Path) -> None:
    lines = check_sizes.MODULE_LINES + 1
    (tmp_path / "big.py").write_text("".join(f"X{i} = {i}\n\n" for i in range(lines)))  # blank lines not counted
    (tmp_path / "small.py").write_text("".join(f"X{i} = {i}\n" for i in range(check_sizes.MODULE_LINES)))
    done = run(tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'big.py'}:1: module of {lines} non-blank lines (limit {check_sizes.MODULE_LINES})"
    ]


def test_a_function_over_the_guide_fails_lint(tmp_path: Path) -> None:
    limit = check_sizes.FUNCTION_LINES
    source = (
        function("fits", limit - 2) + "\n\nclass Node:\n" + textwrap.indent(function("too_long", limit - 1), "    ")
    )
    (tmp_path / "node.py").write_text(source)
    done = run(tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'node.py'}:{limit + 4}: too_long() of {limit + 1} non-blank lines (limit {limit})"
    ]


def test_make_lint_runs_the_check() -> None:
    lint = (REPO / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/check_sizes.py" in lint
