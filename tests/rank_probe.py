"""A research project's own module, for the multi-node tests (``custom_imports=[rank_probe]``,
``module._target_=rank_probe.RecordingModule``): every training clip a process loads is
appended to ``$VIDTL_PROBE_DIR/rank<global rank>.tsv`` as ``<epoch>\t<video>``; with
``$VIDTL_PROBE_PREEMPT_AT=N`` the process sends itself SIGUSR1 (a cluster's preemption notice)
as step ``N`` starts."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from vidtl.data.annotations.records import VideoRecord
from vidtl.data.clips.dataset import VideoClipDataset
from vidtl.training.module import VideoClassificationModule

_state: dict[str, Any] = {"module": None}
_load_clip = VideoClipDataset.load_clip


def _recording_load_clip(self: VideoClipDataset, record: VideoRecord, rng: Any) -> Any:
    module = _state["module"]
    if self.training and module is not None and module.trainer.training:
        rank, epoch = module.global_rank, module.current_epoch
        with open(Path(os.environ["VIDTL_PROBE_DIR"]) / f"rank{rank}.tsv", "a") as file:
            file.write(f"{epoch}\t{record.path}\n")
    return _load_clip(self, record, rng)


VideoClipDataset.load_clip = _recording_load_clip  # type: ignore[method-assign]


class RecordingModule(VideoClassificationModule):
    """vidtl's module, telling the recorder its trainer (rank, epoch, stage)."""

    def on_fit_start(self) -> None:
        super().on_fit_start()
        _state["module"] = self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if os.environ.get("VIDTL_PROBE_PREEMPT_AT") == str(self.global_step):
            os.kill(os.getpid(), signal.SIGUSR1)
