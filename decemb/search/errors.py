"""Search errors: each one line naming the index folder (or the corpus file) and the offending id.

They are :class:`decemb.errors.ConfigError`\\ s (hence ``ValueError``\\ s): the CLI prints the line and exits 2.
"""

from __future__ import annotations

from decemb.errors import ConfigError

__all__ = [
    "CorpusError",
    "CorruptIndexError",
    "DuplicateIdError",
    "EmptyCorpusError",
    "IndexExistsError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "SearchError",
]


class SearchError(ConfigError):
    """Base class of the search errors."""


class CorpusError(SearchError):
    """A corpus (ids + texts) that cannot be indexed: unreadable, mismatched lengths, blank text, bad id."""


class EmptyCorpusError(CorpusError):
    """A corpus without a single document."""


class DuplicateIdError(CorpusError):
    """A document id given twice, or already in the index."""


class IndexNotFoundError(SearchError, FileNotFoundError):
    """No index at the given folder."""


class IndexExistsError(SearchError):
    """``build`` into a folder that already holds an index (add to it, or overwrite)."""


class IndexMismatchError(SearchError):
    """An index built with another model, strategy or encode settings than the one at hand."""


class CorruptIndexError(SearchError):
    """An index file that is missing, truncated, altered or unreadable."""
