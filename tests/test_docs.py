"""The user documentation holds together: every relative link in README.md and docs/
reaches a file (and a heading, when it names one), every page of docs/ is reachable
from the README, and the node pools page documents the format the loader reads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from mlgen.cluster import pools

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))  # code is not prose
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    assert _links(page) or page.name != "README.md", "the README links its docs"
    for target in _links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} names no file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target} names no heading"


def test_every_page_of_docs_is_reachable_from_the_readme() -> None:
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md" or not page.exists():
            continue
        seen.add(page)
        todo.extend((page.parent / t.partition("#")[0]).resolve() for t in _links(page))
    assert not set(PAGES) - seen, "docs pages no link reaches"


def test_anchors_follow_github() -> None:
    assert _anchor("What `bash .ci/run` does") == "what-bash-cirun-does"
    assert _anchor("Bounds, ε and how a run is timed") == "bounds-ε-and-how-a-run-is-timed"


def test_the_nodes_page_documents_every_field_and_its_example_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs/nodes.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(pools.Pool):
        assert f"| `{field.name}` |" in text, field.name
    assert "mlgen cluster nodes" in text and "--mlgen-nodes" in text
    example = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert example is not None
    copy = tmp_path / "nodes.yaml"
    copy.write_text(example.group(1))
    # The example is the packaged default, field for field.
    assert pools.load(copy) == pools.load()
    assert yaml.safe_load(example.group(1)) == yaml.safe_load(pools.default_text())
