"""Stale files of neurosim's cache: what ``neurosim datasets clean`` lists (``--dry-run``) and removes.

Entries of the frame cache are never removed by use, only replaced under the same name: an entry that no run can
ask for again stays on disk. :func:`stale_entries` finds those, each a group of neurosim's own files:

* **old names**: everything neurosim cached under ``<cache>/frames/folder:/...`` — a folder dataset's entries were
  named by the dataset, ``folder:/path/to/rec``, a chain of folders; they are ``frames/folder-rec_<split>_<hash>``
  now, so no run reads the old ones;
* **the old format**: ``frames/*.npz`` (FRAMES_FORMAT 1; removed by the next entry stored in that folder anyway);
* **data that changed or is gone**: an entry whose key is one neurosim's datasets make
  (:func:`~neurosim.data.pipeline.frame_cache_key`: its data's absolute path, ``source``, and that data's
  fingerprint, :func:`~neurosim.data.pipeline.source_fingerprint`, when it was built), where the data now has
  another fingerprint (recordings added, replaced or removed: the frames are built again under another name) or
  none (the folder is gone), or whose key is of an older format than this neurosim's;
* **old event digits**: ``event_digits_v<N>.npz`` of an older version than this neurosim's.

Only files named as neurosim names them there are taken (a key file ``<name>_<16 hex digits>.json`` and its
``.frames.bin`` and ``.labels.bin``, an ``.npz``); anything else in the cache (files of one's own, downloaded
datasets under ``<cache>/datasets/``, entries being written, whose key file does not exist yet) stays, as do
links in it, which are not followed (the cache folder and its ``frames/`` may themselves be links, to another
disk: neurosim reads and writes through them). A folder of the old chain goes only once nothing is left in it. The
keys of one's own :func:`~neurosim.data.frames.cached_frames` calls, whatever their fields, and the entries and event
digits of a newer neurosim sharing the cache (another environment) are not this command's to judge: they stay.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from neurosim.data._cache import default_cache_dir

__all__ = ["StaleEntry", "remove_entries", "stale_entries"]

_PARTS = ("json", "frames.bin", "labels.bin")
_ENTRY = re.compile(r"^(?P<stem>.+_[0-9a-f]{16})\.(?P<part>json|frames\.bin|labels\.bin|npz)$")
_CURRENT = re.compile(r"^(?P<stem>[A-Za-z0-9._-]+_[0-9a-f]{16})\.(?P<part>json|frames\.bin|labels\.bin)$")
_DIGITS = re.compile(r"^event_digits_v(?P<version>\d+)\.npz$")
# the fields of a key neurosim.data.pipeline.frame_cache_key makes (beside "format" and "arrays", which the entry's key
# file adds): only such a key's "source" is the location of a neurosim dataset, and its "fingerprint" that location's
# source_fingerprint, so only its data can be judged changed or gone
_PIPELINE_KEY = frozenset({"dataset", "split", "sensor_size", "n_time_bins", "source", "fingerprint"})


@dataclass(frozen=True)
class StaleEntry:
    """One stale cache entry: its files (a key file first) and why no run reads it."""

    files: tuple[Path, ...]
    reason: str

    @property
    def size_bytes(self) -> int:
        return sum(_regular_size(f) or 0 for f in self.files)

    def describe(self, root: Path) -> str:
        """Its first file (relative to the cache folder ``root``), then the other files' endings:
        ``frames/x_train_<hash>.json +.frames.bin +.labels.bin``."""
        first = self.files[0]
        name = first.relative_to(root) if first.is_relative_to(root) else first
        m = _ENTRY.match(first.name)
        stem = m["stem"] if m else first.stem
        return str(name) + "".join(f" +{f.name[len(stem):]}" if f.name.startswith(stem) else f" +{f.name}"
                                   for f in self.files[1:])


def _regular_size(path: Path) -> int | None:
    """``path``'s size where it is a regular file (not a link), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _regular_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if _regular_size(p) is not None)
    except OSError:
        return []


def _folder(path: Path) -> bool:
    """Whether ``path`` is a folder, a link to one included: the cache folder and its ``frames/``, which neurosim reads
    and writes through, as one moved to another disk is."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def stale_entries(cache_dir: str | os.PathLike | None = None) -> list[StaleEntry]:
    """The stale entries of the neurosim cache ``cache_dir`` (default: :func:`default_cache_dir`), as the module
    docstring says: reads the key files and the fingerprints of the data they name (``stat`` of a folder's files),
    removes nothing."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    frames = root / "frames"
    entries = _old_named(frames / "folder:") if _folder(frames) else []
    if _folder(frames):
        files = _regular_files(frames)
        entries += [StaleEntry((f,), "of the old frame-cache format (one .npz per entry)") for f in files
                    if f.suffix == ".npz" and _ENTRY.match(f.name)]
        entries += _changed(frames, files)
    if _folder(root):
        from neurosim.data.event_digits import VERSION

        # (a newer version's are a newer neurosim's, sharing this cache: they stay)
        entries += [StaleEntry((f,), f"the event digits of version {m['version']}, older than this neurosim's "
                                     f"{VERSION}")
                    for f in _regular_files(root) if (m := _DIGITS.match(f.name)) and int(m["version"]) < VERSION]
    return entries


def _old_named(old: Path) -> list[StaleEntry]:
    """The entries under ``frames/folder:/`` (names of before a folder dataset's entries were ``folder-<name>``)."""
    if not _real_folder(old):
        return []
    groups: dict[Path, list[Path]] = {}
    for folder, dirs, names in os.walk(old):  # (links to folders are not followed)
        dirs.sort()
        for name in sorted(names):
            m = _ENTRY.match(name)
            path = Path(folder) / name
            if m and _regular_size(path) is not None:
                groups.setdefault(Path(folder) / m["stem"], []).append(path)
    return [StaleEntry(tuple(sorted(files, key=lambda f: not f.name.endswith(".json"))),
                       "named as before a folder dataset's entries were folder-<name>_<split>_<hash>: no run reads "
                       "it") for files in groups.values()]


def _changed(frames: Path, files: list[Path]) -> list[StaleEntry]:
    """The current-format entries of ``frames`` whose data changed or is gone, or whose key is another format's."""
    from neurosim.data.frames import FRAMES_FORMAT
    from neurosim.data.pipeline import source_fingerprint

    parts: dict[str, list[Path]] = {}
    for f in files:
        m = _CURRENT.match(f.name)
        if m:
            parts.setdefault(m["stem"], []).append(f)
    fingerprints: dict[str, object] = {}
    out = []
    for stem, group in parts.items():
        key_file = frames / f"{stem}.json"
        if key_file not in group:  # (arrays whose key file is not written yet: an entry being built)
            continue
        try:
            key = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # unreadable: the run that asks for it rebuilds it in place
        if not isinstance(key, dict):
            continue
        form = key.get("format")
        if isinstance(form, int) and not isinstance(form, bool) and form < FRAMES_FORMAT:
            reason = f"of frame-cache format {form}, older than this neurosim's {FRAMES_FORMAT}"
        elif form != FRAMES_FORMAT:
            continue  # a newer neurosim's (sharing this cache), or a key of one's own with a "format" of its own
        elif _names_its_data(key):
            source = key["source"]
            if source not in fingerprints:
                try:
                    fingerprints[source] = source_fingerprint(Path(source))
                except OSError:
                    fingerprints[source] = None
            now = fingerprints[source]
            if now is not None and json.loads(json.dumps(now)) == key["fingerprint"]:
                continue
            reason = (f"its data, {source}, is gone or holds no files" if now is None else
                      f"its data, {source}, changed since (its frames now are another entry)")
        else:
            continue  # a key that names no data of neurosim's datasets (one's own cached_frames'): not this command's
        order = {part: i for i, part in enumerate(_PARTS)}
        out.append(StaleEntry(tuple(sorted(group, key=lambda f: order[f.name[len(stem) + 1:]])), reason))
    return out


def _names_its_data(key: dict) -> bool:
    """Whether ``key`` is one :func:`~neurosim.data.pipeline.frame_cache_key` made: its fields, an absolute ``source``
    (a dataset location, resolved) and a fingerprint as :func:`~neurosim.data.pipeline.source_fingerprint` gives
    one. A key of one's own :func:`~neurosim.data.frames.cached_frames` call may name its data otherwise (a URL, a
    path relative to some folder, a fingerprint of its own), which this command cannot check."""
    source = key.get("source")
    return (set(key) - {"format", "arrays"} == _PIPELINE_KEY and isinstance(source, str)
            and Path(source).is_absolute() and isinstance(key["fingerprint"], list))


def remove_entries(entries: list[StaleEntry], cache_dir: str | os.PathLike | None = None
                   ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Remove the files of ``entries`` (each key file first: an entry without it is never served), then the folders
    of the old ``frames/folder:/`` chain left empty. Returns the files removed and ``(file, why)`` of those that
    could not be."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    removed, failed = [], []
    for entry in entries:
        for f in entry.files:
            try:
                f.unlink()
                removed.append(f)
            except FileNotFoundError:
                pass
            except OSError as e:
                failed.append((f, e.strerror or str(e)))
    old = root / "frames" / "folder:"
    if _real_folder(old):
        for folder, _, _ in sorted(os.walk(old), key=lambda w: -len(Path(w[0]).parts)):  # the deepest first
            try:
                Path(folder).rmdir()  # only an empty one
            except OSError:
                pass
    return removed, failed


def size_text(n_bytes: int) -> str:
    """``n_bytes`` as ``12.3 MiB`` (B, KiB, MiB, GiB)."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop returns
