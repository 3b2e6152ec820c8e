"""Hyper-parameters of a training run (torch-free, so evaluation can import it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run; written next to the checkpoints."""

    profile: str = "full"
    epochs: int = 1
    batch_size: int = 32
    max_length: int = 128
    learning_rate: float = 8e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    checkpoint_every: int = 150
    init_from: str | None = None
    """A fine-tuned model directory to continue from (else the base MiniLM)."""
