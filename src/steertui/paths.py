"""Where steertui finds its shipped assets and the user's files. No I/O at import time."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "steertui"
DEMO_MODEL_NAME = "demo-starcoder"


def assets_dir() -> Path:
    """The shipped assets: inside the installed wheel (``_assets``) or the source checkout's ``assets/``."""
    override = os.environ.get("STEERTUI_ASSETS")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "_assets"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "assets"


def demo_model_dir() -> Path:
    override = os.environ.get("STEERTUI_DEMO_MODEL")
    return Path(override) if override else assets_dir() / "models" / DEMO_MODEL_NAME


def builtin_examples_dir() -> Path:
    return assets_dir() / "examples"


def user_data_dir() -> Path:
    from platformdirs import user_data_path

    return Path(os.environ.get("STEERTUI_DATA_DIR") or user_data_path(APP_NAME))


def user_config_file() -> Path:
    from platformdirs import user_config_path

    return Path(os.environ.get("STEERTUI_CONFIG") or (user_config_path(APP_NAME) / "config.toml"))


def sessions_dir() -> Path:
    return Path(os.environ.get("STEERTUI_SESSIONS") or (user_data_dir() / "sessions"))
