"""Several validation sets (issue 24): ``data.val_list=[a.csv,b.csv]`` (csv) or
``data.extra_val_lists=[...]`` (any format). Each set is logged under its own name
(``val/<name>/top1``), checkpoints watch the first (``val/top1``), and ``metrics.json`` and a
sweep's ``results.csv`` hold them all. It was a raw TypeError."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from helpers import compose_config, tiny_train_overrides, write_csv_lists

from vidtl.cli.errors import one_line
from vidtl.cli.evaluate import evaluate
from vidtl.cli.train import train
from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.sweeps.sweep_table import write_sweep_table

METRICS = ("top1", "top5", "mean_class_acc", "loss")


def lists_of(tiny_dataset, folder):
    """train.csv, outdoor.csv (group 3) and indoor.v2.csv (the training videos of group 1)."""
    train_list, outdoor = write_csv_lists(tiny_dataset, folder)
    outdoor = outdoor.rename(folder / "outdoor.csv")
    rows = [row for row in train_list.read_text().splitlines()[1:] if "_g01_" in row]
    indoor = folder / "indoor.v2.csv"  # a "." in the name (no module name may hold one)
    indoor.write_text("path,label\n" + "\n".join(rows) + "\n")
    return train_list, outdoor, indoor


def csv_rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def test_several_csv_validation_sets_are_logged_apart_and_the_first_is_watched(
        tiny_dataset, tmp_path):
    train_list, outdoor, indoor = lists_of(tiny_dataset, tmp_path / "lists")
    run = tmp_path / "sweep" / "0"
    metrics = train(compose_config("train", tiny_train_overrides(
        run, tiny_dataset, "data=csv", f"data.train_list={train_list}",
        f"data.val_list=[{outdoor},{indoor}]", "trainer.max_epochs=2", "test=false",
        "trainer.limit_val_batches=null")))
    for name in ("outdoor", "indoor.v2"):
        assert all(f"val/{name}/{metric}" in metrics for metric in METRICS), sorted(metrics)
    assert metrics["val/top1"] == metrics["val/outdoor/top1"]  # the first set is val/ too
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["val/indoor.v2/top1"] == metrics["val/indoor.v2/top1"]
    # per epoch in the CSV history: both sets, the first also under val/
    rows = [row for row in csv_rows(run / "csv" / "metrics.csv") if row.get("val/indoor.v2/top1")]
    epochs = rows[:2]  # then the validation of the best checkpoint, after training
    assert len(rows) == 3 and all(row["val/top1"] == row["val/outdoor/top1"] for row in rows)
    # the checkpoint watches the first set: its best score is the best val/outdoor/top1
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    watched = next(v for k, v in state["callbacks"].items() if "ModelCheckpoint" in k
                   and v.get("monitor") == "val/top1")
    assert float(watched["best_model_score"]) == max(float(r["val/outdoor/top1"]) for r in epochs)
    # a sweep's table holds every set's metrics
    table = csv_rows(write_sweep_table(tmp_path / "sweep"))
    assert float(table[0]["val/indoor.v2/top1"]) == pytest.approx(metrics["val/indoor.v2/top1"])


def test_further_validation_sets_for_any_format(tiny_dataset, tiny_checkpoint, tmp_path):
    """``data.extra_val_lists`` next to UCF101's own split; ``vidtl-eval`` evaluates them all."""
    _, outdoor, indoor = lists_of(tiny_dataset, tmp_path / "lists")
    metrics = train(compose_config("train", tiny_train_overrides(
        tmp_path / "run", tiny_dataset, f"data.extra_val_lists=[{indoor}]", "test=false",
        "logger=none")))
    assert "val/indoor.v2/top1" in metrics and "val/top1" in metrics
    assert not any(key.startswith("val/val/") for key in metrics)  # the split has no name
    evaluated = evaluate(compose_config("eval", [
        f"ckpt_path={tiny_checkpoint}", f"paths.output_dir={tmp_path / 'eval'}",
        "subsets=[val]", f"data.extra_val_lists=[{indoor},{outdoor}]", "logger=none"]))
    assert {"val/top1", "val/indoor.v2/top1", "val/outdoor/top1"} <= set(evaluated)


def test_a_bad_further_validation_list_is_one_line_naming_file_and_line(tiny_dataset,
                                                                         tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nMoveRight/v_MoveRight_g01_c01.avi,Dancing\n")
    with pytest.raises(DatasetLayoutError) as error:
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "run", tiny_dataset, f"data.extra_val_lists=[{bad}]", "logger=none")))
    line = one_line(error.value)
    assert f"{bad}:2" in line and "'Dancing'" in line and "is not a class" in line


def test_validation_set_names_are_plain_and_unique():
    from vidtl.data.annotations.records import validation_set_name

    taken: set[str] = set()
    names = [validation_set_name(path, taken) for path in
             ("a/val.csv", "b/val.csv", "night shots!.csv", "../..csv")]
    assert names == ["val", "val_2", "night_shots", "set"]


def test_where_several_sets_cannot_go_it_says_so(tiny_dataset, tmp_path):
    """The feature cache holds one validation set, a shard store its own subsets: refused with
    one line instead of leaving the further sets out without a word."""
    from helpers import make_datamodule

    from vidtl.core.errors import UserError

    _, _, indoor = lists_of(tiny_dataset, tmp_path / "lists")
    with pytest.raises(UserError, match="feature_cache.enabled caches one validation set"):
        train(compose_config("train", tiny_train_overrides(
            tmp_path / "run", tiny_dataset, f"data.extra_val_lists=[{indoor}]", "logger=none",
            "feature_cache.enabled=true", "finetune=linear_probe")))
    with pytest.raises(UserError, match="data.extra_val_lists with data.source=stream"):
        make_datamodule(tiny_dataset, source="stream", shards=str(tmp_path),
                        extra_val_lists=[str(indoor)])
