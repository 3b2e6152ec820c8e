"""Model versions found on disk, loaded lazily, chosen per request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import DEFAULT_MODEL_DIR
from core.errors import UnknownModel
from core.scoring.registry import ModelRegistry


def _version(root: Path, version: str) -> None:
    target = root / f"tonehub-sentiment-{version}"
    target.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (target / name).symlink_to(DEFAULT_MODEL_DIR / name)
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    (target / "model.json").write_text(json.dumps(meta | {"version": version}))


def test_versions_are_found_and_loaded_on_demand(tmp_path: Path) -> None:
    _version(tmp_path, "1.0.0")
    _version(tmp_path, "2.0.0")
    registry = ModelRegistry(tmp_path, "tonehub-sentiment-2.0.0")
    assert registry.ids() == ["tonehub-sentiment-1.0.0", "tonehub-sentiment-2.0.0"]
    assert [m["default"] for m in registry.describe()] == [False, True]
    assert registry._loaded == {}
    old = registry.get("tonehub-sentiment-1.0.0")
    assert old.model_id == "tonehub-sentiment-1.0.0"
    assert registry.get("tonehub-sentiment-1.0.0") is old  # loaded once
    assert registry.get().model_id == "tonehub-sentiment-2.0.0"
    assert old.score("Thank you so much!").model == "tonehub-sentiment-1.0.0"


def test_unknown_model_and_missing_default(tmp_path: Path) -> None:
    _version(tmp_path, "1.0.0")
    registry = ModelRegistry(tmp_path, "tonehub-sentiment-1.0.0")
    with pytest.raises(UnknownModel) as err:
        registry.get("tonehub-sentiment-9.9.9")
    assert err.value.code == "unknown_model" and err.value.field == "model"
    with pytest.raises(UnknownModel):
        registry.get("")  # an empty id is a mistake, not a request for the default
    with pytest.raises(ValueError):
        ModelRegistry(tmp_path, "tonehub-sentiment-9.9.9")
