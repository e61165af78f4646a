"""``skipped_videos.txt``: each video listed once with its kind (skipped, replaced), also when a
run resumes onto a file written by vidtl 0.4 (no kind: told by the reason's prefix)."""

from __future__ import annotations

from pathlib import Path

from vidtl.data.clips.skipped_videos import (
    PARTIAL,
    REPLACED,
    Entry,
    SkippedVideoLog,
    parse_line,
)


def test_each_record_says_its_kind(tmp_path):
    log = SkippedVideoLog(tmp_path / "skipped_videos.txt")
    log.add(Path("/v/b.mp4"), "decoded 5 of\n8 frames", REPLACED)
    log.add(Path("/v/a.mp4"), "empty file")
    log.add(Path("/v/a.mp4"), "empty file again")
    log.add(Path("/v/frames replaced.mp4"), "not a video")
    assert (log.compact(), log.replaced()) == (2, 1)
    assert log.path.read_text().splitlines() == [
        "/v/a.mp4\tskipped\tempty file", "/v/b.mp4\treplaced\tdecoded 5 of 8 frames",
        "/v/frames replaced.mp4\tskipped\tnot a video"]
    assert log.read()["/v/b.mp4"] == "decoded 5 of 8 frames"


def test_a_file_of_0_4_is_read_and_rewritten_by_kind(tmp_path):
    path = tmp_path / "skipped_videos.txt"
    path.write_text("/v/a.mp4\tOSError: empty file\n"
                    "/v/b.mp4\tframes replaced: decoded 5 of 8 frames\n")
    log = SkippedVideoLog(path)  # a resumed run appends to the previous run's file
    log.add(Path("/v/c.mp4"), "decoded 1 of 8 frames", REPLACED)
    assert log.entries()["/v/b.mp4"] == Entry(REPLACED, "frames replaced: decoded 5 of 8 frames")
    assert (log.compact(), log.replaced()) == (1, 2)
    assert path.read_text().splitlines()[0] == "/v/a.mp4\tskipped\tOSError: empty file"
    assert (log.compact(), log.replaced()) == (1, 2)  # the same once rewritten


def test_a_path_may_hold_a_tab():
    assert parse_line("/v/a\tb.mp4\tpartial\tdecoded 3 of 8 frames") == (
        "/v/a\tb.mp4", Entry(PARTIAL, "decoded 3 of 8 frames"))
    assert parse_line("/v/a.mp4") == ("/v/a.mp4", Entry("skipped", ""))


def test_any_file_name_and_any_line_read_back_are_listed_once_and_stay_stable(tmp_path):
    """A path with a line break or bytes that are not UTF-8 is one record; an unreadable kind
    or a 0.4 reason with a tab does not grow at each rewrite (a resumed run rewrites)."""
    log = SkippedVideoLog(tmp_path / "skipped_videos.txt")
    log.add(Path("/v/two\nlines.mp4"), "broken")
    log.add(Path("/v/sep\u2028line.mp4"), "broken")
    log.add(Path(b"/v/bad\xffname.mp4".decode(errors="surrogateescape")), "broken")
    with log.path.open("a") as file:
        file.write("/v/c.mp4\tbogus\treason\n/v/d.mp4\tan old\treason with a tab\n")
    assert log.compact() == 5
    first = log.path.read_bytes()
    assert log.compact() == 5 and log.path.read_bytes() == first  # stable when read back
    assert len(first.splitlines()) == 5 and b"\\x0a" in first and b"bad\xffname" in first


def test_a_list_left_in_the_run_folder_is_read_bounded_and_never_written_through(tmp_path):
    """A resumed run reads the list its folder holds (an earlier run's, or anyone's): a link
    in its place is not followed to append elsewhere, a device is refused, not read."""
    import os

    import pytest

    from vidtl.core.safe_files import RefusedFileError

    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    link = tmp_path / "run" / "skipped_videos.txt"
    link.parent.mkdir()
    link.symlink_to(outside)
    with pytest.raises(OSError):
        SkippedVideoLog(link).add(Path("/v/a.mp4"), "broken")
    assert outside.read_text() == "keep\n"
    device = tmp_path / "dev" / "skipped_videos.txt"
    device.parent.mkdir()
    device.symlink_to("/dev/zero")
    with pytest.raises(RefusedFileError, match="not a regular file"):
        SkippedVideoLog(device).entries()
    assert os.path.getsize(outside) == 5
