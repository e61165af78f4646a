"""The composition root for data: base.yaml's defaults, extension points by name or _target_,
and one clear error per impossible loading plan."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import make_datamodule

from vidtl.assembly.data import clip_pipeline, data_options, loading_plan
from vidtl.core.errors import UserError
from vidtl.core.registry import UnknownNameError
from vidtl.data.clips.pipeline import ViewsPerVideo
from vidtl.data.clips.sampling import DenseSampler
from vidtl.data.clips.transforms import EvalClipTransform, TrainClipTransform
from vidtl.data.frames.pyav_reader import PyAVReader
from vidtl.data.frames.sources import VideoFileSource
from vidtl.data.loading.loading_plan import LoadingPlan


def test_base_yaml_holds_the_same_defaults_as_the_typed_objects(tmp_path):
    data = data_options(root=tmp_path)
    plan = LoadingPlan()
    for field in dataclasses.fields(LoadingPlan):
        assert data[field.name] == getattr(plan, field.name), field.name
    train, evaluation, views = TrainClipTransform(), EvalClipTransform(), ViewsPerVideo()
    assert (data.crop_size, data.train_crop, data.flip) == (train.crop_size, train.crop,
                                                            train.flip)
    assert (data.crop_size, data.short_side) == (evaluation.crop_size, evaluation.short_side)
    assert (data.num_test_clips, data.num_test_crops) == (views.num_clips, views.num_crops)
    assert data.sampler == "segment" and data.backend == "decord" and data.source == "video"


def test_extension_points_by_target(tiny_dataset):
    data = data_options(root=tiny_dataset, num_frames=4, sampler={
        "_target_": "vidtl.data.clips.sampling.DenseSampler", "num_frames": 4,
        "frame_interval": 2}, backend={"_target_": "vidtl.data.frames.pyav_reader.PyAVReader",
                                       "_partial_": True})
    pipeline = clip_pipeline(data)
    assert pipeline.sampler == DenseSampler(4, 2)
    video = sorted(tiny_dataset.rglob("*.avi"))[0]
    assert isinstance(pipeline.source.open(video), PyAVReader)
    source = clip_pipeline(data_options(root=tiny_dataset, source={
        "_target_": "vidtl.data.frames.sources.VideoFileSource", "backend": "pyav"})).source
    assert source == VideoFileSource("pyav")
    with pytest.raises(UserError, match="data.sampler gives clips of 4 frames"):
        clip_pipeline(data_options(root=tiny_dataset, num_frames=8, sampler=data.sampler))


@pytest.mark.parametrize("key,value,known", [("sampler", "uniform", "dense, segment"),
                                             ("backend", "ffmpeg", "decord, pyav"),
                                             ("source", "shards", "frames, video")])
def test_unknown_names_list_the_known_ones(tiny_dataset, key, value, known):
    with pytest.raises(UnknownNameError, match=f"data.{key}='{value}'.*known: {known}"):
        clip_pipeline(data_options(root=tiny_dataset, **{key: value})).source.open(
            sorted(tiny_dataset.rglob("*.avi"))[0])


@pytest.mark.parametrize("options,message", [
    ({"load_threads": 2, "num_workers": 2}, "set data.num_workers=0 with it"),
    ({"decode_on": "device"}, "set data.augment_on=device with it"),
    ({"augment_on": "gpu"}, "data.augment_on must be one of"),
    ({"batch_size": 0}, "data.batch_size must be >= 1"),
    ({"num_workers": -1}, "must be >= 0"),
    ({"device_frame_size": [256]}, r"must be \[height, width\]"),
])
def test_each_impossible_loading_plan_has_its_own_error(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        loading_plan(data_options(root=tmp_path, **options))


def test_the_datamodule_uses_the_pipeline_for_every_subset(tiny_dataset):
    datamodule = make_datamodule(tiny_dataset, num_frames=2, crop_size=24, short_side=28,
                                 num_test_clips=2, num_test_crops=3, num_workers=0)
    for subset in ("train", "val", "test"):
        dataset = datamodule.dataset(subset)
        assert dataset.sampler is datamodule.pipeline.sampler
        assert dataset.source is datamodule.pipeline.source
    views, _, _ = datamodule.dataset("test")[0]
    assert views.shape == (6, 2, 3, 24, 24)
    clip, _ = datamodule.dataset("val")[0]
    assert clip.shape == (2, 3, 24, 24)
    assert np.isfinite(datamodule.dataset("train")[0][0].float().numpy()).all()


def test_a_data_config_saved_by_vidtl_0_1_still_builds(tiny_dataset):
    from omegaconf import OmegaConf

    from vidtl.assembly.config_upgrade import upgrade_config
    from vidtl.assembly.data import build_datamodule

    saved = OmegaConf.to_container(data_options(root=tiny_dataset, num_workers=0))
    saved |= {"_target_": "vidtl.data.datamodule.VideoDataModule", "synthetic": {
        "_target_": "vidtl.data.synthetic.SyntheticVideoSpec", "groups": 3,
        "clips_per_group": 2, "num_frames": 12, "width": 64, "height": 48}}
    upgraded = upgrade_config({"data": saved, "module": {
        "_target_": "vidtl.models.module.VideoClassificationModule"}})
    assert "_target_" not in upgraded["data"]
    assert upgraded["data"]["synthetic"]["_target_"].startswith("vidtl.data.tools.synthetic")
    assert upgraded["module"]["_target_"] == "vidtl.training.module.VideoClassificationModule"
    datamodule = build_datamodule(OmegaConf.create(upgraded["data"]))
    assert datamodule.class_names and datamodule.has_subset("train")
