"""Shared fixtures. Tests run on real inputs: the shipped demo model and the SecLLMHolmes copy in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dataset() -> Path | None:
    env = os.environ.get("STEERTUI_DATASET")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "secllmholmes"]:
        if (cand / "datasets").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_dataset() -> Path:
    path = _shared_dataset()
    if path is None:
        pytest.skip("SecLLMHolmes checkout not found: set STEERTUI_DATASET or place it at ../shared/secllmholmes")
    return path


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    from steertui.paths import demo_model_dir

    path = demo_model_dir()
    assert (path / "config.json").is_file(), f"demo model missing at {path}: run scripts/train_demo_model.py"
    return path


@pytest.fixture(scope="session")
def demo_model(demo_model_path):
    """The shipped demo model, loaded once for the whole test run (CPU, float32)."""
    from steertui.engine.model import LoadedModel

    return LoadedModel.load(str(demo_model_path), device="cpu", dtype="float32")


@pytest.fixture(autouse=True)
def _user_folders(tmp_path_factory, monkeypatch):
    """Every test gets its own user data folder and config file: nothing is read from or written to the real ones."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("STEERTUI_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("STEERTUI_CONFIG", str(home / "config.toml"))
    monkeypatch.delenv("STEERTUI_SESSIONS", raising=False)


@pytest.fixture
def tour(tmp_path) -> Path:
    """A copy of the example session ``sessions/demo-tour.toml`` and its sidecar (vector ``vuln``, layers 1 and 2,
    built from the builtin examples' pair-1 of every CWE) in the test's folder."""
    import shutil

    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(REPO / "sessions" / name, tmp_path / name)
    return tmp_path / "demo-tour.toml"
