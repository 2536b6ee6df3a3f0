"""Every command the docs give a newcomer names something that exists (issue 17: no command in the docs that
nothing runs): each `checkpoint-gateway` / `checkpoint-sim` command in docs/*.md and README.md, in a code block
or an inline span, names a real subcommand whose --help lists every option the doc uses; each `make` command
names a real target and variables the Makefile reads; the complete commands in docs/operations.md's blocks parse
with the real argument parser. (What the commands do is run by the tests of each one: backup/restore in
tests/ops/test_backup.py, provision in tests/security/test_provision.py, deploy-check in tests/ops/test_deploy.py.)
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from gateway import cli as gateway_cli
from sim import cli as sim_cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
PROGRAMS: dict[str, Callable[[Sequence[str]], object]] = {
    "checkpoint-gateway": gateway_cli.main,
    "checkpoint-sim": sim_cli.main,
}
PREFIX = re.compile(r"^(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:\.venv/bin/)?")
SPAN = re.compile(r"`([^`\n]+)`")


def commands(text: str) -> Iterator[tuple[str, bool]]:
    """(command, complete) for each command line in fenced blocks (complete) and inline spans (may be partial)."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            for part in line.split("#", 1)[0].split("&&"):
                yield part.strip(), True
        else:
            for span in SPAN.findall(line):
                yield span.strip(), False


def split(command: str) -> list[str]:
    command = PREFIX.sub("", command).replace("$(date +%F)", "2026-12-01")
    command = re.sub(r"\[([^\]]*)\]", r"\1", command)  # [--json]: an optional part, still an option to check
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def documented() -> list[tuple[str, str, list[str], bool]]:
    found = []
    for doc in DOCS:
        for command, complete in commands(doc.read_text()):
            words = split(command)
            if words and (words[0] in PROGRAMS or words[0] == "make"):
                found.append((doc.name, command, words, complete))
    return found


DOCUMENTED = documented()


def help_text(program: str, words: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            PROGRAMS[program]([*words, "--help"])
        except SystemExit as e:
            code = e.code
    return (code if isinstance(code, int) else 1), out.getvalue()


def test_the_docs_give_commands_to_check() -> None:
    programs = {words[0] for _, _, words, _ in DOCUMENTED}
    assert programs == {"checkpoint-gateway", "checkpoint-sim", "make"}, programs
    assert sum(1 for d in DOCUMENTED if d[0] == "operations.md") >= 5


@pytest.mark.parametrize(("doc", "command", "words"), [d[:3] for d in DOCUMENTED if d[2][0] in PROGRAMS])
def test_each_cli_command_in_the_docs_exists_with_its_options(doc: str, command: str, words: list[str]) -> None:
    program, rest = words[0], words[1:]
    path = [w for w in rest[: next((i for i, w in enumerate(rest) if w.startswith("-")), len(rest))]][:2]
    code, text = help_text(program, path)
    if code != 0:  # a placeholder after the subcommand (users reset-password NAME): the subcommand alone
        code, text = help_text(program, path[:1])
    assert code == 0, f"{doc}: `{command}`: {program} {' '.join(path)} --help failed:\n{text}"
    for option in (w.split("=", 1)[0] for w in rest if w.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
            f"{doc}: `{command}` uses {option}, which `{program} {' '.join(path)} --help` does not list"
        )


MAKEFILE = (REPO / "Makefile").read_text()


@pytest.mark.parametrize(("doc", "command", "words"), [d[:3] for d in DOCUMENTED if d[2][0] == "make"])
def test_each_make_command_in_the_docs_names_a_target_and_variables_it_reads(
    doc: str, command: str, words: list[str]
) -> None:
    for word in words[1:]:
        if "=" in word:
            name = word.split("=", 1)[0]
            assert f"$({name})" in MAKEFILE or f"{name} ?=" in MAKEFILE, f"{doc}: `{command}`: Makefile ignores {name}"
        else:
            assert re.search(rf"^{re.escape(word)}:", MAKEFILE, re.M), f"{doc}: `{command}`: no make target {word}"


@pytest.mark.parametrize(
    ("doc", "command", "words"),
    [d[:3] for d in DOCUMENTED if d[0] == "operations.md" and d[3] and d[2][0] == "checkpoint-gateway"],
)
def test_the_operations_commands_parse_as_written(doc: str, command: str, words: list[str]) -> None:
    parser = gateway_cli.build_parser(words[1:])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parser.parse_args(words[1:])
        except SystemExit as e:
            pytest.fail(f"{doc}: `{command}` does not parse (exit {e.code}): {err.getvalue()}")
