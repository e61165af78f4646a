"""The documentation site (mkdocs.yml) and the README: every page of docs/ is in the site's nav
and every nav entry is a page; every relative link of README.md and docs/*.md names a file that
exists (and, into a Markdown page, a heading it has); every snippet a page includes exists. Fast:
no mkdocs build here (CI runs ``mkdocs build --strict``, which also checks the API pages)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.relative_to(DOCS).parts)
LINKED = [ROOT / "README.md", *PAGES]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)=["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
SNIPPET = re.compile(r"""^-{2}8<-{2}\s+["']([^"']+)["']\s*$""", re.M)


class TolerantLoader(yaml.SafeLoader):
    """mkdocs.yml as data: ``!!python/name:...`` and other ``!!python`` tags (Material's emoji
    functions, for example) load as None instead of failing or importing anything."""


TolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
TolerantLoader.add_multi_constructor("!", lambda *_: None)


def mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=TolerantLoader)


def nav_pages(nav: object) -> Iterator[str]:
    """The files a nav names (entries of nested sections included), URLs left out."""
    if isinstance(nav, str):
        if "://" not in nav:
            yield nav
    elif isinstance(nav, list):
        for entry in nav:
            yield from nav_pages(entry)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_pages(value)


def prose(text: str) -> str:
    """``text`` without its fenced code blocks and code spans (where a link is not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The link targets of a Markdown page: inline links and images, reference definitions,
    HTML ``<a href>`` and ``<img src>``."""
    text = prose(text)
    return [*LINK.findall(text), *REFERENCE.findall(text), *HTML_TARGET.findall(text)]


def slugs(heading: str) -> set[str]:
    """The anchors a heading gets: mkdocs' (Python-Markdown toc) and GitHub's."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>|\{[^}]*\}\s*$", "", text).replace("`", "").strip()
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    mkdocs = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_text).strip().lower())
    github = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
    return {mkdocs, github}


def anchors(page: Path) -> set[str]:
    """Every anchor of a Markdown page: its headings' (with the ``_1``, ``-1`` suffixes of a
    repeated one) and explicit ``id``/``name`` attributes."""
    text = page.read_text()
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        for slug in slugs(heading):
            found |= {slug, *(f"{slug}{sep}{n}" for sep in "_-" for n in range(1, 10))}
    found |= set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    found |= set(re.findall(r"\{[^}]*#([\w-]+)[^}]*\}", text))
    return found


def external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)) or target.startswith("//")


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` to a file that does not exist, or to a heading that a
    Markdown page does not have."""
    broken = []
    for target in links(page.read_text()):
        if external(target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and file.suffix == ".md" and unquote(anchor) not in anchors(file):
            broken.append(f"{target}: {file.name} has no heading #{anchor}")
    return broken


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = mkdocs_config()
    assert config.get("docs_dir", "docs") == "docs"
    listed = list(nav_pages(config["nav"]))
    pages = {page.relative_to(DOCS).as_posix() for page in PAGES}
    assert sorted(pages - set(listed)) == [], "docs pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - pages) == [], "mkdocs.yml's nav names pages that do not exist"
    assert len(listed) == len(set(listed)), "a page is in the nav twice"


@pytest.mark.parametrize("page", LINKED, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_point_to_files_that_exist(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_included_snippets_exist(page):
    """``--8<-- "FILE:SECTION"`` (pymdownx.snippets, from the repository root) names a file that
    exists and, with a section, one that marks it with ``[start:SECTION]``/``[end:SECTION]``."""
    for include in SNIPPET.findall(FENCE.sub("", page.read_text())):
        name, _, section = include.partition(":")
        source = ROOT / name
        assert source.is_file(), f"{page.name} includes {name}, which does not exist"
        if section:
            text = source.read_text()
            for edge in ("start", "end"):
                assert f"--8<-- [{edge}:{section}]" in text, f"{name} has no [{edge}:{section}]"


def test_the_checker_finds_what_it_should(tmp_path):
    """A missing file, a missing heading and a missing nav entry are each found; links in code,
    URLs and headings written in several ways are not mistaken."""
    (tmp_path / "other.md").write_text("# Other\n\n## Interruptions: resume=auto\n\n"
                                       "## The `vidtl-train` default\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[a](other.md#interruptions-resumeauto) [b](other.md#the-vidtl-train-default)"
        " [c](#page) [d](https://example.com/x.md) ![e](missing.png) [f](other.md#nothing)\n\n"
        "`[g](inline.md)`\n\n```md\n[h](fenced.md)\n```\n\n[i]: gone.md\n")
    assert broken_links(page) == ["missing.png: no file missing.png",
                                  "other.md#nothing: other.md has no heading #nothing",
                                  "gone.md: no file gone.md"]
    nav = yaml.load("nav:\n  - Home: index.md\n  - Guide:\n      - a.md\n      - B: b/c.md\n"
                    "markdown_extensions:\n  - pymdownx.emoji:\n      emoji_index: "
                    "!!python/name:material.extensions.emoji.twemoji\n", Loader=TolerantLoader)
    assert list(nav_pages(nav["nav"])) == ["index.md", "a.md", "b/c.md"]
