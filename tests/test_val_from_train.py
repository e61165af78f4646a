"""A validation split carved from training (``data.val_from_train``): whole groups per class,
seeded, written to the run folder; the best epoch is chosen on it and the test list is scored
once at the end. And where validation is the test list, every report says so."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import compose_config, tiny_train_overrides

from vidtl.cli.train import train
from vidtl.core.errors import UserError
from vidtl.data.annotations.carved_validation import CarvedValidation, carve_validation
from vidtl.data.annotations.index import load_index
from vidtl.data.annotations.records import VideoIndex, VideoRecord
from vidtl.sweeps.sweep_table import sweep_rows


def ucf_index(root: Path) -> VideoIndex:
    return load_index("ucf101", root, split=1)


def test_ucf101_groups_stay_on_one_side_in_every_class(tiny_dataset):
    index = ucf_index(tiny_dataset)
    official_test = [r.path for r in index.subsets["test"]]
    training = {r.path for r in index.subsets["train"]}
    assert {r.group for r in index.subsets["train"] if r.label == 0} == {
        "v_MoveRight_g02", "v_MoveRight_g03"}
    carve_validation(index, CarvedValidation(0.25, seed=3))
    train, val = index.subsets["train"], index.subsets["val"]
    assert {r.path for r in train} | {r.path for r in val} == training
    assert not {r.path for r in train} & {r.path for r in val}
    for label in range(index.num_classes):  # every class validated, each group on one side
        train_groups = {r.group for r in train if r.label == label}
        val_groups = {r.group for r in val if r.label == label}
        assert val_groups and train_groups and not train_groups & val_groups
    assert [r.path for r in index.subsets["test"]] == official_test  # the test list stays
    assert index.val_carved


def test_the_split_is_seeded():
    def carved(seed: int, amount: float | int = 0.3) -> list[str]:
        records = [VideoRecord(Path(f"{c}_{g}_{i}.avi"), c, group=f"g{g}")
                   for c in range(3) for g in range(10) for i in range(2)]
        index = VideoIndex(["a", "b", "c"], {"train": records, "val": [], "test": records[:3]})
        carve_validation(index, CarvedValidation(amount, seed))
        return [r.path.name for r in index.subsets["val"]]

    assert carved(0) == carved(0) and carved(0) != carved(1)
    assert len(carved(0)) == 3 * 6  # 30% of each class's 20 videos: 3 groups of 2
    assert len(carved(0, amount=12)) == 3 * 4  # 12 of 60: 4 per class
    with pytest.raises(UserError, match="val_split_seed must be an integer >= 0"):
        CarvedValidation(0.1, seed=-1)


def test_a_class_missing_videos_changes_no_other_class_split():
    def carved(drop_group: bool) -> dict[int, set[str]]:
        records = [VideoRecord(Path(f"{c}_{g}_{i}.avi"), c, group=f"c{c}g{g}")
                   for c in range(4) for g in range(8) for i in range(2)
                   if not (drop_group and c == 0 and g == 3)]
        index = VideoIndex(list("abcd"), {"train": records})
        carve_validation(index, CarvedValidation(0.25, seed=5))
        return {c: {r.path.name for r in index.subsets["val"] if r.label == c} for c in range(4)}

    whole, less = carved(False), carved(True)
    assert all(whole[c] == less[c] for c in (1, 2, 3))


def test_a_source_shared_by_two_classes_stays_on_one_side():
    """Kinetics: one YouTube video cut into clips of two actions; HMDB51: one film."""
    records = [VideoRecord(Path(f"{c}_{g}.avi"), c, group=f"yt{g}")
               for c in range(2) for g in range(10)]
    index = VideoIndex(["a", "b"], {"train": records})
    carve_validation(index, CarvedValidation(0.3, seed=1))
    train = {r.group for r in index.subsets["train"]}
    val = {r.group for r in index.subsets["val"]}
    assert val and not train & val


def test_a_class_in_one_group_stays_in_training_and_bad_amounts_are_refused():
    records = [VideoRecord(Path(f"a{i}.avi"), 0, group="g1") for i in range(4)]
    records += [VideoRecord(Path(f"b{i}.avi"), 1) for i in range(4)]  # no group: one each
    index = VideoIndex(["a", "b"], {"train": list(records), "val": list(records[:2])})
    carve_validation(index, CarvedValidation(0.5))
    assert {r.label for r in index.subsets["train"]} == {0, 1}
    assert {r.label for r in index.subsets["val"]} == {1} and len(index.subsets["val"]) == 2
    assert len(index.subsets["test"]) == 2  # no test list: the format's validation set is it
    for amount in (0.0, 1.0, 1.5, -3, True, "0.1"):
        with pytest.raises(UserError, match="data.val_from_train must be"):
            CarvedValidation(amount)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="as many validation videos"):
        carve_validation(VideoIndex(["a", "b"], {"train": list(records)}),
                         CarvedValidation(8))
    alone = VideoIndex(["a"], {"train": records[:4]})
    with pytest.raises(UserError, match="no class has its training videos in two or more"):
        carve_validation(alone, CarvedValidation(0.5))


def test_groups_of_hmdb51_and_kinetics(tmp_path):
    root = tmp_path / "hmdb"
    splits = root / "splits"
    splits.mkdir(parents=True)
    clips = {"brush_hair": ["Aussie_Brunette_Brushing_Hair_II_brush_hair_u_nm_np1_ri_med_3.avi",
                            "Aussie_Brunette_Brushing_Hair_II_brush_hair_u_nm_np2_le_goo_1.avi"],
             "run": ["Aussie_Brunette_Brushing_Hair_II_run_f_cm_np1_ba_bad_0.avi",
                     "other_film_run_f_cm_np1_ri_med_0.avi"]}
    for name, videos in clips.items():
        (splits / f"{name}_test_split1.txt").write_text("".join(f"{v} 1\n" for v in videos))
        (root / name).mkdir()
        for video in videos:
            (root / name / video).touch()
    index = load_index("hmdb51", root, split=1)
    assert [r.group for r in index.subsets["train"]] == [
        "Aussie_Brunette_Brushing_Hair_II"] * 3 + ["other_film"]  # one film, every action
    k400 = tmp_path / "k400"
    (k400 / "annotations").mkdir(parents=True)
    (k400 / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\na,x_y-z,10,20,train\na,x_y-z,30,40,train\n")
    for clip in ("x_y-z_000010_000020", "x_y-z_000030_000040"):
        (k400 / f"{clip}.mp4").touch()
    index = load_index("kinetics400", k400)
    assert {r.group for r in index.subsets["train"]} == {"x_y-z"}


def test_training_chooses_on_the_carved_set_and_writes_it(tiny_dataset, tmp_path, caplog):
    out = tmp_path / "run"
    metrics = train(compose_config("train", tiny_train_overrides(
        out, tiny_dataset, "logger=none", "data.val_from_train=0.25",
        "trainer.limit_val_batches=null", "trainer.limit_test_batches=null")))
    assert metrics["validated_on"] == "carved from train"
    assert metrics["evaluated_weights"] == "best epoch by validation"
    assert metrics["evaluated_checkpoint"].startswith(str(out / "checkpoints" / "epoch_"))
    with open(out / "val_from_train.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    index = ucf_index(tiny_dataset)
    training = {str(r.path.relative_to(tiny_dataset)) for r in index.subsets["train"]}
    assert rows and {row["path"] for row in rows} <= training
    assert len({row["label"] for row in rows}) == index.num_classes
    # the list reads back as a validation list of the csv format
    again = load_index("csv", tiny_dataset, train_list=out / "val_from_train.csv",
                       val_list=out / "val_from_train.csv")
    assert len(again.subsets["val"]) == len(rows)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["validated_on"] == "carved from train"
    # vidtl-eval carves the same set, or says that it could not (a video gone)
    from vidtl.cli.evaluate import evaluate

    def evaluation(*extra: str) -> str:
        caplog.clear()
        evaluate(compose_config("eval", [
            f"ckpt_path={metrics['evaluated_checkpoint']}", "subsets=[val]", "logger=none",
            f"paths.output_dir={tmp_path / 'ev'}", "data.num_workers=0",
            "trainer.accelerator=cpu", "trainer.limit_val_batches=1", *extra]))
        return caplog.text

    assert "differs from the one the run was validated on" not in evaluation()
    gone = tmp_path / "gone.txt"
    gone.write_text(rows[0]["path"] + "\n")
    assert "differs from the one the run was validated on" in evaluation(
        f"data.exclude_list={gone}")


def test_a_run_validated_on_the_test_list_says_so_and_names_its_weights(tiny_dataset,
                                                                        tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    train(compose_config("train", tiny_train_overrides(sweep / "0", tiny_dataset,
                                                       "logger=none", "test=false")))
    (row,) = sweep_rows(sweep)
    assert row["validated_on"] == "test list" and row["evaluated_weights"] == "final"
    assert row["checkpoint"] == str(sweep / "0" / "checkpoints" / "final.ckpt")
    assert Path(row["checkpoint"]).is_file()
    import shutil  # a copied sweep folder names its own files

    (row,) = sweep_rows(shutil.copytree(sweep, tmp_path / "copy"))
    assert row["checkpoint"] == str(tmp_path / "copy" / "0" / "checkpoints" / "final.ckpt")
    monkeypatch.chdir(tmp_path)  # a sweep folder given relative: the path works from anywhere
    (row,) = sweep_rows(Path("copy"))
    assert row["checkpoint"] == str(tmp_path / "copy" / "0" / "checkpoints" / "final.ckpt")


def test_a_resume_with_another_split_is_refused_and_an_empty_value_clears_it():
    from vidtl.assembly.data import carved_validation, data_options
    from vidtl.callbacks.resume_changes import check_same_split

    def config(**data: object) -> dict:
        return {"data": {"root": "x", **data}, "resume_changes": "apply"}

    for before, after in ((config(val_from_train=0.1), config(val_from_train=0.2)),
                          (config(val_from_train=0.1), config(val_from_train=0.1,
                                                              val_split_seed=1)),
                          (config(), config(val_from_train=0.1))):
        with pytest.raises(UserError, match="another validation split"):
            check_same_split(before, after, "last.ckpt")
    # a checkpoint of 0.4 (no such keys), defaults now; a seed that carves nothing
    check_same_split(config(), config(val_from_train=None, val_split_seed=0), "last.ckpt")
    check_same_split(config(val_split_seed=0), config(val_split_seed=3), "last.ckpt")
    check_same_split(config(val_from_train=0.1), config(val_from_train=0.1, val_split_seed=0),
                     "last.ckpt")
    assert carved_validation(data_options(val_from_train="")) is None
    assert carved_validation(data_options(val_from_train=20.0)) == CarvedValidation(20)


def test_the_stream_source_refuses_a_carved_split(tmp_path):
    from vidtl.assembly.data import build_datamodule, data_options

    with pytest.raises(UserError, match="val_from_train with data.source=stream"):
        build_datamodule(data_options(root=tmp_path, source="stream", shards=str(tmp_path),
                                      val_from_train=0.1))


def test_eval_matches_the_classes_of_a_csv_list_by_name(tiny_checkpoint, tiny_dataset, tmp_path):
    """A CSV list numbers its classes in sorted order, the checkpoint in classInd.txt's: the
    labels follow the names, and the accuracy is that of the right labels."""
    from helpers import write_csv_lists

    from vidtl.cli.evaluate import evaluate

    train_list, val_list = write_csv_lists(tiny_dataset, tmp_path / "lists")
    metrics = evaluate(compose_config("eval", [
        f"ckpt_path={tiny_checkpoint}", f"paths.output_dir={tmp_path / 'ev'}", "logger=none",
        "subsets=[test]", "data=csv", f"data.root={tiny_dataset}", f"data.train_list={train_list}",
        f"data.val_list={val_list}", f"data.test_list={val_list}", "data.num_workers=0",
        "trainer.accelerator=cpu"]))
    with open(tmp_path / "ev" / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(Path(row["video"]).parent.name == row["label"] for row in rows)
    hits = sum(row["label"] == row["predicted"] for row in rows) / len(rows)
    assert metrics["test/top1"] == pytest.approx(hits)


def test_classes_are_reordered_by_name_once_each():
    records = [VideoRecord(Path(f"{c}.avi"), c) for c in range(3)]
    index = VideoIndex([2, 0, 1], {"test": list(records)})  # a custom format's int names
    index.reorder_classes(["0", "1", "2"])
    assert [r.label for r in index.subsets["test"]] == [2, 0, 1]
    assert index.class_names == ["0", "1", "2"]
    with pytest.raises(ValueError, match="each once"):
        VideoIndex(["a", "a", "b"], {}).reorder_classes(["a", "b", "a"])


def test_the_sweep_table_survives_odd_metrics_files(tmp_path):
    for job, text in enumerate(('[1, 2]', '{"evaluated_checkpoint": "%s"}' % ("x" * 5000),
                                "{not json")):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "metrics.json").write_text(text)
    rows = sweep_rows(tmp_path)
    assert [row["status"] for row in rows] == ["no metrics", "done", "no metrics"]
    assert rows[1]["checkpoint"] == ""
