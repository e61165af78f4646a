"""Where vidtl's Hydra configs are (packaged in a wheel, or ``conf/`` of a checkout), and the
run folder they name when Hydra did not start the run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def config_dir() -> str:
    """The folder of vidtl's Hydra configs."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return str(packaged if packaged.is_dir() else package.parent / "conf")


def run_folder(_root_: Any) -> str:
    """``${vidtl_run_folder:}`` (``paths.output_dir``): the run folder Hydra made, or, for a
    config composed in Python (a notebook, a script), the one Hydra would have made:
    ``<paths.log_dir>/<task_name>/runs/<run_name>``."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.output_dir)
    task = _root_.get("task_name")
    if task is None:  # commands that write into the current folder
        return "."
    name = _root_.get("run_name") or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return str(Path(_root_.paths.log_dir) / str(task) / "runs" / str(name))


OmegaConf.register_new_resolver("vidtl_run_folder", run_folder, replace=True)
