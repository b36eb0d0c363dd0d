"""A MkDocs hook: the built site's search works when opened from disk (file://).

MkDocs' search loads its index with XMLHttpRequest from a web worker, and a browser allows
neither on a page opened from disk. This hook writes the same index as a script,
``search/search_index.js``, which a ``<script>`` tag may load from disk;
``docs/js/offline-search.js`` searches it on the page when the site is opened from disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def on_post_build(config: Any) -> None:
    """Write ``search/search_index.js`` next to the index the search plugin wrote."""
    search = Path(config["site_dir"]) / "search"
    index = json.loads((search / "search_index.json").read_text(encoding="utf-8"))
    script = f"window.recraftSearchIndex = {json.dumps(index)};\n"
    (search / "search_index.js").write_text(script, encoding="utf-8")
