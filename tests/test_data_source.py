"""Where data comes from: flag > $STEERTUI_DATASET > config file > builtin; git commits; ``fetch_dataset``."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from fixtures_data import git, isolate, make_git_checkout, make_hand_crafted, write

from steertui.engine.data import (
    fetch_dataset,
    load_dataset,
    read_git_commit,
    resolve_source,
    write_config_value,
)
from steertui.engine.data import source as source_mod
from steertui.errors import DatasetError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate(monkeypatch, tmp_path)


def _checkout(path: Path) -> Path:
    make_hand_crafted(path / "datasets")
    return path


# -- resolution order ---------------------------------------------------------------------------------
def test_builtin_when_nothing_is_set() -> None:
    choice = resolve_source()
    assert choice.is_builtin and choice.origin == "builtin"
    assert load_dataset().source.label == "builtin examples"


def test_config_beats_builtin(tmp_path: Path, config_file: Path) -> None:
    from_config = _checkout(tmp_path / "from-config")
    write_config_value(config_file, "dataset", str(from_config))
    choice = resolve_source()
    assert (choice.origin, choice.path) == ("config", from_config)
    assert str(config_file) in choice.reason
    dataset = load_dataset()
    assert dataset.source.label == f"SecLLMHolmes @ {from_config.resolve()}"
    assert dataset.source.origin == "config"


def test_env_beats_config_and_flag_beats_env(tmp_path: Path, config_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_config_value(config_file, "dataset", str(_checkout(tmp_path / "from-config")))
    from_env = _checkout(tmp_path / "from-env")
    monkeypatch.setenv("STEERTUI_DATASET", str(from_env))
    assert (resolve_source().origin, resolve_source().path) == ("env", from_env)
    from_flag = _checkout(tmp_path / "from-flag")
    choice = resolve_source(from_flag)
    assert (choice.origin, choice.path) == ("flag", from_flag)
    assert load_dataset(from_flag).source.root == str(from_flag.resolve())


def test_builtin_keyword_and_mapping_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEERTUI_DATASET", "builtin")
    assert resolve_source().is_builtin and resolve_source().origin == "env"
    monkeypatch.delenv("STEERTUI_DATASET")
    target = _checkout(tmp_path / "mapped")
    assert resolve_source(config={"dataset": str(target)}).path == target
    assert load_dataset(config={"dataset": "builtin"}).source.label == "builtin examples"


def test_relative_config_path_is_relative_to_the_config_file(tmp_path: Path, config_file: Path) -> None:
    _checkout(config_file.parent / "data" / "SecLLMHolmes")
    write(config_file, 'dataset = "data/SecLLMHolmes"\n')
    assert resolve_source().path == config_file.parent / "data" / "SecLLMHolmes"


def test_bad_sources_name_where_they_came_from(tmp_path: Path, config_file: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_file, "dataset = [1, 2]\n")
    with pytest.raises(DatasetError, match="must be a path string"):
        resolve_source()
    write(config_file, "dataset = \n")
    with pytest.raises(DatasetError, match="not valid TOML"):
        resolve_source()
    write(config_file, f'dataset = "{tmp_path / "gone"}"\n')
    with pytest.raises(DatasetError, match="from dataset = .* in .*config.toml.*does not exist"):
        load_dataset()
    monkeypatch.setenv("STEERTUI_DATASET", str(tmp_path / "also-gone"))
    with pytest.raises(DatasetError, match=r"from \$STEERTUI_DATASET"):
        load_dataset()


def test_write_config_value_keeps_other_keys(config_file: Path) -> None:
    write(config_file, 'theme = "dark"\n[keys]\nquit = "q"\n')
    write_config_value(config_file, "dataset", "/data/SecLLMHolmes")
    data = tomllib.loads(config_file.read_text())
    assert data == {"theme": "dark", "keys": {"quit": "q"}, "dataset": "/data/SecLLMHolmes"}
    assert [p.name for p in config_file.parent.iterdir()] == ["config.toml"]


# -- git commit, read without the git binary ----------------------------------------------------------
def test_commit_from_loose_ref_packed_ref_and_detached_head(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "checkout")
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(root / ".git" / "refs" / "heads" / "main", SHA + "\n")
    assert read_git_commit(root) == SHA
    assert load_dataset(root).source.label == f"SecLLMHolmes @ {SHA}"
    (root / ".git" / "refs" / "heads" / "main").unlink()
    write(root / ".git" / "packed-refs", f"# pack-refs with: peeled\n{SHA} refs/heads/main\n")
    assert read_git_commit(root) == SHA
    write(root / ".git" / "HEAD", SHA[::-1] + "\n")
    assert read_git_commit(root) == SHA[::-1]
    write(root / ".git" / "HEAD", "ref: refs/heads/none\n")
    assert read_git_commit(root) is None
    assert load_dataset(root).source.label == f"SecLLMHolmes @ {root.resolve()}"


@needs_git
def test_commit_of_a_real_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    commit = make_git_checkout(root)
    assert read_git_commit(root) == commit
    assert load_dataset(root).source.label == f"SecLLMHolmes @ {commit}"
    assert load_dataset(root / "datasets").source.label == f"SecLLMHolmes @ {commit}"


# -- fetch ------------------------------------------------------------------------------------------
@pytest.fixture
def bare_repo(tmp_path: Path) -> tuple[Path, str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    work = tmp_path / "upstream-work"
    commit = make_git_checkout(work)
    bare = tmp_path / "upstream.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare, commit


def test_fetch_clones_checks_out_and_records(bare_repo: tuple[Path, str], tmp_path: Path, config_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bare, commit = bare_repo
    write(config_file, 'theme = "dark"\n')
    monkeypatch.setenv("STEERTUI_DATASET_URL", str(bare))
    result = fetch_dataset(commit=commit)
    assert result.path == tmp_path / "user-data" / "SecLLMHolmes"
    assert (result.commit, result.reused) == (commit, False)
    assert tomllib.loads(config_file.read_text()) == {"theme": "dark", "dataset": str(result.path)}
    dataset = load_dataset()
    assert dataset.source.label == f"SecLLMHolmes @ {commit}"
    assert len(dataset.pairs) == 2
    again = fetch_dataset(commit=commit)
    assert again.reused and again.commit == commit
    assert not [p for p in result.path.parent.iterdir() if ".partial-" in p.name]


def test_fetch_failures_say_what_to_do(bare_repo: tuple[Path, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bare, commit = bare_repo
    with pytest.raises(DatasetError, match="could not clone .*--dataset PATH or set STEERTUI_DATASET"):
        fetch_dataset(tmp_path / "a", url=str(tmp_path / "no-such-repo.git"))
    with pytest.raises(DatasetError, match="could not check out commit"):
        fetch_dataset(tmp_path / "b", url=str(bare), commit="f" * 40)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    write(tmp_path / "c" / "file.txt", "occupied")
    with pytest.raises(DatasetError, match="already exists"):
        fetch_dataset(tmp_path / "c", url=str(bare), commit=commit)
    monkeypatch.setattr(source_mod.shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match="needs git.*without network"):
        fetch_dataset(tmp_path / "d", url=str(bare), commit=commit)
