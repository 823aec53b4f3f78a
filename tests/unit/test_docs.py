"""The documentation holds together: README.md is a short page with a map of docs/, every relative
link in the pages points to a file (and heading) that exists, every repository path a page names
in backticks exists, and the generated options tables are up to date with the declarations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from testkit.support import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
CHART_README = REPO / "helm" / "sagemaker-loadtest" / "README.md"
README_MAX_LINES = 250


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md")), CHART_README]


# --- reading Markdown ------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The page without its fenced code blocks (commands and examples are not links)."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return "\n".join(out)


def code_spans(text: str) -> list[str]:
    return [m.group(2).strip() for m in _CODE_SPAN.finditer(prose(text))]


def links(text: str) -> list[str]:
    """Every link target of the page (inline, images and reference definitions), outside code."""
    body = _CODE_SPAN.sub("", prose(text))
    return [m.group(1) for m in _LINK.finditer(body)] + _REFERENCE.findall(body)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (repeats get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text()).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        base = slug(heading.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def dangling_links(page: Path) -> list[str]:
    """The page's relative links that point to no file, or to no heading of the file."""
    problems = []
    for target in links(page.read_text()):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not checked here (no network in tests)
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no such heading")
    return problems


_PATH = re.compile(r"[\w.-]+(/[\w.*-]+)*/?")
_NOT_PATHS = ("application/", "text/", "image/", "audio/", "video/", "multipart/")  # media types


def repository_path(span: str) -> str | None:
    """The repository path a code span names, if it looks like one: relative, with a '/', ending in
    a file extension or a '/' (``locust/smload/flags.py``, ``docs/``). Absolute paths are the
    container's or the host's, ``./reports`` the user's, and placeholders (``<endpoint>/<variant>``) and
    media types are not repository paths.
    Anything under a top-level folder of the repository counts too (``locust/payloads``)."""
    if not _PATH.fullmatch(span) or "/" not in span or span.startswith(_NOT_PATHS + ("./", "../")):
        return None
    if span.endswith("/") or re.search(r"\.[A-Za-z0-9]+$", span.rsplit("/", 1)[-1]):
        return span
    top = REPO / span.split("/", 1)[0]  # under a top-level folder: locust/payloads, helm/sagemaker-loadtest
    if top.is_dir():
        return span
    return None


def missing_paths(page: Path) -> list[str]:
    missing = []
    for span in code_spans(page.read_text()):
        path = repository_path(span)
        if path is None:
            continue
        found = list(REPO.glob(path.rstrip("/"))) if "*" in path else [REPO / path]
        if not any(p.exists() and (p.is_dir() or not path.endswith("/")) for p in found):
            missing.append(path)
    return missing


# --- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_dangling_relative_link(page):
    assert dangling_links(page) == []


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_named_exists(page):
    assert missing_paths(page) == []


def test_readme_is_short_and_maps_every_docs_page():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    linked = {
        (REPO / target.partition("#")[0]).resolve() for target in links(text) if not _SCHEME.match(target)
    }
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert unlinked == [], "docs pages missing from README.md's map"
    assert "make run" in text and "make test" in text, "the two commands"


def test_the_options_tables_are_generated_from_the_declarations():
    """docs/options.md's tables are what scripts/docs_options.py makes of smload.flags (`make docs`)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "docs_options.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_the_checker_finds_what_it_is_for(tmp_path):
    """The checks above on a page made to fail them: a missing file, a missing heading, a missing
    repository path; and what they must leave alone."""
    (tmp_path / "other.md").write_text("# Other page\n\n## `smload k8s`: drive a release\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[fine](other.md#smload-k8s-drive-a-release) [self](#title) [web](https://example.com/x.md)\n"
        "[gone](missing.md) [no heading](other.md#nowhere)\n"
        "```bash\n[in a block](nowhere.md) `locust/nowhere.py`\n```\n"
        "`locust/smload/flags.py` `locust/smload/` `helm/sagemaker-loadtest/dashboards/*.json` `/opt/smload/x.py`\n"
        "`application/json` `<endpoint>/<variant>` `ab-test/variant-a` `locust/smload/nowhere.py` `docs/nowhere/`\n"
        "`locust/payloads` `locust/nowhere` `./reports`\n"
    )
    assert dangling_links(page) == ["missing.md: no such file", "other.md#nowhere: no such heading"]
    assert missing_paths(page) == ["locust/smload/nowhere.py", "docs/nowhere/", "locust/nowhere"]
