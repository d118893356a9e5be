"""steps/_source_cache.py: ZenML's per-artifact package lookup is cached and answers as before."""

from __future__ import annotations

import pandas
from zenml.utils import source_utils

import steps  # noqa: F401  (importing the steps applies the cache)
from steps._source_cache import cache_package_lookup

MODULES = ("pandas.core.frame", "numpy", "zenml.materializers.built_in_materializer", "sklearn.svm._classes")


def test_the_package_lookup_is_cached_once_and_answers_as_zenml_does():
    lookup = source_utils._get_package_for_module
    assert hasattr(lookup, "cache_info")
    cache_package_lookup()  # a second call does not wrap the cache again
    assert source_utils._get_package_for_module is lookup
    for module in MODULES:
        assert lookup(module_name=module) == lookup.__wrapped__(module_name=module)
    assert lookup(module_name="pandas.core.frame") == "pandas"
    assert lookup(module_name="no_such_package.sub") is None


def test_resolving_a_package_type_reads_the_installed_distributions_once():
    lookup = source_utils._get_package_for_module
    lookup.cache_clear()
    sources = [source_utils.resolve(pandas.DataFrame) for _ in range(3)]
    assert {s.package_name for s in sources} == {"pandas"}
    assert {s.version for s in sources} == {pandas.__version__}
    info = lookup.cache_info()
    assert (info.misses, info.hits) == (1, 2)
