"""Module classes of a saved folder resolved from the installed packages only (see :mod:`decemb.trust`)."""

from __future__ import annotations

from typing import Any

from decemb.trust import installed_module_class


class InstalledModulesOnly:
    """Mixin for a sentence-transformers model class (listed before it): without ``trust_remote_code``, each
    ``modules.json`` type resolves to a class of the installed decemb or sentence-transformers, never to a
    file in the folder (sentence-transformers would fetch ``decemb.py`` from a folder that ships one); a
    type that does not is an error naming it. With ``trust_remote_code=True``, sentence-transformers decides."""

    def _load_module_class_from_ref(
        self, class_ref: str, model_name_or_path: str, trust_remote_code: bool, *args: Any, **kwargs: Any
    ) -> type:
        if trust_remote_code:
            return super()._load_module_class_from_ref(  # type: ignore[misc]
                class_ref, model_name_or_path, trust_remote_code, *args, **kwargs
            )
        return installed_module_class(class_ref, f"{model_name_or_path}/modules.json")
