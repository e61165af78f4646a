"""``vidtl-check data=... output=FILE.json``: list a dataset's broken videos and why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vidtl.assembly.data import dataset_spec
from vidtl.cli import config_dir
from vidtl.cli.errors import exit_on_user_error
from vidtl.cli.prepare import dataset_videos
from vidtl.core.atomic import write_text_atomic
from vidtl.core.custom_imports import import_custom
from vidtl.core.own_files import check_replaceable, json_with_keys
from vidtl.core.quoting import printable
from vidtl.data.annotations.exclusions import is_exclusion_list, write_exclusion_list
from vidtl.data.annotations.index import read_index
from vidtl.data.tools.check import check_videos

is_report = json_with_keys(("root", "checked", "bad"))


def check(cfg: DictConfig) -> dict[str, str]:
    """``{path: reason}`` of the broken videos; writes the report and exclusion list asked for."""
    import_custom(cfg.get("custom_imports"))
    if cfg.output:  # before the scan: a path that holds another file is refused at once
        check_replaceable(Path(cfg.output).expanduser(), is_report, "a vidtl-check report")
    if cfg.exclude_list:
        check_replaceable(Path(cfg.exclude_list).expanduser(), is_exclusion_list,
                          "an exclusion list")
    spec = dataset_spec(cfg.data)
    index = read_index(spec)
    videos = dataset_videos(index)
    # Videos listed in the annotations but absent were left out of the subsets: report them too.
    missing = {str(path): "missing file" for path in index.missing}
    bad = missing | check_videos(videos, deep=cfg.deep, workers=cfg.workers or os.cpu_count() or 1,
                                 progress=cfg.progress)
    for video, reason in sorted(bad.items()):
        print(f"{printable(video)}: {printable(reason)}", flush=True)
    checked = len(videos) + len(missing)
    print(f"checked {checked} videos under {spec.root}: {len(bad)} broken", flush=True)
    report = {"root": str(spec.root), "checked": checked, "bad": dict(sorted(bad.items()))}
    if cfg.output:
        path = Path(cfg.output).expanduser()
        check_replaceable(path, is_report, "a vidtl-check report")
        write_text_atomic(path, json.dumps(report, indent=2) + "\n")
    if cfg.exclude_list:
        write_exclusion_list(Path(cfg.exclude_list).expanduser(), bad,
                             header=f"vidtl-check: broken videos under {spec.root}")
    print(json.dumps({"checked": checked, "bad": len(bad)}), flush=True)
    return bad


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="check")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    check(cfg)


if __name__ == "__main__":
    main()
