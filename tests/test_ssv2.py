"""data=ssv2: the official Something-Something v2 JSON layout with VP9 .webm videos."""

import json
from pathlib import Path

import pytest
from helpers import compose_config, make_video, tiny_train_overrides

from vidtl.cli.train import train
from vidtl.data.annotations.formats import DatasetLayoutError
from vidtl.data.annotations.index import load_index
from vidtl.data.annotations.ssv2 import template_label

LABELS = {"Pushing something from left to right": "0",
          "Pushing something from right to left": "1",
          "Putting something on a surface": "2"}
TEMPLATES = ["Pushing [something] from left to right", "Pushing [something] from right to left",
             "Putting [something] on a surface"]


def entry(video_id: int, label: int) -> dict:
    return {"id": str(video_id), "label": f"object {video_id}", "template": TEMPLATES[label],
            "placeholders": [f"object {video_id}"]}


def write_ssv2(root: Path, prefix: str = "", videos: bool = True) -> Path:
    """SSv2's official files (with ``prefix`` before their names) and VP9 webm videos."""
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    train = [entry(i, i % 3) for i in range(1, 10)]
    validation = [entry(i, i % 3) for i in range(10, 13)]
    files = {"labels": LABELS, "train": train, "validation": validation,
             "test": [{"id": "99"}]}
    for name, content in files.items():
        (annotations / f"{prefix}{name}.json").write_text(json.dumps(content, indent=1))
    if videos:
        for e in train + validation:
            make_video(root / "20bn-something-something-v2" / f"{e['id']}.webm", num_frames=10,
                       codec="vp9", seed=int(e["id"]))
    return root


@pytest.fixture(scope="module")
def ssv2_root(tmp_path_factory) -> Path:
    return write_ssv2(tmp_path_factory.mktemp("ssv2"))


def test_templates_name_the_classes_of_labels_json():
    assert template_label("Putting [something] on a surface") == "Putting something on a surface"
    assert template_label("[Something] falling like a rock") == "Something falling like a rock"


@pytest.mark.parametrize("prefix", ["", "something-something-v2-"])
def test_ssv2_layout(tmp_path, prefix):
    root = write_ssv2(tmp_path / "ssv2", prefix, videos=False)
    for e in range(1, 13):
        (root / "20bn-something-something-v2" / f"{e}.webm").parent.mkdir(exist_ok=True)
        (root / "20bn-something-something-v2" / f"{e}.webm").write_bytes(b"webm")
    index = load_index("ssv2", root)
    assert index.class_names == list(LABELS)  # in the order of their ids
    assert [(r.path.name, r.label) for r in index.subsets["train"][:4]] == [
        ("1.webm", 1), ("2.webm", 2), ("3.webm", 0), ("4.webm", 1)]
    assert [r.path.stem for r in index.subsets["val"]] == ["10", "11", "12"]
    assert index.subsets["test"] == index.subsets["val"]  # test.json has no labels


def test_ssv2_errors_name_the_file_and_the_entry(tmp_path):
    root = write_ssv2(tmp_path / "ssv2", videos=False)
    train = root / "annotations" / "train.json"
    train.write_text(json.dumps([entry(1, 0), {**entry(2, 1), "template": "Juggling [x]"}]))
    with pytest.raises(DatasetLayoutError, match=r"train.json: entry 1 \(id '2'\): template "
                                                 r"'Juggling \[x\]' names no class"):
        load_index("ssv2", root)
    train.write_text('[{"id": "1",\n "template": }]')
    with pytest.raises(DatasetLayoutError, match=r"train.json:2: not valid JSON"):
        load_index("ssv2", root)
    (root / "annotations" / "labels.json").write_text('{"a": "zero"}')
    with pytest.raises(DatasetLayoutError, match=r"labels.json: label 'a' has id 'zero'"):
        load_index("ssv2", root)
    (root / "annotations" / "labels.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"no labels.json in .*annotations"):
        load_index("ssv2", root)


def test_data_ssv2_turns_flip_off(tmp_path):
    cfg = compose_config("train", ["data=ssv2", f"paths.output_dir={tmp_path}"])
    assert cfg.data.format == "ssv2" and cfg.data.flip is False
    recipe = compose_config("train", ["experiment=tsm_r50_imagenet_1x1x8_ssv2",
                                      f"paths.output_dir={tmp_path}"])
    assert recipe.data.flip is False and recipe.model.temporal.fold_div == 8


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_train_on_vp9_webm(ssv2_root, tmp_path, backend):
    cfg = compose_config("train", tiny_train_overrides(
        tmp_path, ssv2_root, "data=ssv2", f"data.backend={backend}", "data.num_frames=4",
        "data.on_decode_error=fail"))
    metrics = train(cfg)
    assert metrics["skipped_videos"] == 0 and metrics["videos_with_replaced_frames"] == 0
    assert 0 <= metrics["test/top1"] <= 1


def test_reencoding_webm_videos_picks_a_container_that_holds_h264(ssv2_root, tmp_path):
    """Issue 24: ``vidtl-prepare data=ssv2 mode=reencode`` failed every video ('webm' does not
    hold libx264) and exited 0 saying "train on it with ..."."""
    from helpers import compose_config

    from vidtl.cli.prepare import prepare
    from vidtl.data.frames.decoders import open_video

    out = tmp_path / "reencoded"
    summary = prepare(compose_config("prepare", [
        "data=ssv2", f"data.root={ssv2_root}", "mode=reencode", f"output={out}",
        "short_side=32", "workers=1", "progress=false"]))
    assert summary.prepared == 12 and not summary.failed
    video = next(out.rglob("*.webm"))
    for backend in ("decord", "pyav"):
        assert len(open_video(video, backend)) == 10
