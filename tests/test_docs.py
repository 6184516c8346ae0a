"""The documentation in docs/ is complete where it is cited: every `physics.md §N`,
`bundle-format §N` and `outputs.md §N` in the code, configs, tests and README names an
existing heading, and every link between the docs points to an existing file and anchor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
DOC_NAMES = {"physics": "physics.md", "bundle-format": "bundle-format.md", "outputs": "outputs.md"}
SOURCES = [
    ROOT / "README.md",
    *sorted((ROOT / "dpp").rglob("*.py")),
    *sorted((ROOT / "conf").rglob("*.yaml")),
    *sorted((ROOT / "tests").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted(DOCS.glob("*.md")),
]
SECTION = r"(\d+(?:\.\d+)?)"
# a document name, then one or more section numbers: "physics.md §5.6–5.8, §7 and §13.2"
CITATION = re.compile(
    r"(physics|bundle-format|outputs)(?:\.md)?\)?\s*§\s*"
    + SECTION
    + r"((?:\s*(?:,|and|–|-)\s*§?\s*\d+(?:\.\d+)?)*)"
)
BARE = re.compile(r"(?<![\w.)\]])(?<!md )(?<!format )§\s*" + SECTION)
DOCS_PAGES = r"(?:physics|bundle-format|outputs|recipes|internals)\.md"
LINK = re.compile(r"\]\((?:docs/)?(" + DOCS_PAGES + r")(?:#([^)]+))?\)")


def _sections(name: str) -> set[str]:
    """Section numbers of the headings `## N. Title` / `### N.M Title` of docs/<name>."""
    text = (DOCS / name).read_text()
    return {m[1] for m in re.finditer(r"^#{2,4} (\d+(?:\.\d+)?)\.? ", text, re.MULTILINE)}


def _anchors(name: str) -> set[str]:
    """GitHub's anchors of every heading of docs/<name>."""
    text = (DOCS / name).read_text()
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _citations() -> list[tuple[str, str, str]]:
    """(source file, document, section) for every citation."""
    found = []
    for path in SOURCES:
        text = path.read_text()
        for match in CITATION.finditer(text):
            doc = DOC_NAMES[match[1]]
            numbers = [match[2], *re.findall(r"\d+(?:\.\d+)?", match[3])]
            found += [(str(path.relative_to(ROOT)), doc, n) for n in numbers]
    return found


def test_the_citations_are_found():
    cited = {(doc, n) for _, doc, n in _citations()}
    assert ("physics.md", "13.2") in cited and ("bundle-format.md", "11.3") in cited
    assert len(cited) > 40


@pytest.mark.parametrize("doc", sorted(DOC_NAMES.values()))
def test_every_cited_section_is_a_heading(doc: str):
    sections = _sections(doc)
    missing = sorted({(src, n) for src, d, n in _citations() if d == doc and n not in sections})
    assert not missing, f"cited sections without a heading in docs/{doc}: {missing}"


def test_every_bare_section_sign_exists_in_some_document():
    """`§N` without a document name (in a module about that topic) still names a heading."""
    every = set().union(*(_sections(doc) for doc in DOC_NAMES.values()))
    missing = []
    for path in SOURCES:
        for match in BARE.finditer(path.read_text()):
            if match[1] not in every:
                missing.append((str(path.relative_to(ROOT)), match[1]))
    assert not missing, missing


def test_links_between_the_docs_resolve():
    broken = []
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for match in LINK.finditer(path.read_text()):
            target, anchor = match[1], match[2]
            if not (DOCS / target).is_file():
                broken.append((path.name, target))
            elif anchor is not None and anchor not in _anchors(target):
                broken.append((path.name, f"{target}#{anchor}"))
    assert not broken, broken


def test_license_and_citation_files_exist():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    assert "cff-version" in citation and "DeepPseudopot" in citation
