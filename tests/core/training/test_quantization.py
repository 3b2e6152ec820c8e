"""Which nodes each quantization plan keeps in fp32 (fused graph names)."""

from __future__ import annotations

import pytest

from core.scoring.training.quantization import QUANT_PLANS, plan_named


def _fused_graph() -> list[tuple[str, str]]:
    """Node names and operators as ``onnxruntime``'s bert optimizer leaves them."""
    nodes: list[tuple[str, str]] = [("/bert/embeddings/Gather", "Gather")]
    for i in range(6):
        layer = f"/bert/encoder/layer.{i}"
        nodes += [
            (f"Attention_{i}", "Attention"),
            (f"{layer}/attention/output/dense/MatMul", "MatMul"),
            (f"{layer}/intermediate/dense/MatMul", "MatMul"),
            (f"{layer}/output/dense/MatMul", "MatMul"),
            (f"{layer}/output/LayerNorm/Add_1", "SkipLayerNormalization"),
        ]
    nodes += [
        ("/bert/pooler/dense/Gemm", "Gemm"),
        ("/classifier/Gemm", "Gemm"),
    ]
    return nodes


def test_dynamic_plans_keep_more_and_more_in_fp32() -> None:
    counts = [len(p.fp32_nodes(_fused_graph())) for p in QUANT_PLANS]
    assert counts == [0, 0, 6, 12, 18]


def test_ffn_down_plan_leaves_attention_output_in_int8() -> None:
    # A name suffix "/output/dense/MatMul" also matches the attention output
    # projections; the plan must match the FFN down-projections alone.
    kept = plan_named("ffn-down-fp32").fp32_nodes(_fused_graph())
    assert kept == [f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(6)]


def test_attention_plan_keeps_fused_attention_by_operator() -> None:
    kept = plan_named("attention-fp32").fp32_nodes(_fused_graph())
    assert [n for n in kept if n.startswith("Attention_")] == [
        f"Attention_{i}" for i in range(6)
    ]
    assert not any("intermediate" in n or "pooler" in n for n in kept)


def test_blockwise_plan_is_tried_first() -> None:
    first = QUANT_PLANS[0]
    assert (first.method, first.block_size) == ("blockwise", 128)
    # Blocks must tile the inner dimensions of MiniLM-L6 (384 and 1536).
    assert 384 % first.block_size == 0 and 1536 % first.block_size == 0


def test_unknown_plan() -> None:
    with pytest.raises(KeyError, match="nope"):
        plan_named("nope")
