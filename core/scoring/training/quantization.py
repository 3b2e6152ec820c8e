"""Which nodes of the fused fp32 graph stay out of int8 (torch- and onnx-free).

Two methods. ``dynamic`` is ``quantize_dynamic``: int8 per-channel weights and
one int8 scale per activation tensor, computed at run time. One scale for a
whole tensor (every row of a batch, padding included) handles the outliers of
some activations (the GELU outputs read by the FFN down-projections above all)
badly, and the int8 labels drift from fp32 on 2-4% of texts near a decision
boundary: more than the gate allows. ``blockwise`` is ``MatMulNBits`` with
8-bit weights and ``accuracy_level`` 4: weights and activations are quantized
to int8 in blocks of ``block_size`` values along the inner dimension and
multiplied with int8 instructions, so one outlier only coarsens its own block.
It is both closer to fp32 and faster (docs/model-runs.md). It also stores the
embedding tables in uint8 (``QEmbedLayerNormalization``), which keeps the file
near 31 MB instead of 67.

The export tries the plans in order and ships the first whose int8 model passes
the quantization gate (``evaluate.quantization_gate``) on every dev split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LAYER = r"/bert/encoder/layer\.\d+"


@dataclass(frozen=True)
class QuantPlan:
    """One way to quantize: which nodes (by name or operator) stay in fp32."""

    name: str
    description: str
    method: str = "dynamic"
    """``dynamic`` (``quantize_dynamic``) or ``blockwise`` (8-bit ``MatMulNBits``)."""
    block_size: int = 0
    """Values per quantization block along the inner dimension (``blockwise``)."""
    fp32_names: tuple[str, ...] = ()
    """Regular expressions, each matched against a whole node name."""
    fp32_ops: tuple[str, ...] = ()
    """Operator types kept in fp32 wherever they occur."""

    def fp32_nodes(self, nodes: Iterable[tuple[str, str]]) -> list[str]:
        """Names of the nodes this plan keeps in fp32.

        Args:
            nodes: ``(name, op_type)`` of every node of the fused fp32 graph.

        Returns:
            The names to pass to ``quantize_dynamic(nodes_to_exclude=...)``.
        """
        patterns = [re.compile(p) for p in self.fp32_names]
        return [
            name
            for name, op in nodes
            if op in self.fp32_ops or any(p.fullmatch(name) for p in patterns)
        ]


QUANT_PLANS: tuple[QuantPlan, ...] = (
    QuantPlan(
        "int8-blockwise",
        "int8 weights and activations in blocks of 128 (MatMulNBits, bits 8, "
        "accuracy level 4) for every MatMul outside the fused attention; "
        "embedding tables in uint8",
        method="blockwise",
        block_size=128,
    ),
    QuantPlan("int8-all", "int8 dynamic, per-channel, every MatMul and attention"),
    QuantPlan(
        "ffn-down-fp32",
        "int8 dynamic, per-channel; the six FFN down-projections kept in fp32",
        fp32_names=(rf"{_LAYER}/output/dense/MatMul",),
    ),
    QuantPlan(
        "ffn-down-attn-out-fp32",
        "int8 dynamic, per-channel; FFN down-projections and attention output "
        "projections kept in fp32",
        fp32_names=(
            rf"{_LAYER}/output/dense/MatMul",
            rf"{_LAYER}/attention/output/dense/MatMul",
        ),
    ),
    QuantPlan(
        "attention-fp32",
        "int8 dynamic, per-channel; only the FFN up-projections and the heads in "
        "int8 (fused attention, its output and the FFN down-projections in fp32)",
        fp32_names=(
            rf"{_LAYER}/output/dense/MatMul",
            rf"{_LAYER}/attention/output/dense/MatMul",
        ),
        fp32_ops=("Attention",),
    ),
)
"""Tried in this order. On 1.3.0 the blockwise plan agreed with fp32 on at least
98.75% of the labels of every dev split and was the fastest; the dynamic plans
agreed on 96.1-98.3% and failed the gate (docs/model-runs.md). They stay as
fallbacks and for comparison (``--quant-plan``)."""


def plan_named(name: str) -> QuantPlan:
    """The plan called ``name``.

    Raises:
        KeyError: No such plan.
    """
    for plan in QUANT_PLANS:
        if plan.name == name:
            return plan
    raise KeyError(f"unknown quantization plan {name!r}")
