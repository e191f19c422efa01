"""Enrolled voice signatures: one JSON file of embeddings per person (never raw audio).

A file is named ``<slug>-<hash>.json`` from the person's name so that "Ann Lee" and "ann-lee"
get different files; the real name lives inside. Names match case-insensitively, with runs of
white space collapsed. Files are written atomically with mode 0600. A damaged file is skipped,
reported by ``problems()``, and never overwritten: the user removes it first.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from jarvis import paths
from jarvis.errors import BadInput
from jarvis.speakers.encoder import EMBEDDING_SIZE
from jarvis.storage import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_NAME_LEN = 64
RESERVED_NAMES = {"unknown"}
ENROLL_HINT = "enroll with: jarvis enroll NAME FILE.wav"

try:
    import fcntl
except ImportError:  # Windows: in-process lock only
    fcntl = None


class SpeakerStore:
    """Per-person embedding files in ``folder`` (default ``paths.speakers_dir()``)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else paths.speakers_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._warned: set[tuple[str, int]] = set()

    # ---- reading -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(p["name"] for p, _ in self._scan()[0].values())

    def centroid(self, name: str) -> np.ndarray:
        """Unit-length mean of ``name``'s embeddings."""
        profile = self._require(name)
        return _centroid(profile["embeddings"])

    def centroids(self) -> dict[str, np.ndarray]:
        return {p["name"]: _centroid(p["embeddings"]) for p, _ in self._scan()[0].values()}

    def embedding_count(self, name: str) -> int:
        return len(self._require(name)["embeddings"])

    def problems(self) -> list[str]:
        """One line per damaged profile file (skipped, left on disk)."""
        return self._scan()[1]

    def signature(self) -> tuple:
        """Cheap token that changes whenever a profile file is added, replaced or removed."""
        entries = []
        with os.scandir(self.folder) as it:
            for entry in it:
                if _is_profile_file(entry.name):
                    st = entry.stat()
                    entries.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(sorted(entries))

    # ---- writing -------------------------------------------------------------------------
    def check_add(self, name: str) -> str:
        """Validate ``name`` for enrollment (before any recording); returns the clean name."""
        clean = validate_name(name)
        path = self._path(clean)
        if path.exists() and self._load(path)[0] is None:
            raise BadInput("corrupt_profile",
                           f"The stored profile for {clean!r} ({path}) is damaged. Remove it first: "
                           f"jarvis speakers remove {_quote(clean)}, then enroll again.")
        return clean

    def add(self, name: str, embeddings: list[np.ndarray]) -> int:
        """Append embeddings to ``name`` (creating the person); returns the new total."""
        clean = validate_name(name)
        vectors = [_check_embedding(e, i) for i, e in enumerate(embeddings)]
        if not vectors:
            raise BadInput("no_embeddings", "Nothing to enroll: give at least one recording.")
        with self._locked():
            self.check_add(clean)
            path = self._find(clean) or self._path(clean)
            now = _now()
            profile = self._load(path)[0] if path.exists() else None
            if profile is None:
                profile = {"schema_version": SCHEMA_VERSION, "name": clean, "created": now,
                           "embeddings": []}
            profile["embeddings"] = profile["embeddings"] + [_to_list(v) for v in vectors]
            profile["updated"] = now
            atomic_write_json(path, profile)
        log.info("enrolled %d embedding(s) for %r (%d total)", len(vectors), clean,
                 len(profile["embeddings"]))
        return len(profile["embeddings"])

    def remove(self, name: str) -> None:
        """Delete ``name``'s profile (a damaged one too)."""
        clean = validate_name(name)
        with self._locked():
            path = self._find(clean)
            if path is None:
                raise self._unknown(clean)
            path.unlink()
        log.info("removed speaker %r", clean)

    def rename(self, old: str, new: str) -> None:
        old_clean, new_clean = validate_name(old), validate_name(new)
        with self._locked():
            profile = self._require(old_clean)
            old_path, new_path = self._find(old_clean), self._path(new_clean)
            if _key(new_clean) != _key(old_clean) and self._find(new_clean) is not None:
                raise BadInput("speaker_exists",
                               f"A speaker named {new_clean!r} is already enrolled. Pick another name "
                               f"or remove it first: jarvis speakers remove {_quote(new_clean)}")
            profile["name"], profile["updated"] = new_clean, _now()
            atomic_write_json(new_path, profile)
            if new_path != old_path:
                old_path.unlink()
        log.info("renamed speaker %r to %r", old_clean, new_clean)

    # ---- internals -----------------------------------------------------------------------
    def _path(self, clean: str) -> Path:
        key = _key(clean)
        slug = re.sub(r"[^a-z0-9]+", "-", key).strip("-")[:32] or "speaker"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
        return self.folder / f"{slug}-{digest}.json"

    def _find(self, clean: str) -> Path | None:
        """The file holding ``clean``: its own name, else any valid file whose name matches."""
        path = self._path(clean)
        if path.exists():
            return path
        found = self._scan()[0].get(_key(clean))
        return found[1] if found else None

    def _require(self, name: str) -> dict:
        clean = validate_name(name)
        path = self._find(clean)
        if path is None:
            raise self._unknown(clean)
        profile, why = self._load(path)
        if profile is None:
            raise BadInput("corrupt_profile",
                           f"The stored profile for {clean!r} is damaged ({why}). Remove it: "
                           f"jarvis speakers remove {_quote(clean)}, then enroll again.")
        return profile

    def _unknown(self, clean: str) -> BadInput:
        names = self.names()
        if names:
            return BadInput("unknown_speaker",
                            f"No enrolled speaker named {clean}. Enrolled: {', '.join(names)}.")
        return BadInput("unknown_speaker", f"No speakers enrolled yet; {ENROLL_HINT}")

    def _scan(self) -> tuple[dict[str, tuple[dict, Path]], list[str]]:
        good: dict[str, tuple[dict, Path]] = {}
        problems: list[str] = []
        for path in sorted(self.folder.iterdir()):
            if not _is_profile_file(path.name):
                continue
            profile, why = self._load(path)
            if profile is not None and _key(profile["name"]) in good:
                profile, why = None, f"same name as {good[_key(profile['name'])][1].name}"
            if profile is None:
                problems.append(f"{path}: damaged speaker profile ({why}), skipped. "
                                "Remove that person (jarvis speakers remove NAME) or delete the file, "
                                "then enroll again.")
                self._warn_once(path, why)
                continue
            good[_key(profile["name"])] = (profile, path)
        return good, problems

    def _load(self, path: Path) -> tuple[dict | None, str]:
        """(profile, "") or (None, why) — never raises for bad content."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, f"unreadable: {type(exc).__name__}"
        why = _profile_problem(data)
        return (None, why) if why else (data, "")

    def _warn_once(self, path: Path, why: str) -> None:
        try:
            token = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return
        if token not in self._warned:
            self._warned.add(token)
            log.warning("skipping damaged speaker profile %s: %s", path, why)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers in this process and, where fcntl exists, across processes."""
        with self._lock:
            if fcntl is None:
                yield
                return
            fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)


def validate_name(name: str) -> str:
    """Clean name (stripped, inner white space collapsed) or ``BadInput("bad_name")``."""
    if not isinstance(name, str):
        raise BadInput("bad_name", "A speaker name must be text, e.g. jarvis enroll Alice alice.wav")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name if ch not in " \t"):
        raise BadInput("bad_name", f"Speaker name {name!r} contains control characters; "
                                   "use letters, digits, spaces or punctuation.")
    clean = " ".join(name.split())
    if not clean:
        raise BadInput("bad_name", "The speaker name is empty; give a name, e.g. jarvis enroll Alice alice.wav")
    if len(clean) > MAX_NAME_LEN:
        raise BadInput("bad_name", f"Speaker name is {len(clean)} characters; use at most {MAX_NAME_LEN}.")
    if clean.casefold() in RESERVED_NAMES:
        raise BadInput("bad_name", f"{clean!r} is reserved for voices nobody enrolled; pick another name.")
    return clean


def _key(clean: str) -> str:
    return unicodedata.normalize("NFKC", clean).casefold()


def _is_profile_file(filename: str) -> bool:
    return filename.endswith(".json") and not filename.startswith(".")


def _profile_problem(data: object) -> str:
    if not isinstance(data, dict):
        return "not a JSON object"
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return f"made by a newer Jarvis (schema_version {version})"
    if version != SCHEMA_VERSION:
        return f"schema_version {version!r}, expected {SCHEMA_VERSION}"
    name = data.get("name")
    try:
        if validate_name(name) != name:
            return "name is not clean"
    except BadInput:
        return "bad name"
    embs = data.get("embeddings")
    if not isinstance(embs, list) or not embs:
        return "no embeddings"
    try:
        arr = np.asarray(embs, dtype=np.float32)
    except (TypeError, ValueError):
        return "embeddings are not numbers"
    if arr.ndim != 2 or arr.shape[1] != EMBEDDING_SIZE:
        return f"embeddings have shape {arr.shape}, expected (n, {EMBEDDING_SIZE})"
    if not np.all(np.isfinite(arr)) or np.any(np.linalg.norm(arr, axis=1) == 0):
        return "embeddings hold NaN, infinite or zero vectors"
    return ""


def _check_embedding(emb: np.ndarray, index: int) -> np.ndarray:
    vec = np.asarray(emb, dtype=np.float32)
    if vec.shape != (EMBEDDING_SIZE,):
        raise BadInput("bad_embedding", f"Embedding {index} has shape {vec.shape}, expected ({EMBEDDING_SIZE},).")
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0:
        raise BadInput("bad_embedding", f"Embedding {index} is zero, NaN or infinite.")
    return vec / norm


def _centroid(embeddings: list) -> np.ndarray:
    mean = np.asarray(embeddings, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def _to_list(vec: np.ndarray) -> list[float]:
    return [round(float(x), 7) for x in vec]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _quote(name: str) -> str:
    return f'"{name}"' if any(ch in name for ch in " '\"") else name
