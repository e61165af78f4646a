"""Tiny multi-label datasets written by the tests: a CSV list with several labels per row, and
the official Charades layout (classes file, train/test CSVs with timed actions, <id>.mp4)."""

from __future__ import annotations

from pathlib import Path

from helpers import make_video

TAGS = ["bird", "cat", "dog"]
CHARADES_HEADER = ("id,subject,scene,quality,relevance,verified,script,objects,descriptions,"
                   "actions,length")


def tags_of(number: int) -> list[str]:
    """Video ``number``'s tags: the bits of ``number`` (at least one)."""
    return [tag for bit, tag in enumerate(TAGS) if (number >> bit) & 1] or [TAGS[0]]


def write_multilabel_csv(root: Path, videos: int = 18) -> Path:
    """``videos`` real encoded clips under ``root`` and ``train.csv`` / ``val.csv`` /
    ``test.csv`` (``path,"tag1;tag2"``): the first 10 train, then 4 val, the rest test."""
    rows: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for number in range(videos):
        subset = "train" if number < 10 else "val" if number < 14 else "test"
        make_video(root / "clips" / f"v{number:02d}.mp4", seed=number)
        rows[subset].append(f'clips/v{number:02d}.mp4,"{";".join(tags_of(number))}"')
    for subset, lines in rows.items():
        (root / f"{subset}.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    return root


def charades_actions(number: int) -> str:
    """Video ``number``'s actions cell: class ``c000`` in its first second, ``c001`` in its
    second, and ``c002`` over the whole video for odd numbers; none for every fifth video."""
    if number % 5 == 4:
        return ""
    actions = ["c000 0.00 0.90", "c001 1.10 2.00"]
    if number % 2:
        actions.append("c002 0.00 2.00")
    return ";".join(actions)


def write_charades(root: Path, train: int = 8, test: int = 4) -> Path:
    """The Charades layout under ``root``: 3 classes, ``train`` + ``test`` videos of 2 s
    (50 frames at 25 fps) in ``Charades_v1_480/``."""
    (root / "Charades_v1_classes.txt").write_text(
        "c000 Holding some clothes\nc001 Opening a door\nc002 Sitting on a chair\n")
    for name, first, count in (("train", 0, train), ("test", train, test)):
        lines = [CHARADES_HEADER]
        for number in range(first, first + count):
            video = f"V{number:04d}"
            make_video(root / "Charades_v1_480" / f"{video}.mp4", num_frames=50, seed=number)
            lines.append(f'{video},P1,Kitchen,6,7,Yes,"A person, then a door",clothes;door,'
                         f'"desc",{charades_actions(number)},2.00')
        (root / f"Charades_v1_{name}.csv").write_text("\n".join(lines) + "\n")
    return root
