"""The built documentation site works in a real browser, opened from disk.

The site is built as .ci/run builds it (``mkdocs build --strict``) and opened in headless
Chromium (Debian's ``chromium``; .ci/run installs it) from ``file://``, as a user opens
``site/index.html``: search must find pages there, where MkDocs' own search cannot, and a
reference page must render its headings without the empty boxes of symbol-type badges.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The docs extra (mkdocstrings 1.x) needs Python 3.11: .ci/run installs it into the 3.11
# environment only, so the run on 3.10 leaves this module out rather than failing on it.
if sys.version_info < (3, 11):  # pragma: no cover
    pytest.skip("the docs tools (mkdocstrings 1.x) need Python 3.11", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
# Debian's package; elsewhere whatever is on PATH under the usual names.
CHROMIUM = next(
    (
        found
        for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
        if (found := shutil.which(name))
    ),
    None,
)
# Nothing fetched, nothing phoned home: the browser sees only the site on disk.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


# The built site in a headless browser: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly into a temporary folder."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return out


def _rendered_dom(page: Path, query: str, profile: Path) -> str:
    """The page's DOM once its scripts ran (on the browser's virtual clock), from disk."""
    if CHROMIUM is None:
        pytest.skip("no Chromium: apt-get install -y chromium")
    done = subprocess.run(  # noqa: S603 - the browser found above, on a local file
        [
            CHROMIUM,
            *_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri() + query,
        ],
        capture_output=True,
        text=True,
        timeout=120,  # a hung browser fails the test rather than the whole run
        check=True,
    )
    return done.stdout


def test_search_finds_pages_when_the_site_is_opened_from_disk(site, tmp_path):
    """search.html?q=journal, opened from file://, lists the journal's guide and reference."""
    dom = _rendered_dom(site / "search.html", "?q=journal", tmp_path / "profile")
    links = re.findall(r'<article><h3><a href="([^"]+)"', dom)
    assert any(link.startswith("./guides/bulk-and-journal.html") for link in links), dom[-2000:]
    assert any(link.startswith("./reference/journal.html") for link in links)


def test_search_says_when_nothing_matches(site, tmp_path):
    """A word found nowhere gives the 'No results found' line, not an empty page."""
    dom = _rendered_dom(site / "search.html", "?q=zyxwvutsrq", tmp_path / "profile")
    assert "No results found" in dom
    assert "<article>" not in dom


def test_the_client_reference_renders_without_empty_boxes(site, tmp_path):
    """The async client's page shows its members' headings and no empty symbol badges."""
    dom = _rendered_dom(site / "reference" / "client.html", "", tmp_path / "profile")
    headings = re.findall(r'<h\d id="(recraft_async\.AsyncRecraft[\w.]*)"', dom)
    assert {"recraft_async.AsyncRecraft", "recraft_async.AsyncRecraft.upscale"} <= set(headings)
    assert "doc-symbol" not in dom  # an empty <code> box before every heading otherwise


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "reference").glob("*.md")), ids=str)
def test_every_reference_page_is_a_readable_length(site, page):
    """No reference page documents more than 70 symbols: the reference is split by topic."""
    html = (site / "reference" / page.with_suffix(".html").name).read_text(encoding="utf-8")
    assert 0 < html.count('class="doc doc-heading') <= 70
