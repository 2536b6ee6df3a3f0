"""The facts and decisions the code cites live in the repository, and every cited doc exists.

The domain facts and the design brief once lived outside the repository (in a shared folder that a fresh clone
does not have); they are docs/domain.md and docs/design.md now. These tests fail if a file names the old
outside documents again, if code or docs cite a `docs/<name>.md` that does not exist, or if a citation
`docs/domain.md §N.N` or `docs/design.md §N` (`section N` in the ASCII-only firmware) names a section those
pages do not have.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Generated or installed, never committed (.gitignore): not the repository's text.
SKIP_DIRS = {".git", ".venv", "build", "var", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".json", ".cfg", ".conf", ".sh", ".sql", ".yml", ".yaml", ".ini"}
OUTSIDE_DOCS = ("DOMAIN" + ".md", "DESIGN" + ".md")  # spelt in two parts so this file does not name them
DOC_REF = re.compile(r"\bdocs/([\w-]+)\.md")
SECTION_REF = re.compile(r"\bdocs/(domain|design)\.md((?:(?:, | |-)?(?:§|section )\d+(?:\.\d+)?)+)")


def repo_files() -> list[Path]:
    out = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile"):
            out.append(path)
    return out


def test_the_repository_scan_sees_code_and_docs() -> None:
    names = {p.relative_to(REPO).as_posix() for p in repo_files()}
    assert {"README.md", "docs/domain.md", "docs/design.md", "firmware/contract.py", "Makefile"} <= names
    assert not any(n.startswith((".venv/", ".git/")) for n in names)


def test_no_file_cites_the_documents_outside_the_repository() -> None:
    found = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in repo_files()
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if any(name in line for name in OUTSIDE_DOCS)
    ]
    assert found == [], "cite docs/domain.md, docs/design.md or docs/protocol.md instead:\n" + "\n".join(found)


def test_every_cited_doc_exists() -> None:
    missing = [
        f"{p.relative_to(REPO)}: docs/{name}.md"
        for p in repo_files()
        for name in DOC_REF.findall(p.read_text(encoding="utf-8", errors="replace"))
        if not (REPO / "docs" / f"{name}.md").is_file()
    ]
    assert missing == []


def test_every_cited_section_of_domain_and_design_exists() -> None:
    sections = {doc: _sections(REPO / "docs" / f"{doc}.md") for doc in ("domain", "design")}
    wrong = []
    for p in repo_files():
        text = p.read_text(encoding="utf-8", errors="replace")
        for doc, refs in SECTION_REF.findall(text):
            for number in re.findall(r"(?:§|section )(\d+(?:\.\d+)?)", refs):
                if number not in sections[doc]:
                    wrong.append(f"{p.relative_to(REPO)}: docs/{doc}.md §{number}")
    assert wrong == [], f"sections that exist: {sections}"


def _sections(page: Path) -> set[str]:
    """The numbers of a page's numbered headings: `## 2. The sensor` -> "2", `### 2.5 Settling` -> "2.5"."""
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", page.read_text(encoding="utf-8"), flags=re.MULTILINE))
