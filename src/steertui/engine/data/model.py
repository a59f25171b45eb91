"""Plain, JSON-friendly records for paired vulnerable/patched code: samples, pairs, sources, warnings.

Nothing here touches the file system; :mod:`steertui.engine.data.loader` builds these objects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from steertui.errors import DatasetError

VULNERABLE = "vulnerable"
PATCHED = "patched"
LABELS = (VULNERABLE, PATCHED)

HAND_CRAFTED = "hand-crafted"
AUGMENTED_TRIVIAL = "augmented-trivial"
AUGMENTED_NON_TRIVIAL = "augmented-non-trivial"
REAL_WORLD = "real-world"
FEW_SHOT = "few-shot"
BUILTIN = "builtin"
PARTS = (HAND_CRAFTED, AUGMENTED_TRIVIAL, AUGMENTED_NON_TRIVIAL, REAL_WORLD, FEW_SHOT, BUILTIN)

SECLLMHOLMES = "secllmholmes"
BUILTIN_LABEL = "builtin examples"

#: Short CWE names, as the first words of SecLLMHolmes' ``mitre-cwe-definitions.json`` spell them.
DEFAULT_CWE_NAMES: Mapping[str, str] = {
    "cwe-22": "Path Traversal",
    "cwe-77": "Command Injection",
    "cwe-79": "Cross-Site Scripting",
    "cwe-89": "SQL Injection",
    "cwe-190": "Integer Overflow or Wraparound",
    "cwe-416": "Use After Free",
    "cwe-476": "NULL Pointer Dereference",
    "cwe-787": "Out-of-bounds Write",
}

_CWE_RE = re.compile(r"^cwe[-_ ]?(\d+)$", re.IGNORECASE)


def normalize_cwe(value: str | int) -> str:
    """``"CWE-787"``, ``"cwe_787"``, ``"787"`` or ``787`` -> ``"cwe-787"``; anything else is lower-cased as is."""
    text = str(value).strip()
    if text.isdigit():
        return f"cwe-{int(text)}"
    match = _CWE_RE.match(text)
    return f"cwe-{int(match.group(1))}" if match else text.lower()


def cwe_sort_key(cwe: str) -> tuple[int, str]:
    """Order CWE ids by number (``cwe-22`` before ``cwe-190``), unknown ones last."""
    match = _CWE_RE.match(cwe)
    return (int(match.group(1)), cwe) if match else (1 << 30, cwe)


@dataclass(frozen=True)
class LoadWarning:
    """Something in the data that was skipped or looks wrong; loading went on."""

    code: str
    message: str
    path: str | None = None

    def __str__(self) -> str:
        return self.message if not self.path else f"{self.message} ({self.path})"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "path": self.path}


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from, and why that source was chosen.

    ``label`` is what every sample and result carries: ``"SecLLMHolmes @ <commit>"`` for a git checkout,
    ``"SecLLMHolmes @ <absolute path>"`` for a plain copy, ``"builtin examples"`` for the shipped examples.
    """

    kind: str
    root: str
    commit: str | None = None
    origin: str = "argument"
    reason: str = ""

    @property
    def label(self) -> str:
        if self.kind == BUILTIN:
            return BUILTIN_LABEL
        return f"SecLLMHolmes @ {self.commit or self.root}"

    @property
    def is_benchmark(self) -> bool:
        """True for SecLLMHolmes data; results on the builtin examples are never benchmark results."""
        return self.kind == SECLLMHOLMES

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "root": self.root, "commit": self.commit,
                "origin": self.origin, "reason": self.reason}


@dataclass(frozen=True)
class Sample:
    """One code file with its label, ground truth and provenance.

    ``label`` is the label SecLLMHolmes gives the file (from its name); ``caveats`` says where that label
    is known to be wrong or where else the sample needs care. ``meta`` holds part-specific facts
    (augmentation, project, CVE, ...), ``texts`` further explanations (step-by-step reasoning, CVE notes).
    """

    id: str
    part: str
    cwe: str
    cwe_name: str
    language: str
    label: str
    code: str
    ground_truth: str
    source_path: str
    rel_path: str
    sha256: str
    source: str
    ground_truth_path: str | None = None
    meta: tuple[tuple[str, str], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()
    caveats: tuple[str, ...] = ()

    @property
    def label_int(self) -> int:
        """1 = vulnerable, 0 = patched (the label SecLLMHolmes gives; see ``caveats``)."""
        return 1 if self.label == VULNERABLE else 0

    @property
    def is_vulnerable(self) -> bool:
        return self.label == VULNERABLE

    @property
    def name(self) -> str:
        """The last part of the id (``p_1``, ``vuln``, ``cwe-787-p``)."""
        return self.id.rsplit("/", 1)[-1]

    @property
    def meta_dict(self) -> dict[str, str]:
        return dict(self.meta)

    @property
    def label_text(self) -> str:
        """The label, with a warning mark when a caveat applies: show this wherever the label is shown."""
        return self.label if not self.caveats else f"{self.label} (caveat!)"

    def to_dict(self, *, include_code: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "part": self.part, "cwe": self.cwe, "cwe_name": self.cwe_name,
            "language": self.language, "label": self.label, "label_int": self.label_int,
            "caveats": list(self.caveats), "source": self.source, "source_path": self.source_path,
            "rel_path": self.rel_path, "sha256": self.sha256, "ground_truth": self.ground_truth,
            "ground_truth_path": self.ground_truth_path, "meta": dict(self.meta), "texts": dict(self.texts),
        }
        if include_code:
            data["code"] = self.code
        return data


@dataclass(frozen=True)
class Pair:
    """A vulnerable file and its patched twin.

    A pair id is the vulnerable side's id with its last segment ``N`` replaced by ``pair-N``
    (``hand-crafted/CWE-787/pair-1``); where the last segment is not a number, ``/pair`` is appended to
    the folder both sides share (``real-world/libtiff/CVE-2023-26966/pair``, ``few-shot/cwe-787/pair``).
    """

    id: str
    vulnerable: Sample
    patched: Sample

    @property
    def part(self) -> str:
        return self.vulnerable.part

    @property
    def cwe(self) -> str:
        return self.vulnerable.cwe

    @property
    def cwe_name(self) -> str:
        return self.vulnerable.cwe_name

    @property
    def language(self) -> str:
        return self.vulnerable.language

    @property
    def source(self) -> str:
        return self.vulnerable.source

    @property
    def samples(self) -> tuple[Sample, Sample]:
        return (self.vulnerable, self.patched)

    def line_opcodes(self) -> list[tuple[str, int, int, int, int]]:
        """``difflib`` opcodes over the two files' lines (vulnerable = a, patched = b), whole files."""
        return difflib.SequenceMatcher(a=self.vulnerable.code.splitlines(), b=self.patched.code.splitlines(),
                                       autojunk=False).get_opcodes()

    @property
    def caveats(self) -> tuple[str, ...]:
        """Every caveat of either side, prefixed with the side's id."""
        return tuple(f"{s.id}: {c}" for s in self.samples for c in s.caveats)

    def to_dict(self, *, include_code: bool = True) -> dict[str, Any]:
        return {"id": self.id, "part": self.part, "cwe": self.cwe, "cwe_name": self.cwe_name,
                "language": self.language, "source": self.source, "caveats": list(self.caveats),
                "vulnerable": self.vulnerable.to_dict(include_code=include_code),
                "patched": self.patched.to_dict(include_code=include_code)}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Samples, the pairs they form, the files without a twin, and what went wrong while loading."""

    source: DataSource
    samples: tuple[Sample, ...]
    pairs: tuple[Pair, ...]
    unpaired: tuple[Sample, ...] = ()
    warnings: tuple[LoadWarning, ...] = ()
    cwe_names: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CWE_NAMES))
    cwe_definitions: Mapping[str, str] = field(default_factory=dict)

    # -- lookups -------------------------------------------------------------------------------------
    @cached_property
    def _samples_by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}

    @cached_property
    def _pairs_by_id(self) -> dict[str, Pair]:
        return {p.id: p for p in self.pairs}

    @cached_property
    def _pair_by_sample(self) -> dict[str, Pair]:
        return {s.id: p for p in self.pairs for s in p.samples}

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts present, in the canonical order of :data:`PARTS`."""
        present = {s.part for s in self.samples}
        return tuple(p for p in PARTS if p in present)

    @property
    def cwes(self) -> tuple[str, ...]:
        return tuple(sorted({s.cwe for s in self.samples}, key=cwe_sort_key))

    def ids(self) -> list[str]:
        """Every sample id and pair id."""
        return [s.id for s in self.samples] + [p.id for p in self.pairs]

    def get(self, item_id: str) -> Sample | Pair | None:
        """The sample or pair with this id, or None."""
        return self._samples_by_id.get(item_id) or self._pairs_by_id.get(item_id)

    def __getitem__(self, item_id: str) -> Sample | Pair:
        return self.find(item_id)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.get(item_id) is not None

    def find(self, item_id: str) -> Sample | Pair:
        """The sample or pair with this id (typed by a user: ``hand-crafted/cwe-22/pair-1``, as the summary writes
        the CWE, finds ``hand-crafted/CWE-22/pair-1`` when no other id differs from it only in case); an unknown id
        raises :class:`DatasetError` with close ids."""
        key = item_id.strip().strip("/")
        found = self.get(key)
        if found is None:
            same = [i for i in dict.fromkeys(self.ids()) if i.casefold() == key.casefold()]
            found = self.get(same[0]) if len(same) == 1 else None
        if found is None:
            raise self._unknown(item_id)
        return found

    def sample(self, sample_id: str) -> Sample:
        found = self._samples_by_id.get(sample_id)
        if found is None:
            raise self._unknown(sample_id)
        return found

    def pair(self, pair_id: str) -> Pair:
        """A pair by its id, or by the id of either of its samples."""
        found = self._pairs_by_id.get(pair_id) or self._pair_by_sample.get(pair_id)
        if found is None:
            raise self._unknown(pair_id)
        return found

    def pair_of(self, sample: Sample | str) -> Pair | None:
        """The pair a sample belongs to, or None when it has no twin."""
        return self._pair_by_sample.get(sample if isinstance(sample, str) else sample.id)

    def _unknown(self, item_id: str) -> DatasetError:
        close = difflib.get_close_matches(item_id, self.ids(), n=5, cutoff=0.6)
        hint = ("did you mean: " + ", ".join(close)) if close else "list the ids with `steertui data summary --json`"
        return DatasetError(f"no sample or pair {item_id!r} in {self.source.label}", hint)

    # -- views ---------------------------------------------------------------------------------------
    def select(self, parts: Iterable[str] | None = None, cwes: Iterable[str | int] | None = None, *,
               languages: Iterable[str] | None = None, exclude_caveats: bool = False) -> Dataset:
        """A filtered copy (same source and warnings); a pair stays when both of its sides stay."""
        part_set = set(parts) if parts is not None else None
        cwe_set = {normalize_cwe(c) for c in cwes} if cwes is not None else None
        lang_set = {lang.lower() for lang in languages} if languages is not None else None

        def keep(s: Sample) -> bool:
            return ((part_set is None or s.part in part_set) and (cwe_set is None or s.cwe in cwe_set)
                    and (lang_set is None or s.language in lang_set) and not (exclude_caveats and s.caveats))

        return replace(self, samples=tuple(s for s in self.samples if keep(s)),
                       pairs=tuple(p for p in self.pairs if keep(p.vulnerable) and keep(p.patched)),
                       unpaired=tuple(s for s in self.unpaired if keep(s)))

    def pairs_by_cwe(self) -> dict[str, list[Pair]]:
        """Pairs grouped by CWE id, CWEs in numeric order."""
        groups: dict[str, list[Pair]] = {}
        for pair in sorted(self.pairs, key=lambda p: cwe_sort_key(p.cwe)):
            groups.setdefault(pair.cwe, []).append(pair)
        return groups

    def to_dict(self, *, include_code: bool = False) -> dict[str, Any]:
        return {"source": self.source.to_dict(),
                "samples": [s.to_dict(include_code=include_code) for s in self.samples],
                "pairs": [{"id": p.id, "vulnerable": p.vulnerable.id, "patched": p.patched.id} for p in self.pairs],
                "unpaired": [s.id for s in self.unpaired],
                "warnings": [w.to_dict() for w in self.warnings],
                "cwe_names": dict(self.cwe_names)}
