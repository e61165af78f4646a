"""``PYTHONPATH=tests pytest -p no_ffmpeg``: run the suite as on a machine where torchcodec is
installed but FFmpeg's shared libraries are not. The tests that need them skip, naming what to
install (under ``CI=true`` they fail: ``.ci/run`` installs FFmpeg)."""

import torchcodec._internally_replaced_utils as native


def _missing(*args, **kwargs):
    raise RuntimeError("Could not load libtorchcodec. libavutil.so.59: cannot open shared "
                       "object file: No such file or directory")


native.load_core_libraries = _missing
