from pathlib import Path

import pytest

from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.index import load_index


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"video")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def ucf(tmp_path):
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\n2 HandstandPushups\n")
    for split in (1, 2, 3):
        write(lists / f"trainlist0{split}.txt",
              "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
              "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\n")
        write(lists / f"testlist0{split}.txt",
              "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n"
              "HandstandPushups/v_HandStandPushups_g01_c01.avi\n")
    for name in ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
                 "HandstandPushups/v_HandStandPushups_g08_c01.avi",
                 "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
                 "HandstandPushups/v_HandStandPushups_g01_c01.avi"]:
        touch(root / name)
    return root


def test_ucf101(ucf):
    index = load_index("ucf101", ucf, split=2)
    assert index.class_names == ["ApplyEyeMakeup", "HandstandPushups"]
    assert [r.label for r in index.subsets["train"]] == [0, 1]
    assert [r.label for r in index.subsets["test"]] == [0, 1]
    assert index.subsets["val"] == index.subsets["test"]
    assert index.subsets["test"][0].path == ucf / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"


def test_ucf101_annotation_dir_elsewhere(ucf, tmp_path):
    moved = tmp_path / "splits"
    (ucf / "ucfTrainTestlist").rename(moved)
    with pytest.raises(DatasetLayoutError, match="classInd.txt"):
        load_index("ucf101", ucf)
    assert load_index("ucf101", ucf, annotation_dir=moved).num_classes == 2


def test_ucf101_missing_files_counted_or_strict(ucf):
    (ucf / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi").unlink()
    index = load_index("ucf101", ucf)
    assert index.missing == [ucf / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"]
    assert len(index.subsets["test"]) == 1
    with pytest.raises(DatasetLayoutError, match="1 annotated videos are missing"):
        load_index("ucf101", ucf, strict=True)


def test_ucf101_bad_line_names_file_and_line(ucf):
    write(ucf / "ucfTrainTestlist/trainlist01.txt", "ApplyEyeMakeup/a.avi 1\nbroken line here\n")
    with pytest.raises(DatasetLayoutError, match=r"trainlist01.txt:2: expected"):
        load_index("ucf101", ucf)
    write(ucf / "ucfTrainTestlist/trainlist01.txt", "ApplyEyeMakeup/a.avi 7\n")
    with pytest.raises(DatasetLayoutError, match=r"trainlist01.txt:1: label '7'"):
        load_index("ucf101", ucf)


def test_ucf101_unreadable_split_file(ucf):
    (ucf / "ucfTrainTestlist/testlist01.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="testlist01.txt does not exist"):
        load_index("ucf101", ucf)
    (ucf / "ucfTrainTestlist/trainlist01.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DatasetLayoutError, match="trainlist01.txt:1: not UTF-8 text"):
        load_index("ucf101", ucf)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_index("ucf101", tmp_path / "nowhere")


def test_hmdb51(tmp_path):
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    write(splits / "brush_hair_test_split1.txt", "a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    write(splits / "cartwheel_test_split1.txt", "d.avi 1 \ne.avi 2 \n")
    for cls, video in [("brush_hair", "a.avi"), ("brush_hair", "b.avi"), ("brush_hair", "c.avi"),
                       ("cartwheel", "d.avi"), ("cartwheel", "e.avi")]:
        touch(root / cls / video)
    index = load_index("hmdb51", root, split=1)
    assert index.class_names == ["brush_hair", "cartwheel"]
    assert [(r.path.name, r.label) for r in index.subsets["train"]] == [("a.avi", 0), ("d.avi", 1)]
    assert [(r.path.name, r.label) for r in index.subsets["test"]] == [("b.avi", 0), ("e.avi", 1)]
    write(splits / "cartwheel_test_split1.txt", "d.avi 1\ne.avi 3\n")
    with pytest.raises(DatasetLayoutError, match=r"cartwheel_test_split1.txt:2: expected"):
        load_index("hmdb51", root, split=1)
    with pytest.raises(DatasetLayoutError, match=r"_test_split2.txt"):
        load_index("hmdb51", root, split=2)


KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"


def test_kinetics_folder_of_csvs_nested_and_flat(tmp_path):
    root = tmp_path / "k400"
    write(root / "annotations/train.csv", KINETICS_HEADER
          + "abseiling,aaa,10,20,train\n\"air drumming\",bbb,0,10,train\n")
    write(root / "annotations/validate.csv", KINETICS_HEADER + "abseiling,ccc,5,15,val\n")
    touch(root / "train/abseiling/aaa_000010_000020.mp4")
    touch(root / "train/air drumming/bbb_000000_000010.mp4")
    touch(root / "val/ccc_000005_000015.mp4")  # flat layout
    index = load_index("kinetics400", root)
    assert index.class_names == ["abseiling", "air drumming"]
    assert [r.label for r in index.subsets["train"]] == [0, 1]
    assert index.subsets["val"][0].path == root / "val/ccc_000005_000015.mp4"
    assert "test" not in index.subsets


def test_kinetics_single_csv_and_errors(tmp_path):
    root = tmp_path / "k"
    csv_file = write(tmp_path / "all.csv", KINETICS_HEADER
                     + "a,x1,0,10,train\nb,x2,0,10,train\na,x3,1,11,val\n")
    for clip in ["x1_000000_000010", "x2_000000_000010"]:
        touch(root / f"{clip}.mp4")
    index = load_index("kinetics400", root, annotations=csv_file)
    assert len(index.subsets["train"]) == 2
    assert index.missing == [root / "val/a/x3_000001_000011.mp4"]
    write(csv_file, KINETICS_HEADER + "a,x1,0,10,train\nzzz,x3,1,11,val\n")
    with pytest.raises(DatasetLayoutError, match=r"all.csv:3: label 'zzz' never occurs"):
        load_index("kinetics400", root, annotations=csv_file)
    write(csv_file, "label,id\na,x1\n")
    with pytest.raises(DatasetLayoutError, match=r"all.csv:1: expected a header"):
        load_index("kinetics400", root, annotations=csv_file)


def test_folder(tmp_path):
    root = tmp_path / "f"
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            touch(root / split / cls / f"{split}_{cls}.mp4")
    (root / "train/cat/notes.txt").write_text("not a video")
    index = load_index("folder", root)
    assert index.class_names == ["cat", "dog"]
    assert len(index.subsets["train"]) == 2 and len(index.subsets["val"]) == 2
    touch(root / "val/bird/x.mp4")
    with pytest.raises(DatasetLayoutError, match="bird does not exist in"):
        load_index("folder", root)


def test_folder_without_val_validates_on_test_and_the_error_says_which_is_optional(tmp_path):
    root = tmp_path / "f"
    touch(root / "train" / "cat" / "a.mp4")
    with pytest.raises(DatasetLayoutError, match="neither val/ nor test/.*or both"):
        load_index("folder", root)
    touch(root / "test" / "cat" / "b.mp4")
    index = load_index("folder", root)
    assert index.subsets["val"] == index.subsets["test"]


def test_csv_names_header_and_unseen_label(tmp_path):
    root = tmp_path / "c"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        touch(root / name)
    train = write(root / "train.csv", "path,label\na.mp4,jump\nb.mp4,run\n")
    val = write(root / "val.csv", "c.mp4,run,1.5,3.0\n")
    index = load_index("csv", root, train_list="train.csv", val_list=val)
    assert index.class_names == ["jump", "run"]
    record = index.subsets["val"][0]
    assert (record.label, record.start_sec, record.end_sec) == (1, 1.5, 3.0)
    write(val, "a.mp4,run\nc.mp4,swim\n")
    with pytest.raises(DatasetLayoutError, match=r"val.csv:2: label 'swim' never occurs"):
        load_index("csv", root, train_list=train, val_list=val)
    write(val, "a.mp4\n")
    with pytest.raises(DatasetLayoutError, match=r"val.csv:1: expected CSV rows"):
        load_index("csv", root, train_list=train, val_list=val)
    with pytest.raises(DatasetLayoutError, match=r"data.train_list is required"):
        load_index("csv", root, train_list="???", val_list=val)  # a mandatory key not given


def test_csv_integer_labels(tmp_path):
    root = tmp_path / "c"
    touch(root / "a.mp4")
    train = write(root / "train.csv", "a.mp4,0\na.mp4,2\n")
    val = write(root / "val.csv", "a.mp4,1\na.mp4,3\n")
    with pytest.raises(DatasetLayoutError, match=r"val.csv:2: label '3'"):
        load_index("csv", root, train_list=train, val_list=val)
    write(val, "a.mp4,1\n")
    index = load_index("csv", root, train_list=train, val_list=val)
    assert index.class_names == ["0", "1", "2"]
    assert index.subsets["val"][0].label == 1
