"""Reading dataset files safely and collecting samples, pairs and warnings while a loader walks a tree.

Only files with a known source-code or text extension are ever opened: the extension-less files and
``embeddings/`` folders that SecLLMHolmes ships are Python pickles, and nothing here unpickles anything.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from steertui.engine.data.model import (
    AUGMENTED_NON_TRIVIAL,
    PATCHED,
    VULNERABLE,
    Dataset,
    DataSource,
    LoadWarning,
    Pair,
    Sample,
)

CODE_LANGUAGES: Mapping[str, str] = {".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".py": "python"}
SKIPPED_DIRS = frozenset({"embeddings", "__pycache__", ".git"})
MAX_FILE_BYTES = 5_000_000  # one code or text file; the largest SecLLMHolmes file is under 0.5 MB
#: Parts whose layout leaves files without a twin by design: one summary warning, not one per file.
ONE_SIDED_BY_DESIGN = frozenset({AUGMENTED_NON_TRIVIAL})

_NUM_RE = re.compile(r"(\d+)")


def natural_key(path: Path) -> list[object]:
    """Sort ``CWE-22`` before ``CWE-190`` and ``A2`` before ``A10``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in _NUM_RE.split(path.name)]


def subdirs(folder: Path) -> list[Path]:
    """Child folders in natural order, never the pickle-holding ``embeddings/`` or hidden ones."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    return sorted((c for c in children if c.is_dir() and c.name not in SKIPPED_DIRS and not c.name.startswith(".")),
                  key=natural_key)


def code_files(folder: Path) -> list[Path]:
    """Files with a known code extension, in natural order; extension-less files (pickles) are never listed."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    return sorted((c for c in children if c.suffix.lower() in CODE_LANGUAGES and not c.is_dir()
                   and not c.name.startswith(".")), key=natural_key)


@dataclass
class _Entry:
    sample: Sample
    pair_id: str | None


@dataclass
class Collector:
    """Accumulates samples (each with the id of the pair it belongs to) and warnings for one source."""

    source: DataSource
    root: Path
    cwe_names: dict[str, str]
    cwe_definitions: dict[str, str] = field(default_factory=dict)
    warnings: list[LoadWarning] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)
    missing_ground_truth: dict[str, int] = field(default_factory=dict)
    _ids: set[str] = field(default_factory=set)

    # -- reading -------------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def warn(self, code: str, message: str, path: Path | None = None) -> None:
        self.warnings.append(LoadWarning(code, message, self.rel(path) if path is not None else None))

    def read_code(self, path: Path) -> tuple[str, str] | None:
        """The file's text and the sha256 of its bytes; None (with a warning) if unreadable, empty or not UTF-8.

        A non-UTF-8 file is skipped rather than kept with replacement characters: a model would see
        text that is not in the dataset.
        """
        raw = self._read_bytes(path, "skipped")
        if raw is None:
            return None
        if not raw.strip():
            self.warn("empty-file", f"empty file {self.rel(path)} skipped", path)
            return None
        text = self._decode(raw, path, "skipped")
        return None if text is None else (text, hashlib.sha256(raw).hexdigest())

    def read_text(self, path: Path, part: str) -> tuple[str, str | None]:
        """A ground-truth or notes text and its path; ``("", None)`` when missing (counted) or bad (warned)."""
        if not path.is_file():
            self.missing_ground_truth[part] = self.missing_ground_truth.get(part, 0) + 1
            return "", None
        raw = self._read_bytes(path, "ignored")
        if raw is None:
            return "", None
        if not raw.strip():
            self.warn("empty-file", f"empty ground-truth file {self.rel(path)}", path)
            return "", str(path)
        text = self._decode(raw, path, "ignored")
        return (text.strip(), str(path)) if text is not None else ("", None)

    def read_optional(self, path: Path) -> str:
        """A text that may be absent (README, step-by-step notes): its content or ``""``."""
        if not path.is_file():
            return ""
        raw = self._read_bytes(path, "ignored")
        text = self._decode(raw, path, "ignored") if raw is not None else None
        return (text or "").strip()

    def _read_bytes(self, path: Path, action: str) -> bytes | None:
        """The bytes of a regular file inside the dataset folder, at most :data:`MAX_FILE_BYTES`; anything else
        (a link that resolves outside the folder, a FIFO, a device, a socket, a larger file) is never opened:
        a warning names it and says what to do."""
        rel = self.rel(path)
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(self.root.resolve()):
                self.warn("outside-dataset", f"{rel} is a link to {real}, outside the dataset folder; {action} "
                          "(replace the link with the file itself)", path)
                return None
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                        or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a file")
                self.warn("special-file", f"{rel} is {kind}, not a regular file; {action} (remove it)", path)
                return None
            if st.st_size > MAX_FILE_BYTES:
                self.warn("too-large", f"{rel} is {st.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for one "
                          f"file; {action}", path)
                return None
            return real.read_bytes()  # a regular file of at most MAX_FILE_BYTES (checked just above)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            self.warn("unreadable", f"cannot read {rel} ({reason}); {action}", path)
            return None

    def _decode(self, raw: bytes, path: Path, action: str) -> str | None:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            self.warn("not-utf8", f"{self.rel(path)} is not UTF-8 (bad byte at offset {err.start}); {action}", path)
            return None

    # -- collecting ----------------------------------------------------------------------------------
    def cwe_name(self, cwe: str) -> str:
        return self.cwe_names.get(cwe, cwe.upper())

    def add(self, sample: Sample, pair_id: str | None) -> None:
        if sample.id in self._ids:
            self.warn("duplicate-id", f"two files give the id {sample.id}; kept the first", Path(sample.source_path))
            return
        self._ids.add(sample.id)
        self.entries.append(_Entry(sample, pair_id))

    def build(self) -> Dataset:
        """Link twins into pairs, list the rest as unpaired, and freeze everything into a Dataset."""
        pairs, unpaired = self._link()
        self._warn_unpaired(unpaired)
        for part, count in self.missing_ground_truth.items():
            self.warn("no-ground-truth", f"{part}: {count} file(s) have no ground-truth text")
        return Dataset(source=self.source, samples=tuple(e.sample for e in self.entries), pairs=tuple(pairs),
                       unpaired=tuple(unpaired), warnings=tuple(self.warnings), cwe_names=dict(self.cwe_names),
                       cwe_definitions=dict(self.cwe_definitions))

    def _link(self) -> tuple[list[Pair], list[Sample]]:
        groups: dict[str, dict[str, Sample]] = {}
        loose: list[Sample] = []
        for entry in self.entries:
            if entry.pair_id is None:
                loose.append(entry.sample)
            else:
                groups.setdefault(entry.pair_id, {})[entry.sample.label] = entry.sample
        pairs: list[Pair] = []
        unpaired: list[Sample] = list(loose)
        for pair_id, sides in groups.items():
            if VULNERABLE in sides and PATCHED in sides:
                pairs.append(Pair(pair_id, sides[VULNERABLE], sides[PATCHED]))
            else:
                unpaired.extend(sides.values())
        order = {e.sample.id: i for i, e in enumerate(self.entries)}
        unpaired.sort(key=lambda s: order[s.id])
        return pairs, unpaired

    def _warn_unpaired(self, unpaired: list[Sample]) -> None:
        by_design: dict[str, int] = {}
        for sample in unpaired:
            if sample.part in ONE_SIDED_BY_DESIGN:
                by_design[sample.part] = by_design.get(sample.part, 0) + 1
            else:
                self.warn("no-twin", f"{sample.id} ({sample.label}) has no twin; listed as unpaired",
                          Path(sample.source_path))
        for part, count in by_design.items():
            self.warn("no-twin", f"{part}: {count} file(s) have no twin in their folder (the layout only keeps "
                                 "the files an augmentation touched); listed as unpaired")

