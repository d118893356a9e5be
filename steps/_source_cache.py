"""ZenML looks up the installed distribution of every artifact's type and materializer class that comes
from a package (numpy, pandas, ZenML's own materializers) each time it stores an artifact:
``zenml.utils.source_utils._get_package_for_module`` calls ``importlib.metadata.packages_distributions()``,
which reads the metadata of every installed distribution (about 0.15 s for this project's ~200, on the
2-core CI machine) and keeps nothing. The installed packages do not change while a pipeline runs, so the
answer is cached per module name for the process (issue 10: the demo's first run)."""

from __future__ import annotations

import functools

from zenml.utils import source_utils


def cache_package_lookup() -> None:
    """Wrap ZenML's package lookup in an unbounded cache, once; a ZenML without it is left alone."""
    lookup = getattr(source_utils, "_get_package_for_module", None)
    if lookup is not None and not hasattr(lookup, "cache_info"):
        source_utils._get_package_for_module = functools.lru_cache(maxsize=None)(lookup)


cache_package_lookup()
