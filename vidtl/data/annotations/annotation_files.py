"""Reading annotation files and finding the folder that holds them; errors name the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vidtl.core import safe_files
from vidtl.data.annotations.formats import DatasetLayoutError


def read_lines(path: Path) -> list[str]:
    """The lines of annotation file ``path`` (a byte-order mark dropped), read as a file vidtl
    did not write (:mod:`vidtl.core.safe_files`: a regular file, each line and the whole file
    bounded); every failure is a :class:`DatasetLayoutError` naming the file."""
    try:
        return safe_files.read_lines(path, "annotation file")
    except FileNotFoundError:
        raise DatasetLayoutError(f"annotation file {path} does not exist") from None
    except safe_files.RefusedFileError as error:
        raise DatasetLayoutError(str(error)) from None
    except OSError as error:
        raise DatasetLayoutError(f"cannot read annotation file {path}: {error.strerror}") \
            from None


def find_annotation_dir(
    root: Path,
    annotation_dir: str | Path | None,
    marker: str,
    candidates: Iterable[str],
    layout: str,
) -> Path:
    """The folder holding ``marker`` (a file name or glob): the given one or one under root."""
    if annotation_dir is not None:
        folder = Path(annotation_dir).expanduser()
        if not folder.is_absolute() and not folder.exists():
            folder = root / folder
        if not any(folder.glob(marker)):
            raise DatasetLayoutError(
                f"no {marker} in annotation folder {folder}; expected {layout}"
            )
        return folder
    searched = [root / c for c in candidates] + [root]
    for folder in searched:
        if folder.is_dir() and any(folder.glob(marker)):
            return folder
    raise DatasetLayoutError(
        f"no {marker} found under {root} (searched {', '.join(str(s) for s in searched)}); "
        f"expected {layout}; set data.annotation_dir to the folder that holds it"
    )
