"""vidtl-extract: per-video embeddings of a dataset subset or a folder, with their ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import compose_config

from vidtl.cli.extract import extract
from vidtl.core.errors import UserError
from vidtl.data.annotations.index import load_index
from vidtl.inference.checkpoint_model import load_trained_model
from vidtl.inference.file_views import VideoViews


def test_extract_a_subset_with_labels_and_the_embeddings_of_the_model(tiny_checkpoint,
                                                                      tiny_dataset, tmp_path):
    out = tmp_path / "features" / "test.npz"
    arrays = extract(compose_config("extract", [f"ckpt_path={tiny_checkpoint}", f"output={out}",
                                     "subset=test", "num_workers=0", "progress=false"]))
    saved = np.load(out)
    records = load_index("ucf101", tiny_dataset).subsets["test"]
    assert saved["videos"].tolist() == [str(r.path) for r in records]
    assert saved["labels"].tolist() == [r.label for r in records]
    assert saved["embeddings"].dtype == np.float32 and len(saved["failed"]) == 0
    assert np.array_equal(saved["embeddings"], arrays["embeddings"])
    # The same numbers as the classifier's own clip features of the first video's view.
    model = load_trained_model(tiny_checkpoint)
    module = model.module
    views = VideoViews.from_pipeline([records[0].path], model.test_pipeline(1, 1))[0][1]
    with torch.inference_mode():
        expected = module.classifier.clip_features(module.device_stage.normalize(views))
    assert np.allclose(saved["embeddings"][0], expected[0].numpy(), atol=1e-5)
    assert saved["embeddings"].shape[1] == module.classifier.temporal.out_features


def test_extract_a_folder_lists_the_unreadable_files(tiny_checkpoint, tiny_dataset, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in sorted(tiny_dataset.rglob("*.avi"))[:2]:
        (folder / video.name).write_bytes(video.read_bytes())
    (folder / "broken.avi").write_bytes(b"RIFF nothing here")
    out = tmp_path / "folder.npz"
    extract(compose_config("extract", [f"ckpt_path={tiny_checkpoint}", f"output={out}",
                            f"input={folder}", "num_workers=0", "num_test_clips=2",
                            "num_test_crops=3", "progress=false"]))
    saved = np.load(out)
    assert len(saved["videos"]) == 2 and saved["labels"].tolist() == [-1, -1]
    assert [line.split("\t")[0] for line in saved["failed"]] == [str(folder / "broken.avi")]
    with pytest.raises(UserError, match="either input=PATH"):
        extract(compose_config("extract", [f"ckpt_path={tiny_checkpoint}", f"output={out}"]))
