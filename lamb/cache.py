"""lamb's cache folder: downloaded wheels, built environments, and what ``lamb probe`` measured.

One home for its location, so every reader finds the same folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """lamb's cache: ``$LAMB_CACHE_DIR``, else ``~/.cache/lamb``."""
    root = os.environ.get("LAMB_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "lamb"
