"""Reading annotation files and finding the folder that holds them; errors name the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vidtl.data.annotations.formats import DatasetLayoutError


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is not data
    except FileNotFoundError:
        raise DatasetLayoutError(f"annotation file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetLayoutError(f"cannot read annotation file {path}: {error}") from None


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
