"""``RowInt8Linear``: a ``torch.nn.Linear`` replacement that runs the matrix product in int8 on CPU (fbgemm).

Weights are quantized once, symmetric per output channel (int8). Activations are quantized per **row** (per
token): each row is divided by its own largest magnitude and then quantized with one fixed scale, so a row's
integers depend on that row alone. The int8 products are summed exactly in int32, which makes the layer's
output for a row independent of the other rows of the batch and of their padding (batch invariance holds
exactly, not just within a tolerance), and a token with huge activations (an attention sink) cannot crush the
precision of its neighbours, as torch's per-tensor ``quantize_dynamic`` does.

Before quantizing, each row is rotated by a block-diagonal Walsh-Hadamard matrix (blocks of 64 channels; the
weights get the same rotation once, so the product is unchanged in exact arithmetic): a rotation spreads an
outlier channel's magnitude over its block, so a row's largest value is close to its typical one and 7 bits
lose less (on SmolLM2-135M: 1 - cosine of mean-pooled vectors 0.0015 with the rotation, 0.017 without).
It needs no calibration data: the quantized model is a pure function of the float weights.

The activations use 7 bits (levels 1..127): AVX2 without VNNI multiplies u8 × s8 pairs into int16 with
saturation, which 7-bit activations cannot reach (2 × 127 × 127 < 32767).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["RowInt8Linear"]

# x / max|x| lies in [-1, 1]; quint8 level = round(x / SCALE) + ZERO_POINT lies in [1, 127].
_ACTIVATION_SCALE = 1.0 / 63.0
_ACTIVATION_ZERO_POINT = 64
_TINY = 1e-30
_BLOCK = 64


def _hadamard(size: int) -> torch.Tensor:
    """The orthonormal Walsh-Hadamard matrix of a power-of-two ``size`` (entries ±1/sqrt(size))."""
    matrix = torch.ones(1, 1)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix / size**0.5


def _block(features: int) -> int:
    """The rotation's block: 64 channels, or the largest power of two that divides ``features``."""
    size = _BLOCK
    while features % size:
        size //= 2
    return size


class RowInt8Linear(torch.nn.Module):
    """Inference-only int8 ``Linear`` (per-channel int8 weights, per-row 7-bit activations, float32 in and out).

    The int8 weights and their scales are buffers, so ``state_dict`` (and with it decemb's model fingerprint)
    covers exactly what computes; the fbgemm-packed copy that runs is built from them."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("rotation", _hadamard(_block(self.in_features)))
        weight = self._rotate(linear.weight.detach().to(device="cpu", dtype=torch.float32))
        scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=_TINY)
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().to(device="cpu", dtype=torch.float32).clone()
        self.register_buffer("bias", bias)
        self._packed = self._pack()

    def _rotate(self, rows: torch.Tensor) -> torch.Tensor:
        size = self.rotation.shape[0]
        if size == 1:
            return rows
        return (rows.reshape(rows.shape[0], -1, size) @ self.rotation).reshape(rows.shape)

    def _pack(self) -> torch.ScriptObject:
        zero_points = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensor creation is deprecated in torch 2.13 (docs/performance.md)
            warnings.simplefilter("ignore", UserWarning)
            weight = torch._make_per_channel_quantized_tensor(
                self.weight_int8, self.weight_scale.double(), zero_points, 0
            )
        return torch.ops.quantized.linear_prepack(weight, None)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.device.type != "cpu":
            raise RuntimeError("the int8 backend runs on CPU only; load with backend='torch' on other devices")
        shape = inputs.shape
        rows = self._rotate(inputs.reshape(-1, self.in_features).to(torch.float32))
        magnitude = rows.abs().amax(dim=1, keepdim=True).clamp(min=_TINY)
        out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            rows / magnitude, _ACTIVATION_SCALE, _ACTIVATION_ZERO_POINT, self._packed
        )
        out.mul_(magnitude)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features).to(inputs.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
