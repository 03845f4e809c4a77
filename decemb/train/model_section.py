"""The training config's ``model`` section: the backbone, its strategy, and LoadOptions' loading keys within
training's limits (:class:`ModelSection`; the whole config: :mod:`decemb.train.config`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, StrictInt, ValidationInfo, field_validator

from decemb.backends import DEFAULT_BACKEND
from decemb.load_options import LoadOptions, dtype_name
from decemb.settings import DEFAULT_MAX_LENGTH

__all__ = ["ModelSection", "named"]


def named(value: Any) -> Any:
    """``"echo"`` → ``{"name": "echo"}``: a bare string is shorthand for a mapping with only a name."""
    return {"name": value} if isinstance(value, str) else value


class ModelSection(LoadOptions):
    """The backbone and how it embeds: ``strategy`` is a name or ``{name: ..., option: value, ...}``. The loading
    keys are :class:`~decemb.load_options.LoadOptions`' own, with training's limits: ``dtype`` float32, bfloat16
    or float16 (default float32), ``backend`` torch only, and the model placed by ``training.device``."""

    source: str = Field(
        default="smollm2-135m", min_length=1, description="The backbone (alias, folder, .gguf, Hub id)."
    )
    strategy: dict[str, Any] = Field(
        default_factory=lambda: {"name": "mean"}, description="A strategy name or ``{name: ..., option: value}``."
    )
    max_length: PositiveInt | None = Field(default=DEFAULT_MAX_LENGTH, description="Tokens per rendered input.")
    layer: StrictInt = Field(default=-1, description="Hidden layer to pool (0: embeddings, negative: from the top).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(  # type: ignore[assignment]  # narrower for training
        default="float32",
        description="The weights' dtype while training: float32, bfloat16 or float16 (or fp32, bf16, fp16).",
    )

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> Any:  # LoadOptions' names (bf16, torch.bfloat16, ...) as the canonical one
        return value if value is None else dtype_name(str(value).removeprefix("torch."))

    @field_validator("device", "device_map")
    @classmethod
    def _placed_by_training(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            raise ValueError(
                f"training places the model itself: set training.device instead of model.{info.field_name}"
            )
        return value

    @field_validator("backend")
    @classmethod
    def _trains_on_torch(cls, value: str) -> str:
        if value != DEFAULT_BACKEND:
            raise ValueError(
                f"training runs on the {DEFAULT_BACKEND!r} backend (float32/bfloat16); {value!r} is for inference: "
                f"load the trained model with backend={value!r}"
            )
        return value

    @property
    def loading(self) -> LoadOptions:
        """This section's loading options, in one piece (what :func:`decemb.loading.load_backbone` takes)."""
        return LoadOptions.model_validate(self.loading_kwargs())

    _strategy = field_validator("strategy", mode="before")(classmethod(lambda cls, value: named(value)))

    @field_validator("strategy")
    @classmethod
    def _has_name(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise ValueError("needs a strategy name: a string like echo or a mapping {name: echo, ...}")
        return value

    @property
    def strategy_name(self) -> str:
        return str(self.strategy["name"])

    @property
    def strategy_options(self) -> dict[str, Any]:
        return {key: value for key, value in self.strategy.items() if key != "name"}
