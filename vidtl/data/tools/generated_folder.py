"""A folder that vidtl generates (the synthetic datasets): made whole or not at all, reused
while its spec holds, and replaced only when it holds nothing but what vidtl wrote there.

:func:`ensure_generated` makes the folder in a fresh staging folder of its own beside it and
renames it into place when complete, so a crash or a concurrent job never leaves a half-made
one. Its marker file records the spec it was made from and the SHA-256 of every file written.
A folder made from another spec is replaced only when it holds exactly those files, unchanged,
and nothing else (no other file, no symbolic link): vidtl deletes only what it wrote, and the
staging folders of generations that were killed before they finished. A marker
is read as a file vidtl did not write (a regular file of bounded size); a folder that holds
anything else, or a marker that lists no files, is an error naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidtl.core import safe_files
from vidtl.core.atomic import process_alive
from vidtl.core.own_files import file_sha256

log = logging.getLogger(__name__)
MAX_MARKER_BYTES = 16 * safe_files.MiB


class GeneratedFolderError(FileExistsError):
    """A folder in the way of a generated one that vidtl cannot tell is its own."""


def _files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Every regular file under ``folder`` (relative name -> path), and what else is there
    (symbolic links, FIFOs, devices...), without following links."""
    files, other = {}, []
    for directory, folders, names in os.walk(folder, followlinks=False):
        for name in names + [f for f in folders if os.path.islink(os.path.join(directory, f))]:
            path = Path(directory) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and not path.is_symlink():
                files[relative] = path
            else:
                other.append(relative)
    return files, other


def _read_marker(marker: Path) -> dict[str, Any] | None:
    """The marker's record, or ``None`` when it is not a JSON object."""
    try:
        record = json.loads(safe_files.read_bytes(marker, MAX_MARKER_BYTES, "marker"))
    except (ValueError, OSError):
        return None
    return record if isinstance(record, dict) else None


def _owned_files(root: Path, marker: Path, names: re.Pattern[str]) -> list[str]:
    """The files of ``root`` (relative names) when it holds exactly what its marker lists,
    unchanged, each named as the generator names its files (else a
    :class:`GeneratedFolderError`)."""
    record = _read_marker(marker)
    listed = record.get("files") if record else None
    if not isinstance(listed, dict):
        raise GeneratedFolderError(
            f"{root} was made from another spec, and its marker {marker.name} does not list "
            f"the files vidtl wrote (an older vidtl, or not vidtl's); remove the folder or "
            f"point data.root elsewhere")
    files, other = _files(root)
    files.pop(marker.name, None)
    unknown = sorted(name for name in files if name not in listed or not names.fullmatch(name))
    changed = [name for name, path in files.items()
               if name in listed and listed[name] != file_sha256(path)]
    missing = sorted(set(listed) - set(files))
    if unknown or other or changed or missing:
        kind = ("holds files vidtl did not write" if unknown or other
                else "holds files changed since")
        first = (unknown or other or changed or missing)[0]
        raise GeneratedFolderError(
            f"{root} {kind} (e.g. {first}); vidtl replaces a generated folder only when it "
            f"holds just what it wrote: remove the folder or point data.root elsewhere")
    return list(files)


def _remove_owned(root: Path, files: list[str], marker: Path) -> None:
    """Delete the marker, the files vidtl wrote, the folders they leave empty, and ``root``,
    through folder descriptors that never follow a link: a folder swapped for a link while the
    generator ran stops the deletion before anything outside ``root`` is touched."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    top = os.open(root, flags)
    folders = {str(Path(name).parent) for name in files} - {"."}
    try:
        for name in [marker.name, *files]:
            *parents, last = name.split("/")
            with _folder(top, parents, flags) as folder:
                os.unlink(last, dir_fd=folder)
        for name in sorted(folders, key=lambda folder: -folder.count("/")):
            *parents, last = name.split("/")
            with _folder(top, parents, flags) as folder:
                os.rmdir(last, dir_fd=folder)
    finally:
        os.close(top)
    root.rmdir()


@contextmanager
def _folder(top: int, parts: list[str], flags: int) -> Iterator[int]:
    """A descriptor of the folder ``parts`` below the folder ``top``, never through a link."""
    opened: list[int] = []
    try:
        for part in parts:
            opened.append(os.open(part, flags, dir_fd=opened[-1] if opened else top))
        yield opened[-1] if opened else top
    finally:
        for descriptor in opened:
            os.close(descriptor)


def _remove_dead_stagings(root: Path) -> None:
    """Delete the staging folders that generations of ``root`` killed before the end left
    (``.<name>.partial-<pid>-<random>``, of a process that no longer runs)."""
    pattern = re.compile(rf"\.{re.escape(root.name)}\.partial-(\d+)-\w+")
    for folder in root.parent.iterdir():
        match = pattern.fullmatch(folder.name)
        if match and folder.is_dir() and not folder.is_symlink() \
                and not process_alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


def ensure_generated(root: str | Path, marker_name: str, spec: dict[str, Any],
                     generate: Callable[[Path], None], description: str,
                     names: re.Pattern[str]) -> Path:
    """The folder ``root`` made by ``generate(folder)`` from ``spec`` (see the module
    docstring); reused when its marker records the same ``spec``. ``names`` matches every file
    name (relative, with ``/``) the generator writes: a folder to replace holds no other."""
    root = Path(root).expanduser().resolve()  # a link to the folder: the folder itself
    marker = root / marker_name
    stale: list[str] | None = None
    if os.path.lexists(marker):
        record = _read_marker(marker) if not marker.is_symlink() else None
        if record is not None and record.get("spec", record) == spec:
            return root
        stale = _owned_files(root, marker, names)
        log.info("%s at %s was made from another spec; making it again", description, root)
    elif os.path.lexists(root) and (not root.is_dir() or root.is_symlink() or any(root.iterdir())):
        raise GeneratedFolderError(
            f"{root} exists, is not empty and is not a finished {description} (no "
            f"{marker_name}); remove it or point data.root elsewhere")
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_stagings(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-{os.getpid()}-",
                                    dir=root.parent))
    try:
        log.info("generating the %s in %s", description, root)
        generate(staging)
        files, _ = _files(staging)
        record = {"spec": spec, "files": {name: file_sha256(path) for name, path in files.items()}}
        (staging / marker_name).write_text(json.dumps(record, indent=1) + "\n")
        if stale is not None:
            try:
                _remove_owned(root, stale, marker)
            except OSError as error:
                raise GeneratedFolderError(
                    f"{root} changed while vidtl made the dataset again ({error.strerror}: "
                    f"{error.filename}); nothing outside it was touched; remove the folder or "
                    f"point data.root elsewhere") from None
        elif root.is_dir():
            root.rmdir()  # empty (checked above)
        staging.rename(root)
    except OSError:  # another process (a DDP rank, a sweep job) may have finished first
        record = _read_marker(marker)
        if record is None or record.get("spec", record) != spec:
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # ours: made by mkdtemp; gone if renamed
    return root
