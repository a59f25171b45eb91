"""Where the data comes from: the --dataset flag, $STEERTUI_DATASET, the user config file, or the builtin examples.

Also: recognising a SecLLMHolmes checkout, reading its git commit without the git binary, and
``fetch_dataset`` (a clone of the public repository at a pinned commit, for users with network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steertui import paths
from steertui.atomic import atomic_write, publish
from steertui.errors import DatasetError

ENV_DATASET = "STEERTUI_DATASET"
ENV_DATASET_URL = "STEERTUI_DATASET_URL"
CONFIG_KEY = "dataset"
BUILTIN_KEYWORD = "builtin"
UPSTREAM_URL = "https://github.com/ai4cloudops/SecLLMHolmes"
PINNED_COMMIT = "9421928845d1f1f907946d7a70a6a57d62a163d8"
PART_DIRS = ("hand-crafted", "augmented", "real-world", "few-shot")

ConfigArg = str | os.PathLike[str] | Mapping[str, Any] | None

_NOT_A_CHECKOUT_HINT = (f"pass the folder that holds datasets/ (a clone of {UPSTREAM_URL}), "
                        "or run `steertui data fetch`")
_OFFLINE_HINT = (f"without network: clone {UPSTREAM_URL} (commit {PINNED_COMMIT[:12]}) on a machine that has it, "
                 f"copy the folder here, then pass --dataset PATH or set {ENV_DATASET}=PATH")


@dataclass(frozen=True)
class SourceChoice:
    """Which source won and why. ``path`` is None for the builtin examples."""

    path: Path | None
    origin: str
    reason: str

    @property
    def is_builtin(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class Checkout:
    """A recognised SecLLMHolmes checkout: its root (holding ``datasets/``) and its ``datasets/`` folder."""

    root: Path
    datasets: Path
    commit: str | None


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch_dataset`` did."""

    path: Path
    commit: str | None
    reused: bool
    config_file: Path


# -- choosing a source -------------------------------------------------------------------------------
def resolve_source(flag: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
                   config: ConfigArg = None) -> SourceChoice:
    """Pick the data source: ``flag`` > ``$STEERTUI_DATASET`` > config file key ``dataset`` > builtin.

    ``config`` is a config file path (default :func:`steertui.paths.user_config_file`) or an already
    parsed mapping. The value ``builtin`` anywhere asks for the builtin examples explicitly.
    """
    env = os.environ if env is None else env
    if flag is not None and str(flag).strip():
        return _choice(str(flag), "flag", f"--dataset {flag}", base=None)
    env_value = env.get(ENV_DATASET, "").strip()
    if env_value:
        return _choice(env_value, "env", f"${ENV_DATASET}={env_value}", base=None)
    value, where, base = _config_value(config)
    if value:
        return _choice(value, "config", f"{CONFIG_KEY} = {value!r} in {where}", base=base)
    return SourceChoice(None, "builtin", "no --dataset, $STEERTUI_DATASET or config entry: builtin examples")


def _choice(value: str, origin: str, reason: str, base: Path | None) -> SourceChoice:
    if value.strip().lower() == BUILTIN_KEYWORD:
        return SourceChoice(None, origin, f"{reason} asks for the builtin examples")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return SourceChoice(path, origin, reason)


def _config_value(config: ConfigArg) -> tuple[str | None, str, Path | None]:
    """The ``dataset`` entry of the config, where it was read, and the folder relative paths start from."""
    if isinstance(config, Mapping):
        return _check_value(config.get(CONFIG_KEY), "the given config"), "the given config", None
    config_file = Path(config) if config is not None else paths.user_config_file()
    data = read_config(config_file)
    return _check_value(data.get(CONFIG_KEY), str(config_file)), str(config_file), config_file.parent


def _check_value(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value.strip() if value else None
    raise DatasetError(f"config {where}: key {CONFIG_KEY!r} must be a path string, not {type(value).__name__}",
                       f'write it as {CONFIG_KEY} = "/path/to/SecLLMHolmes"')


def read_config(config_file: Path) -> dict[str, Any]:
    """The parsed TOML config, or ``{}`` when the file does not exist."""
    try:
        raw = config_file.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise DatasetError(f"cannot read config file {config_file}: {err.strerror or err}",
                           "fix its permissions or set STEERTUI_CONFIG to another file") from err
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"config file {config_file} is not valid TOML: {err}",
                           "fix or delete it") from err


def write_config_value(config_file: Path, key: str, value: Any) -> None:
    """Set one key in the TOML config, keeping the other keys; written atomically (temp file + replace)."""
    import tomli_w

    data = read_config(config_file)
    data[key] = value
    atomic_write(config_file, lambda tmp: Path(tmp).write_bytes(tomli_w.dumps(data).encode("utf-8")))


# -- recognising a checkout ----------------------------------------------------------------------------
def locate_checkout(path: str | os.PathLike[str], *, reason: str | None = None) -> Checkout:
    """Recognise a SecLLMHolmes checkout: the folder holding ``datasets/``, or ``datasets/`` itself.

    A missing path or a folder without any known part raises :class:`DatasetError`.
    """
    given = Path(path).expanduser()
    where = f" ({reason})" if reason else ""
    if not given.exists():
        raise DatasetError(f"dataset path {given}{where} does not exist", _NOT_A_CHECKOUT_HINT)
    if not given.is_dir():
        raise DatasetError(f"dataset path {given}{where} is a file, not a folder", _NOT_A_CHECKOUT_HINT)
    folder = given.resolve()
    if (folder / "datasets").is_dir():
        root, datasets = folder, folder / "datasets"
    elif _has_part(folder):
        root, datasets = folder.parent, folder
    else:
        raise DatasetError(f"{folder}{where} is not a SecLLMHolmes checkout: no datasets/ folder", _NOT_A_CHECKOUT_HINT)
    if not _has_part(datasets):
        raise DatasetError(f"{datasets}{where} holds none of {', '.join(PART_DIRS)}: not a SecLLMHolmes checkout",
                           _NOT_A_CHECKOUT_HINT)
    return Checkout(root=root, datasets=datasets, commit=read_git_commit(root))


def _has_part(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in PART_DIRS)


# -- git, without the git binary -----------------------------------------------------------------------
def read_git_commit(root: Path) -> str | None:
    """The commit checked out at ``root`` (a ``.git`` folder or ``gitdir:`` file there), or None."""
    git_dir = _git_dir(root)
    if git_dir is None:
        return None
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not head.startswith("ref:"):
        return head if _is_sha(head) else None
    ref = head[4:].strip()
    for base in _ref_dirs(git_dir):
        commit = _read_ref(base, ref)
        if commit:
            return commit
    return None


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():
        try:
            line = dot_git.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if line.startswith("gitdir:"):
            target = Path(line[7:].strip())
            target = target if target.is_absolute() else root / target
            return target if target.is_dir() else None
    return None


def _ref_dirs(git_dir: Path) -> list[Path]:
    """The git dir, then its common dir (worktrees keep branch refs there)."""
    dirs = [git_dir]
    common = git_dir / "commondir"
    if common.is_file():
        try:
            target = Path(common.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            return dirs
        dirs.append(target if target.is_absolute() else git_dir / target)
    return dirs


def _read_ref(git_dir: Path, ref: str) -> str | None:
    try:
        value = (git_dir / ref).read_text(encoding="utf-8").strip()
        if _is_sha(value):
            return value
    except (OSError, UnicodeDecodeError):
        pass
    try:
        lines = (git_dir / "packed-refs").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and _is_sha(parts[0]):
            return parts[0]
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text.lower())


# -- fetch ---------------------------------------------------------------------------------------------
def default_fetch_dest() -> Path:
    return paths.user_data_dir() / "SecLLMHolmes"


def fetch_dataset(dest: str | os.PathLike[str] | None = None, *, url: str | None = None,
                  commit: str = PINNED_COMMIT, config_file: Path | None = None,
                  env: Mapping[str, str] | None = None) -> FetchResult:
    """Clone SecLLMHolmes at ``commit`` into ``dest`` and record it as ``dataset`` in the config file.

    ``url`` defaults to ``$STEERTUI_DATASET_URL``, else the public repository. An existing checkout at
    the same commit is reused. Any failure (no git, no network, unknown commit) raises
    :class:`DatasetError` naming what failed and what to do offline.
    """
    env = os.environ if env is None else env
    url = url or env.get(ENV_DATASET_URL) or UPSTREAM_URL
    target = Path(dest).expanduser().resolve() if dest is not None else default_fetch_dest()
    config_file = config_file or paths.user_config_file()
    if target.exists():
        commit_found = _existing_checkout_commit(target, commit)
        write_config_value(config_file, CONFIG_KEY, str(target))
        return FetchResult(target, commit_found, True, config_file)
    git = shutil.which("git")
    if git is None:
        raise DatasetError("`steertui data fetch` needs git, and git is not installed", _OFFLINE_HINT)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        _git(git, ["clone", "--quiet", "--no-checkout", url, str(partial)], f"could not clone {url}")
        _git(git, ["-C", str(partial), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit],
             f"could not check out commit {commit} of {url}")
        checkout = locate_checkout(partial)
        publish(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_config_value(config_file, CONFIG_KEY, str(target))
    return FetchResult(target, checkout.commit, False, config_file)


def _existing_checkout_commit(target: Path, commit: str) -> str | None:
    """Accept an existing folder only when it is a checkout at the wanted commit."""
    found = read_git_commit(target) if target.is_dir() else None
    if found is None or not found.startswith(commit.lower()):
        raise DatasetError(f"{target} already exists and is not a SecLLMHolmes checkout at commit {commit[:12]}",
                           "remove it, or pass --dest DIR for another folder")
    locate_checkout(target)
    return found


def _git(git: str, args: list[str], what: str) -> None:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
    try:
        done = subprocess.run([git, *args], capture_output=True, text=True, env=env, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DatasetError(f"{what}: {err}", _OFFLINE_HINT) from err
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"git exited with code {done.returncode}"
        raise DatasetError(f"{what}: {detail}", _OFFLINE_HINT)
