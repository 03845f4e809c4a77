"""L2 normalisation of embedding rows, written once (numpy; a leaf module)."""

from __future__ import annotations

import numpy as np

__all__ = ["l2_normalize"]


def l2_normalize(array: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in the array's own dtype; an all-zero row stays zero (norms floored at 1e-12)."""
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
