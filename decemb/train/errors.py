"""The one error type of training configs and inputs: decemb's ``ConfigError`` (one line naming the file and
key; the CLI prints it and exits 2). Imported here once so the rest of the package has one source."""

from __future__ import annotations

from decemb.compare.config import ConfigError

__all__ = ["ConfigError"]
