"""Video probing in a child process: the answers the in-process probe gives, for every kind of
upload object, and a clean refusal, with nothing left behind, when the child crashes, hangs,
runs out of memory or writes nonsense.

To make a real child misbehave, a test puts a ``sitecustomize.py`` on its PYTHONPATH: Python
runs it in every interpreter it starts, before ``media.videoprobe`` is imported.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

from media.validation import PROJECT_ROOT, RejectedUpload, probe_file, probe_timeout, probe_video_in_child
from media.videoprobe import probe_video
from tests.unit.media import samples

MAX_SECONDS = 600


@pytest.fixture(autouse=True)
def probe_tmp(tmp_path, monkeypatch) -> Path:
    """The probe's temporary files (and Django's temporary uploads) go here, so tests can see
    that none is left."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def child_starts_with(tmp_path, monkeypatch):
    """``child_starts_with(code)``: every Python child this test starts runs ``code`` first."""

    def install(code: str) -> None:
        directory = tmp_path / "child-startup"
        directory.mkdir()
        (directory / "sitecustomize.py").write_text(code)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")])))

    return install


def refusal(call) -> RejectedUpload:
    with pytest.raises(RejectedUpload) as caught:
        call()
    return caught.value


def probe_children() -> list[int]:
    """Our child processes running media.videoprobe (zombies included: they were not reaped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and b"media.videoprobe" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("name", "size", "fps", "frame_count"),
    [("short_hamilton_clip.mp4", (640, 360), 29.97, 275), ("facenet_video.mp4", (1920, 1080), 25, 105)],
)
def test_a_real_video_probed_in_the_child_matches_the_in_process_probe(
    faces_dir, probe_tmp, name, size, fps, frame_count
):
    with (faces_dir / "videos" / name).open("rb") as video:
        in_child = probe_video_in_child(video, MAX_SECONDS)
        in_process = probe_video(video, MAX_SECONDS)

    assert (in_child.kind, in_child.ext, in_child.content_type) == ("video", "mp4", "video/mp4")
    assert ((in_child.width, in_child.height), in_child.frame_count) == (size, frame_count)
    assert in_child.fps == pytest.approx(fps)
    assert in_child.duration == pytest.approx(frame_count / fps, abs=0.1)
    assert in_child == in_process  # every field but the preview, exactly
    assert in_child.preview.mode == "RGB" and in_child.preview.size == size
    assert np.array_equal(np.asarray(in_child.preview), np.asarray(in_process.preview))
    assert np.asarray(in_child.preview).std() > 10  # a picture, not a blank
    assert list(probe_tmp.iterdir()) == []


def test_in_memory_temporary_and_open_file_uploads_give_the_same_answer(tmp_path, probe_tmp):
    data = samples.synthetic_video(frames=10, fps=5)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    temporary = TemporaryUploadedFile("clip.mp4", "video/mp4", len(data), None)
    temporary.write(data)

    with path.open("rb") as handle:
        answers = [
            probe_file(SimpleUploadedFile("clip.mp4", data), len(data)),  # an InMemoryUploadedFile
            probe_file(temporary, len(data)),  # read by the child from its temporary_file_path()
            probe_file(handle, len(data)),  # an open file, read from its path
            probe_file(File(handle, name="clip.mp4"), len(data)),  # as manage.py import_media passes it
        ]
    temporary.close()

    for probed in answers:
        assert (probed.kind, probed.ext, probed.frame_count) == ("video", "mp4", 10)
        assert (probed.width, probed.height) == (64, 48)
        assert probed.fps == pytest.approx(5)
        assert np.asarray(probed.preview).shape == (48, 64, 3)
    assert all(probed == answers[0] for probed in answers)
    assert list(probe_tmp.iterdir()) == []


def test_a_file_name_is_never_taken_for_the_files_path(tmp_path, monkeypatch):
    """An upload's name is the client's: the probe reads the bytes it was given, not a file that
    happens to bear that name."""
    decoy = tmp_path / "clip.mp4"
    decoy.write_bytes(samples.audio_only_mp4())  # probing this would say "no_frames"
    monkeypatch.chdir(tmp_path)
    data = samples.synthetic_video()

    assert probe_file(SimpleUploadedFile("clip.mp4", data), len(data)).kind == "video"
    assert probe_file(File(io.BytesIO(data), name=str(decoy)), len(data)).kind == "video"
    with (tmp_path / "real.mp4").open("w+b") as real:
        real.write(data)
        assert probe_file(File(real, name=str(decoy)), len(data)).kind == "video"


def test_a_child_killed_by_a_signal_is_a_clean_refusal_and_the_next_probe_works(
    child_starts_with, monkeypatch, caplog, probe_tmp
):
    child_starts_with(
        "import os, resource, signal\n"
        "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file from this test\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    data = samples.synthetic_video()

    with caplog.at_level(logging.WARNING, logger="media.validation"):
        refused = refusal(lambda: probe_file(SimpleUploadedFile("clip.mp4", data), len(data)))

    assert (refused.code, refused.status) == ("corrupt", 400)
    assert refused.message == "The video could not be read: the decoder crashed."
    assert "killed by SIGSEGV" in caplog.text
    assert list(probe_tmp.iterdir()) == []

    monkeypatch.delenv("PYTHONPATH")
    assert probe_file(SimpleUploadedFile("clip.mp4", data), len(data)).kind == "video"


def test_a_hung_child_is_killed_at_the_timeout(child_starts_with, caplog, probe_tmp):
    child_starts_with("import time\ntime.sleep(120)\n")
    started = time.monotonic()

    with caplog.at_level(logging.WARNING, logger="media.validation"):
        refused = refusal(lambda: probe_video_in_child(io.BytesIO(samples.synthetic_video()), MAX_SECONDS, timeout=1))

    assert time.monotonic() - started < 10
    assert (refused.code, refused.status) == ("corrupt", 400)
    assert refused.message == "The video could not be read: opening it took longer than 1 s."
    assert "killed after 1 s" in caplog.text
    assert probe_children() == []  # killed and reaped
    assert list(probe_tmp.iterdir()) == []


def test_a_child_over_its_memory_cap_is_a_clean_refusal(probe_tmp):
    """64 MiB of address space is less than the interpreter and its libraries need: whether the
    child then raises MemoryError or crashes (it segfaults, with today's libraries), the upload
    gets a refusal."""
    data = samples.synthetic_video()
    refused = refusal(lambda: probe_video_in_child(io.BytesIO(data), MAX_SECONDS, memory_bytes=64 * 2**20))

    assert (refused.code, refused.status) == ("corrupt", 400)
    assert refused.message.startswith("The video could not be read")
    assert list(probe_tmp.iterdir()) == []


def test_a_child_that_writes_nonsense_is_a_clean_refusal(child_starts_with, caplog, probe_tmp):
    child_starts_with("import sys\nsys.stdout.write('Segmentation fault? no, just noise\\n')\n")

    with caplog.at_level(logging.WARNING, logger="media.validation"):
        refused = refusal(lambda: probe_video_in_child(io.BytesIO(samples.synthetic_video()), MAX_SECONDS))

    assert (refused.code, refused.status) == ("corrupt", 400)
    assert refused.message == "The video could not be read: the decoder gave no usable answer."
    assert "just noise" in caplog.text
    assert list(probe_tmp.iterdir()) == []


def test_refusals_made_in_the_child_reach_the_caller_unchanged():
    data = samples.synthetic_video(frames=10, fps=5)
    refused = refusal(lambda: probe_video_in_child(io.BytesIO(data), max_seconds=1))
    assert (refused.code, refused.status, refused.message) == (
        "too_long", 400, "The video lasts 2.0 s; the longest accepted is 1 s."
    )


def test_frames_over_the_pixel_limit_are_refused_and_the_limit_itself_passes():
    data = samples.synthetic_video(frames=10, fps=5)  # 64×48 frames
    refused = refusal(lambda: probe_video_in_child(io.BytesIO(data), MAX_SECONDS, max_pixels=64 * 48 - 1))
    accepted = probe_video_in_child(io.BytesIO(data), MAX_SECONDS, max_pixels=64 * 48)

    assert (refused.code, refused.status, refused.message) == (
        "too_many_pixels", 400, "The video's frames are 64×48 pixels; the most accepted is 3071 pixels a frame."
    )
    assert (accepted.width, accepted.height) == (64, 48)


def test_the_child_loads_no_django_torch_or_numpy():
    """No settings, no models in the child; and numpy would nearly double its start-up time."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, media.videoprobe; print(' '.join(sorted(sys.modules)))"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert [name for name in loaded if name.split(".")[0] in {"django", "torch", "numpy"}] == []
    # The refusal type is shared with the web process; it must stay free of Django (settings!).
    assert {name for name in loaded if name.split(".")[0] == "config"} <= {"config", "config.refusals"}


def test_the_timeout_grows_with_the_file_size():
    assert probe_timeout(1000) == pytest.approx(60, abs=0.01)
    assert probe_timeout(500 * 2**20) == pytest.approx(110)
