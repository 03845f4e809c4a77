"""pytest configuration: the ``backbone`` fixture over every tiny architecture, the search tests' ``embedder``
(a module may define its own), and slow-test skipping."""

from __future__ import annotations

import os

import pytest
from helpers import ARCHITECTURES, search_embedder, tiny_backbone


@pytest.fixture(params=ARCHITECTURES)
def backbone(request):
    return tiny_backbone(request.param)


@pytest.fixture(scope="module")
def embedder():
    """The tiny Llama as a ``mean`` embedder (:func:`helpers.search_embedder`), one per test module."""
    return search_embedder()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("RUN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test (real model or data): run with -m slow or RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
