"""vidtl-compare and the recipe group: each recipe is the bundle it says, the comparison refuses
what would mix runs, estimates before it trains, runs the cheapest first, lists a failed
recipe and goes on, and tabulates every recipe and view count in results.csv."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import compose_config

from vidtl.cli import compare
from vidtl.cli.comparison_folder import FolderLock, check_folder, path_value, write_plan
from vidtl.cli.recipe_estimate import (
    DataCost,
    ModelCost,
    estimated_minutes,
    measure_data,
    measure_model,
)
from vidtl.core.atomic import process_alive
from vidtl.core.errors import UserError
from vidtl.sweeps.recipe_table import format_table, recipe_row, run_checkpoint

RECIPES = {  # recipe: (finetune mode, temporal class, LoRA, feature cache, crop)
    "probe": ("linear_probe", "AvgPool", False, True, 96),
    "probe_224": ("linear_probe", "AvgPool", False, True, 224),
    "probe_transformer": ("linear_probe", "TransformerEncoder", False, True, 96),
    "full_avg": ("full", "AvgPool", False, False, 96),
    "full_tsm": ("full", "TemporalShiftConsensus", False, False, 96),
    "adapter": ("adapter", "STAdapter", False, False, 96),
    "lora_tsm": ("adapter", "TemporalShiftConsensus", True, False, 96),
}


def tiny(data_dir: Path, *extra: str) -> list[str]:
    """Overrides of a tiny comparison on a synthetic dataset made in ``data_dir``."""
    return ["data.synthetic.groups=2", "data.synthetic.clips_per_group=1",
            "data.synthetic.num_frames=8", "data.synthetic.width=64", "data.synthetic.height=48",
            "data.num_frames=2", "data.crop_size=32", "data.short_side=32", "data.batch_size=4",
            "data.num_workers=0", "data.persistent_workers=false", "model/backbone=timm",
            "model.backbone.name=test_resnet", "model.backbone.pretrained=false",
            "trainer.max_epochs=1", "logger=none", "callbacks.progress_bar=null",
            f"paths.data_dir={data_dir}", f"paths.log_dir={data_dir / 'logs'}", *extra]


def test_every_recipe_file_is_in_the_table_above():
    assert set(compare.available_recipes()) == set(RECIPES)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_recipe_is_the_bundle_it_names(recipe):
    mode, temporal, lora, cached, crop = RECIPES[recipe]
    cfg = compose_config("train", [f"recipe={recipe}"])
    assert cfg.finetune.mode == mode
    assert cfg.model.temporal._target_.endswith(temporal)
    assert bool(cfg.model.get("lora")) is lora
    assert cfg.feature_cache.enabled is cached
    assert cfg.data.crop_size == crop
    assert compare.describe(recipe)  # the summary line the plan prints


def test_a_recipe_keeps_its_own_settings_and_takes_the_rest(capsys):
    given = ["data.crop_size=112", "model/temporal=lstm", "trainer.max_epochs=3"]
    assert compare.recipe_overrides("probe_224", given) == ["trainer.max_epochs=3"]
    assert compare.recipe_overrides("full_avg", given) == ["data.crop_size=112",
                                                           "trainer.max_epochs=3"]
    assert "probe_224: keeps its own settings, not data.crop_size=112" in capsys.readouterr().out


def test_a_recipe_that_would_repeat_another_is_left_out(capsys):
    # at 224 px the probe is probe_224: the comparison trains it once
    configs = compare.compose_recipes(["probe", "probe_224", "full_tsm"], ["data.crop_size=224",
                                                                          "data.short_side=256"])
    assert list(configs) == ["probe", "full_tsm"]
    assert "probe_224: the same run as probe" in capsys.readouterr().out
    configs = compare.compose_recipes(["probe", "probe_224"], ["data.crop_size=112"])
    assert list(configs) == ["probe", "probe_224"]


@pytest.mark.parametrize("override, says", [
    ("recipe=probe", "sets the recipe"), ("hydra.run.dir=/tmp/x", "sets the recipe"),
    ("hydra/job_logging=disabled", "sets the recipe"), ("+recipe=probe", "sets the recipe"),
    ("paths.output_dir=/tmp/x", "run folders"), ("data.root", "not an override")])
def test_overrides_that_would_mix_runs_are_refused(override, says):
    with pytest.raises(UserError, match=says):
        compare.check_overrides([override])
    compare.check_overrides(["~callbacks.progress_bar", "data.root=/d"])  # a delete is fine


@pytest.mark.parametrize("argv, says", [
    (["--recipes", "probe,nonsense"], "unknown recipe nonsense"), (["--out", ""], "a folder"),
    (["--views", "3x0"], "CLIPSxCROPS"), (["--views", "three"], "CLIPSxCROPS")])
def test_bad_options_name_what_was_expected(argv, says, capsys):
    with pytest.raises(SystemExit):
        compare.build_parser().parse_args(argv)
    assert says in capsys.readouterr().err


def test_view_counts_are_read_as_numbers():
    assert compare.view_list("01x1,1x1, 3x3,") == ["1x1", "3x3"]


def test_a_typo_in_an_override_fails_before_anything_trains(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit, match="recipe probe with .*data.crop_sise"):
        compare.main(["--recipes", "probe", "--no-estimate", *tiny(tmp_path),
                      "data.crop_sise=3"])
    assert not (tmp_path / "logs").exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_a_folder_of_another_comparison_is_not_mixed_in(tmp_path):
    check_folder(tmp_path, ["trainer.max_epochs=1", "data.root=/d"])
    write_plan(tmp_path, ["trainer.max_epochs=1", "data.root=/d"])
    # the same comparison, continued: the same settings in any order
    check_folder(tmp_path, ["data.root=/d", "trainer.max_epochs=1"])
    with pytest.raises(UserError, match=r"other settings \(trainer.max_epochs: 1 -> 12\)"):
        check_folder(tmp_path, ["trainer.max_epochs=12", "data.root=/d"])
    (tmp_path / "compare.json").write_text('{"overrides": 7}')  # not what vidtl wrote
    with pytest.raises(UserError, match="cannot be read as a comparison's settings"):
        check_folder(tmp_path, ["trainer.max_epochs=1"])
    (tmp_path / "compare.json").write_bytes(b" " * (2 << 20))  # not read whole
    with pytest.raises(UserError, match="cannot be read as a comparison's settings"):
        check_folder(tmp_path, ["trainer.max_epochs=1"])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="is a file; give a folder"):
        check_folder(tmp_path / "a_file", [])


def test_a_folder_in_use_by_a_running_comparison_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "compare.lock").write_text(json.dumps({"pid": 999999999,
                                                           "child": sleeper.pid}))
        with pytest.raises(UserError, match=f"in use by process {sleeper.pid}"):
            FolderLock(tmp_path).__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    with FolderLock(tmp_path) as lock:  # its holders are gone: the lock is taken over
        lock.running(12345)
        assert json.loads((tmp_path / "compare.lock").read_text())["child"] == 12345
    assert not (tmp_path / "compare.lock").exists()


def test_view_evaluations_get_the_loader_and_device_settings_only():
    given = ["data.num_workers=0", "data.crop_size=32", "trainer.accelerator=cpu",
             "trainer.max_epochs=3", "data.batch_size=2"]
    assert compare.eval_overrides(given) == ["data.num_workers=0", "trainer.accelerator=cpu",
                                             "data.batch_size=2"]


def test_a_reused_runs_metrics_name_only_its_own_checkpoints(tmp_path):
    run = tmp_path / "adapter"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "final.ckpt").write_bytes(b"")
    elsewhere = tmp_path / "other.ckpt"
    elsewhere.write_bytes(b"")
    (run / "checkpoints" / "linked.ckpt").symlink_to(elsewhere)
    (run / "checkpoints" / "${oc.env:HOME}.ckpt").write_bytes(b"")
    for named, expected in ((str(elsewhere), None), ("${oc.env:HOME}.ckpt", None),
                            ("linked.ckpt", None), (["final.ckpt"], None),
                            ("/somewhere/else/final.ckpt", run / "checkpoints" / "final.ckpt")):
        (run / "metrics.json").write_text(json.dumps({"evaluated_checkpoint": named}))
        assert run_checkpoint(run) == expected


def test_multi_label_runs_are_tabulated_by_map(tmp_path):
    run = tmp_path / "full_tsm"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test/mAP": 0.4, "val/mAP": 0.3,
                                                  "test/top1": 0.9}))
    row = recipe_row("full_tsm", run, "done", 1.0, 1.0, {"1x1": None, "3x3": {"test/mAP": 0.5}})
    assert (row["test/mAP 1x1"], row["test/mAP 3x3"], row["val/mAP"]) == (0.4, 0.5, 0.3)


def test_a_files_strings_never_reach_the_table(tmp_path):
    run = tmp_path / "probe"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({
        "test/top1": "=cmd|calc", "val/top1": float("nan"), "trainable_share": 0.5,
        "validated_on": "=HYPERLINK()", "evaluated_checkpoint": "/etc/passwd",
        "=evil": 1.0}))
    row = recipe_row("probe", run, "done", 1.0, None, {"1x1": None})
    assert row["test/top1 1x1"] == "" and row["val/top1"] == ""
    assert row["trainable_share"] == 0.5 and row["validated_on"] == ""
    assert row["checkpoint"] == "" and "=evil" not in row


def test_folders_are_passed_to_hydra_quoted_or_refused():
    assert path_value(Path("/data/my runs,v2")) == "'/data/my runs,v2'"
    for bad in ("/data/${oc.env:HOME}", "/data/it's", "/data/back\\slash"):
        with pytest.raises(UserError, match="give another --out"):
            path_value(Path(bad))


def test_the_estimate_counts_extraction_once_and_epochs_for_decoded_video():
    data = DataCost(train_videos=100, val_videos=20, test_videos=30, decode_seconds=0.1,
                    batch_size=8)
    model = ModelCost(step_seconds=3.2, forward_seconds=0.8)  # a real loader's batches
    cfg = compose_config("train", ["recipe=full_tsm", "trainer.max_epochs=10"])
    # 10 epochs x 100 clips x 0.4 s + 10 validations x 20 x 0.1 s + the test, 30 x 0.1 s
    assert estimated_minutes(cfg, data, model) == pytest.approx((400 + 20 + 3) / 60)
    every_5 = compose_config("train", ["recipe=full_tsm", "trainer.max_epochs=10",
                                       "trainer.check_val_every_n_epoch=5", "test=false"])
    assert estimated_minutes(every_5, data, model) == pytest.approx((400 + 4) / 60)
    cached = compose_config("train", ["recipe=probe", "trainer.max_epochs=10"])
    # (4 views x 100 + 20) clips x 0.1 s once, then the test: the epochs cost nothing
    assert estimated_minutes(cached, data, model) == pytest.approx((42 + 3) / 60)
    assert estimated_minutes(cached, data, model, extracted=True) == pytest.approx(3 / 60)


def test_the_estimate_measures_real_training_steps_of_each_recipe(tmp_path):
    cfg = compose_config("train", ["recipe=full_tsm", *tiny(tmp_path)])
    data = measure_data(cfg)
    assert (data.train_videos, data.test_videos, data.batch_size) == (8, 8, 4)
    assert data.decode_seconds > 0
    model = measure_model(cfg)
    assert 0 < model.forward_seconds <= model.step_seconds


def test_the_table_puts_the_best_test_score_first(tmp_path):
    rows = []
    for recipe, score in (("probe", 0.5), ("full_tsm", 0.75)):
        run = tmp_path / recipe
        run.mkdir()
        (run / "metrics.json").write_text(f'{{"test/top1": {score}, "val/top1": 0.1}}')
        rows.append(recipe_row(recipe, run, "done", 1.0, 2.0, {"1x1": None, "3x1": {
            "test/top1": score + 0.1}}))
    rows.append(recipe_row("adapter", tmp_path / "adapter", "failed (exit 1)", 0.1, 2.0,
                           {"1x1": None, "3x1": None}))
    text = format_table(rows).splitlines()
    assert text[0].split()[:5] == ["recipe", "status", "test/top1", "1x1", "test/top1"]
    assert [line.split()[0] for line in text[1:]] == ["full_tsm", "probe", "adapter"]
    assert "0.850" in text[1] and "failed (exit 1)" in text[3]


def run_compare(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidtl.cli.compare", *argv],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_one_command_compares_recipes_on_tiny_data(tmp_path):
    out = tmp_path / "my comparison, v2"  # a space and a comma: passed quoted to vidtl-train
    out.mkdir()
    (out / "adapter").write_text("in the way")  # this recipe's run folder cannot be made
    args = ["--recipes", "adapter,full_tsm,probe", "--views", "1x1,2x1", "--out", str(out),
            *tiny(tmp_path)]
    done = run_compare(*args)
    assert done.returncode == 1, done.stderr[-3000:]  # not every recipe finished
    assert "1 of 3 recipes did not finish cleanly (adapter)" in done.stderr
    plan = done.stdout.index("cheapest first")
    assert plan < done.stdout.index("[1/3]")  # the estimate comes before any training
    order = [line.split()[1] for line in done.stdout[plan:].splitlines()[1:4]]
    assert sorted(order) == ["adapter", "full_tsm", "probe"]
    with open(out / "results.csv", newline="") as file:
        rows = {row["recipe"]: row for row in csv.DictReader(file)}
    assert list(rows) == order  # in the order they ran
    assert rows["adapter"]["status"].startswith("failed (exit")  # listed, and the others ran
    for recipe in ("full_tsm", "probe"):
        row = rows[recipe]
        assert row["status"] == "done"
        for column in ("test/top1 1x1", "test/top1 2x1", "val/top1"):
            assert 0.0 <= float(row[column]) <= 1.0
        assert float(row["estimated_minutes"]) >= 0 and float(row["minutes"]) > 0
        assert Path(row["checkpoint"]).is_file()
        assert (out / recipe / "views_2x1" / "metrics.json").is_file()
    assert float(rows["probe"]["trainable_share"]) < float(rows["full_tsm"]["trainable_share"])
    assert len(list((tmp_path / "feature_cache").glob("*.pt"))) == 1
    header = [line for line in done.stdout.splitlines() if line.startswith("recipe ")][-1]
    assert "test/top1 1x1" in header and "test/top1 2x1" in header  # the table, printed
    assert "val/ is the test list here" in done.stdout  # the synthetic data has no val split

    (out / "adapter").unlink()  # the same command again: the finished recipes are reused
    again = run_compare("--recipes", "full_tsm,probe", "--no-estimate", "--views", "1x1,2x1",
                        "--out", str(out), *tiny(tmp_path))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished in an earlier run of this comparison, reused") == 2


@pytest.mark.slow
def test_sigterm_stops_the_running_recipe_and_frees_the_folder(tmp_path):
    out = tmp_path / "comparison"
    command = [sys.executable, "-m", "vidtl.cli.compare", "--recipes", "full_tsm",
               "--no-estimate", "--out", str(out), *tiny(tmp_path, "trainer.max_epochs=50")]
    comparison = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
    lock = out / "compare.lock"
    deadline = time.monotonic() + 300
    child = None
    while child is None and time.monotonic() < deadline:  # until its training runs
        time.sleep(1)
        try:
            child = json.loads(lock.read_text()).get("child")
        except (OSError, ValueError):
            child = None
    assert child, "the comparison never started its training"
    comparison.send_signal(signal.SIGTERM)
    _, stderr = comparison.communicate(timeout=120)
    assert comparison.returncode != 0 and "interrupted" in stderr
    assert not process_alive(child) and not lock.exists()  # nothing left writing in the folder
