"""sentence-transformers modules: every decemb strategy is a real SentenceTransformer."""

from __future__ import annotations

from decemb.st.embedder import DecembEmbedder
from decemb.st.model import DecembModel
from decemb.st.pooling import DecembPooling

__all__ = ["DecembEmbedder", "DecembModel", "DecembPooling"]
