"""Multi-label datasets: the Charades format (actions with spans) and CSV lists whose label
cells hold several labels (``"jump;wave"``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.index import load_index
from vidtl.data.annotations.records import NO_LABEL, TimedLabel

HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
CLASSES = "c000 Holding some clothes\nc001 Opening a door\nc002 Sitting, on a chair\n" \
          "c003 Opening a door\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")  # format loading does not decode it
    return path


def row(video_id: str, actions: str, length: str = "30.5") -> str:
    return (f'{video_id},HR43,Kitchen,6,7,Yes,"A person opens a door, then sits.",'
            f'"door;chair","They open it, and sit.","{actions}",{length}\n')


@pytest.fixture
def charades(tmp_path: Path) -> Path:
    root = tmp_path / "charades"
    write(root / "Charades_v1_classes.txt", CLASSES)
    write(root / "Charades_v1_train.csv", HEADER + row("46GP8", "c002 11.90 21.20;c000 0.00 12.60")
          + row("N11GT", "c001 1.5 40.0", length="31.2") + row("0IH69", ""))
    write(root / "Charades_v1_test.csv", HEADER + row("YSKX3", "c003 0 3") + row("GONE1", ""))
    for video_id in ("46GP8", "N11GT", "0IH69", "YSKX3"):
        touch(root / "Charades_v1_480" / f"{video_id}.mp4")
    return root


def test_charades_classes_actions_and_spans(charades: Path):
    index = load_index("charades", charades)
    assert index.class_names == ["Holding some clothes", "Opening a door", "Sitting, on a chair",
                                 "Opening a door (c003)"]  # a repeated name made unique
    first, second, empty = index.subsets["train"]
    assert first.path == charades / "Charades_v1_480" / "46GP8.mp4"
    assert first.label == 2 and first.group is None
    assert first.actions == (TimedLabel(2, 11.9, 21.2), TimedLabel(0, 0.0, 12.6))
    assert first.labels() == [0, 2] and first.labels_between(0.0, 5.0) == [0]
    assert second.actions == (TimedLabel(1, 1.5, 40.0),)  # past the length column: allowed
    assert (empty.label, empty.actions, empty.multilabel) == (NO_LABEL, (), True)
    assert index.multilabel


def test_charades_val_is_the_test_list_and_missing_videos_are_reported(charades: Path):
    index = load_index("charades", charades)
    assert index.subsets["val"] == index.subsets["test"]
    assert [r.video_id for r in index.subsets["test"]] == ["YSKX3"]
    assert index.missing == [charades / "Charades_v1_480" / "GONE1.mp4"]
    with pytest.raises(DatasetLayoutError, match="1 annotated videos are missing"):
        load_index("charades", charades, strict=True)


def test_charades_options_name_the_folders(charades: Path, tmp_path: Path):
    annotations = tmp_path / "elsewhere"
    annotations.mkdir()
    for name in ("Charades_v1_classes.txt", "Charades_v1_train.csv", "Charades_v1_test.csv"):
        (charades / name).rename(annotations / name)
    (charades / "Charades_v1_480").rename(charades / "videos")
    index = load_index("charades", charades, annotation_dir=annotations, video_dir="videos")
    assert index.subsets["train"][0].path == charades / "videos" / "46GP8.mp4"
    assert [p.name for p in index.missing] == ["GONE1.mp4"]
    with pytest.raises(DatasetLayoutError, match=r"Charades_v1_classes.txt does not exist"):
        load_index("charades", charades)


@pytest.mark.parametrize("actions, expected", [
    ("c009 1 2", r"Charades_v1_train.csv:3: class id 'c009' is not in"),
    ("c001 one 2", r"Charades_v1_train.csv:3: action 'c001 one 2': start and end must be"),
    ("c001 1 nan", r"Charades_v1_train.csv:3: .*must be seconds"),
    ("c001 -3 -1", r"Charades_v1_train.csv:3: .*must be seconds"),
    ("c001 5 2", r"Charades_v1_train.csv:3: action 'c001 5 2' starts after it ends"),
    ("c001 1 2;", r"Charades_v1_train.csv:3: expected actions"),
    ("c001 1", r"Charades_v1_train.csv:3: expected actions"),
])
def test_charades_bad_actions_name_file_and_line(charades: Path, actions: str, expected: str):
    write(charades / "Charades_v1_train.csv", HEADER + row("46GP8", "") + row("N11GT", actions))
    with pytest.raises(DatasetLayoutError, match=expected):
        load_index("charades", charades)


@pytest.mark.parametrize("classes, expected", [
    ("c000 Holding some clothes\nc001\n", r"classes.txt:2: expected 'c<number> <class name>'"),
    ("c000 A\n\nclass1 B\n", r"classes.txt:3: expected 'c<number> <class name>'"),
    ("c000 A\nc000 B\n", r"classes.txt:2: class id 'c000' is listed twice"),
    ("c000 A\nc999999 B\n", r"classes.txt:2: class id 'c999999' asks for more than"),
    ("c000 A\nc002 B\n", r"classes.txt: class ids must be c000 .* c001 is missing"),
    ("\n", r"classes.txt lists no classes"),
])
def test_charades_bad_classes_file(charades: Path, classes: str, expected: str):
    write(charades / "Charades_v1_classes.txt", classes)
    with pytest.raises(DatasetLayoutError, match=expected):
        load_index("charades", charades)


def test_charades_bad_csv(charades: Path):
    test_csv = charades / "Charades_v1_test.csv"
    write(test_csv, "id,subject,length\nYSKX3,HR43,3\n")
    with pytest.raises(DatasetLayoutError, match=r"test.csv:1: expected a header with id and"):
        load_index("charades", charades)
    write(test_csv, HEADER + row("YSKX3", "") + "ZZZ,HR43\n")
    with pytest.raises(DatasetLayoutError, match=r"test.csv:3: expected 11 columns"):
        load_index("charades", charades)
    write(test_csv, HEADER + row("../../etc", ""))
    with pytest.raises(DatasetLayoutError, match=r"test.csv:2: id '../../etc' is not a plain"):
        load_index("charades", charades)
    write(test_csv, HEADER + row("YSKX3", "") + row("YSKX3", ""))
    with pytest.raises(DatasetLayoutError, match=r"test.csv:3: id 'YSKX3' is listed twice"):
        load_index("charades", charades)
    test_csv.unlink()
    with pytest.raises(DatasetLayoutError, match=r"Charades_v1_test.csv does not exist"):
        load_index("charades", charades)


@pytest.fixture
def csv_root(tmp_path: Path) -> Path:
    root = tmp_path / "c"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        touch(root / name)
    return root


def test_csv_multilabel_cells(csv_root: Path):
    train = write(csv_root / "train.csv", 'path,label\na.mp4,"wave;jump"\nb.mp4,run\n'
                                          'c.mp4,jump; wave ;jump\n')
    val = write(csv_root / "val.csv", 'a.mp4,"run;wave",1.5,3.0\nb.mp4,jump;jump\n')
    extra = write(csv_root / "extra.csv", "c.mp4,run;jump\n")
    index = load_index("csv", csv_root, train_list=train, val_list=val, extra_val_lists=[extra])
    assert index.class_names == ["jump", "run", "wave"]
    first, single, repeated = index.subsets["train"]
    assert (first.label, first.actions) == (2, (TimedLabel(2), TimedLabel(0)))
    assert first.labels() == [0, 2] and first.labels_between(0, 1) == [0, 2]
    assert (single.label, single.actions, single.multilabel) == (1, (), False)
    assert repeated.actions == (TimedLabel(0), TimedLabel(2))  # each distinct label once
    windowed, one = index.subsets["val"]
    assert (windowed.start_sec, windowed.end_sec, windowed.labels()) == (1.5, 3.0, [1, 2])
    assert (one.label, one.actions) == (0, ())  # one distinct label: a single-label record
    assert index.subsets["val/extra"][0].labels() == [0, 1]
    assert index.multilabel


def test_csv_multilabel_integer_labels(csv_root: Path):
    train = write(csv_root / "train.csv", 'a.mp4,"0;3"\nb.mp4,1\n')
    val = write(csv_root / "val.csv", "a.mp4,2;03\n")
    index = load_index("csv", csv_root, train_list=train, val_list=val)
    assert index.class_names == ["0", "1", "2", "3"]
    assert index.subsets["val"][0].actions == (TimedLabel(2), TimedLabel(3))
    write(train, "a.mp4,0;x\n")  # not all integers: names
    assert load_index("csv", csv_root, train_list=train, val_list=train).class_names == ["0", "x"]


def test_csv_single_label_lists_stay_single_label(csv_root: Path):
    train = write(csv_root / "train.csv", "a.mp4,jump\nb.mp4,run\n")
    index = load_index("csv", csv_root, train_list=train, val_list=train)
    assert [(r.label, r.actions) for r in index.subsets["train"]] == [(0, ()), (1, ())]
    assert not index.multilabel


@pytest.mark.parametrize("val_text, expected", [
    ('a.mp4,"jump;;run"\n', r"val.csv:1: expected labels 'label1;label2' without empty"),
    ("a.mp4,jump\nb.mp4,jump;\n", r"val.csv:2: expected labels"),
    ("a.mp4,;jump\n", r"val.csv:1: expected labels"),
    ("a.mp4,jump;swim\n", r"val.csv:1: label 'swim' never occurs"),
    ("a.mp4,jump;run,3,1\n", r"val.csv:1: start and end must be seconds, 0 <= start <= end"),
    ("a.mp4,jump,-1,2\n", r"val.csv:1: start and end must be seconds"),
    ("a.mp4,jump,0,inf\n", r"val.csv:1: start and end must be seconds"),
])
def test_csv_multilabel_errors_name_file_and_line(csv_root: Path, val_text: str, expected: str):
    train = write(csv_root / "train.csv", "a.mp4,jump;run\n")
    val = write(csv_root / "val.csv", val_text)
    with pytest.raises(DatasetLayoutError, match=expected):
        load_index("csv", csv_root, train_list=train, val_list=val)
