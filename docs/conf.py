"""Sphinx configuration: Markdown pages (myst-parser) and the CLI reference (sphinx-argparse).

`make docs` builds with -W, so every warning fails the build. Pages are picked up by the glob
toctree in index.md: a new docs/<topic>.md needs no edit here.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the checkout being built, not whatever gabaapp is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gabaapp.__about__ import __version__  # noqa: E402

project = "gabaapp"
author = "gabaapp developers"
copyright = "gabaapp developers, MIT licence"
version = release = __version__

extensions = ["myst_parser", "sphinxarg.ext"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]

# dollarmath/amsmath: $...$ and equation environments in the methods pages.
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "amsmath"]
# Heading-level slips in a page (e.g. H1 then H3) are cosmetic; every other warning fails -W.
suppress_warnings = ["myst.header"]
# Anchors for '#'-links to sections within and across pages, e.g. [](outputs.md#group-level).
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"gabaapp {__version__}"
html_static_path: list[str] = []
html_theme_options = {"page_width": "1100px", "sidebar_width": "230px"}
