"""Each data key is declared once (a dataclass field with its default and roles); the key lists,
``conf/data/base.yaml`` and ``conf/data/from_checkpoint.yaml`` agree with the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vidtl.assembly import checkpoint_data
from vidtl.assembly.data import (
    CLIP_KEYS,
    DATA_SETTINGS,
    LOADER_ONLY_KEYS,
    PLAN_KEYS,
    SPEC_KEYS,
    clip_pipeline,
    data_options,
    loading_plan,
)
from vidtl.core.errors import UserError
from vidtl.core.settings import defaults_of, field_names, keys_with, setting
from vidtl.data.annotations.dataset_settings import FormatOptions

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
DECLARED = set(field_names(*DATA_SETTINGS, FormatOptions))


def keys_of(path: Path) -> set[str]:
    config = OmegaConf.load(path)
    return {str(k) for k in config if k != "defaults"}


def test_base_yaml_holds_every_declared_key_with_its_declared_default():
    base = OmegaConf.to_container(OmegaConf.load(CONF / "base.yaml"))
    base.pop("defaults", None)
    assert set(base) == set(field_names(*DATA_SETTINGS)), "base.yaml and the dataclasses differ"
    declared = {k: v for cls in DATA_SETTINGS for k, v in defaults_of(cls).items()}
    for key, value in base.items():
        expected = declared[key]
        if key == "root":
            assert value == "???" and expected is None  # required
        elif isinstance(expected, tuple):
            assert value == list(expected), key
        else:
            assert value == expected, f"data.{key}: base.yaml {value!r}, declared {expected!r}"


def test_from_checkpoint_yaml_can_set_every_declared_key():
    keys = keys_of(CONF / "from_checkpoint.yaml") - {"from_checkpoint"}
    assert keys == DECLARED, (f"missing from from_checkpoint.yaml: {sorted(DECLARED - keys)}; "
                              f"undeclared: {sorted(keys - DECLARED)}")
    assert all(v is None for k, v in OmegaConf.load(CONF / "from_checkpoint.yaml").items()
               if k != "from_checkpoint")


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.name)
def test_every_key_of_every_data_config_is_declared(path):
    undeclared = keys_of(path) - DECLARED - {"from_checkpoint"}
    assert not undeclared, f"{path.name}: declare {sorted(undeclared)} (DATA_SETTINGS or " \
                           f"FormatOptions)"


def test_the_key_lists_are_read_from_the_declarations():
    assert (SPEC_KEYS, CLIP_KEYS, PLAN_KEYS) == tuple(field_names(c) for c in DATA_SETTINGS)
    assert set(checkpoint_data.MACHINE_KEYS) <= set(LOADER_ONLY_KEYS)  # a machine's own
    assert {"batch_size", "num_workers", "strict", "decode_threads"} <= set(LOADER_ONLY_KEYS)
    assert not set(LOADER_ONLY_KEYS) & {"num_frames", "crop_size", "root", "sampler"}
    assert {"num_frames", "crop_size", "sampler"} <= set(checkpoint_data.GEOMETRY_KEYS)
    assert {"root", "shards", "train_list", "annotations"} <= set(checkpoint_data.LOCATION_KEYS)
    assert set(checkpoint_data.CHOICE_KEYS) == {"format", "sampler", "backend", "source"}
    with pytest.raises(ValueError, match="unknown setting role"):
        setting(1, "geometri")
    with pytest.raises(ValueError, match="unknown setting role"):
        keys_with("geometri", DATA_SETTINGS)


def test_a_missing_key_takes_its_declared_default_and_a_wrong_type_names_the_key():
    data = data_options(root="unused", num_frames=4)
    del data["on_decode_error"], data["batch_size"]  # as a checkpoint of an older vidtl
    assert clip_pipeline(data).on_decode_error == "replace"
    assert loading_plan(data).batch_size == 8
    with pytest.raises(UserError, match=r"data\.num_frames must be int, got 'eight'"):
        clip_pipeline(data_options(root="unused", num_frames="eight"))
    with pytest.raises(UserError, match=r"data\.pin_memory must be bool"):
        loading_plan(data_options(root="unused", pin_memory="no"))
    assert loading_plan(data_options(root="unused", batch_size=4.0)).batch_size == 4


def test_view_scoring_defaults_are_the_modules_and_every_command_reads_the_one_file():
    import inspect

    from vidtl.training.module import VideoClassificationModule

    conf = CONF.parent
    shared = OmegaConf.load(conf / "view_scoring.yaml")
    signature = inspect.signature(VideoClassificationModule).parameters
    for key in ("view_aggregation", "view_chunk"):
        assert shared[key] == signature[key].default, key
    for command in ("train", "eval", "predict", "extract"):
        text = (conf / f"{command}.yaml").read_text()
        assert "- view_scoring" in text and "view_chunk:" not in text, command


@pytest.mark.parametrize("key,value,message", [
    ("num_frames", 0, r"data\.num_frames must be >= 1"),
    ("frame_interval", 0, r"data\.frame_interval must be >= 1"),
    ("decode_threads", -1, r"data\.decode_threads must be >= 0"),
    ("train_crop", "bogus", r"data\.train_crop must be one of")])
def test_clip_settings_out_of_range_name_their_key(key, value, message):
    with pytest.raises(UserError, match=message):
        clip_pipeline(data_options(root="unused", **{key: value}))


def test_an_extension_point_config_that_builds_the_wrong_thing_names_its_key(tmp_path):
    """A config (or a crafted checkpoint) naming an allowed class in the wrong slot, or options
    the class does not take: one line naming data.<key>, not a traceback later."""
    from vidtl.assembly.data import dataset_spec

    spec = "vidtl.data.tools.synthetic.SyntheticVideoSpec"
    with pytest.raises(UserError, match=r"data\.format: .*built a SyntheticVideoSpec, not a"):
        dataset_spec(data_options(root=tmp_path, format={"_target_": spec}))
    with pytest.raises(UserError, match=r"data\.format: .*cannot be built.*bogus"):
        dataset_spec(data_options(root=tmp_path, format={"_target_": spec, "bogus": 1}))
    with pytest.raises(UserError, match=r"data\.synthetic must be null or a SyntheticVideoSpec"):
        dataset_spec(data_options(root=tmp_path, synthetic="foo"))
