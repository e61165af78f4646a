"""The plain records that dataset formats produce and the datamodule consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video (or a time window of one).

    ``start_sec``/``end_sec`` restrict sampling to a window of an untrimmed video; ``None`` means
    the whole file.
    """

    path: Path
    label: int
    start_sec: float | None = None
    end_sec: float | None = None

    @property
    def video_id(self) -> str:
        return self.path.stem


@dataclass
class VideoIndex:
    """Everything a format reads from a dataset's annotations.

    ``missing`` lists annotation entries whose file does not exist (they are not in the subsets).
    """

    class_names: list[str]
    subsets: dict[str, list[VideoRecord]]
    missing: list[Path] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
