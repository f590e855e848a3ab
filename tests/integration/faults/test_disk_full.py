"""The disk where media is stored fills up: uploads get a 507 with a message and leave nothing
behind; a job that cannot write its face crops fails with the reason and runs again later.

The disk is real: a 4 MB tmpfs mounted as ``MEDIA_ROOT`` and filled with a file, so the kernel
itself answers ENOSPC to every write, partway through a file included. Mounting needs root (or
CAP_SYS_ADMIN); without it the tests skip rather than fake the error, since what they check is
exactly what a real full disk leaves behind (partial files).
"""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from media.models import Asset
from recognition.models import Face, Job, Stage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FILLER = "filler.bin"


@pytest.fixture
def small_disk(tmp_path, settings) -> Path:
    mount_point = tmp_path / "media"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    settings.MEDIA_ROOT = mount_point
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> None:
    """Write until the disk is full, as a busy library would."""
    with open(disk / FILLER, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass


def stored_files(disk: Path) -> list[str]:
    return sorted(str(path.relative_to(disk)) for path in disk.rglob("*") if path.is_file() and path.name != FILLER)


def test_an_upload_to_a_full_disk_is_a_507_that_leaves_no_file_and_no_row(user, auth_client, small_disk, faces_dir):
    fill(small_disk)
    photo = faces_dir / "probes" / "obama1.jpg"

    with open(photo, "rb") as handle:
        response = auth_client.post("/api/v1/assets/", {"file": handle}, format="multipart")
    assert response.status_code == 507
    body = response.json()
    assert body["code"] == "storage_full" and "storage is full" in body["message"]

    browser = Client()
    browser.force_login(user)
    with open(photo, "rb") as handle:
        page = browser.post("/upload/", {"files": [handle]}, HTTP_ACCEPT="application/json")
    assert page.status_code == 507
    assert page.json()["results"][0]["code"] == "storage_full"

    assert stored_files(small_disk) == []  # no partial original, thumbnail or temporary file
    assert not Asset.objects.exists() and not Job.objects.exists()


def test_a_job_that_cannot_write_its_crops_fails_with_the_reason_and_can_be_rerun(
        user, auth_client, small_disk, faces_dir, run_jobs):
    with open(faces_dir / "probes" / "obama1.jpg", "rb") as handle:
        uploaded = auth_client.post("/api/v1/assets/", {"file": handle}, format="multipart")
    assert uploaded.status_code == 202, uploaded.content
    stored = stored_files(small_disk)  # the original and its thumbnail
    fill(small_disk)

    run_jobs()
    job = Job.objects.get()
    assert (job.stage, job.error_code) == (Stage.FAILED, "storage_full")
    assert "storage is full" in job.error
    shown = auth_client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert (shown["stage"], shown["error"]) == ("failed", job.error)
    assert not Face.objects.exists()
    assert stored_files(small_disk) == stored  # no crop, whole or partial

    (small_disk / FILLER).unlink()  # an administrator frees space
    rerun = auth_client.post(f"/api/v1/jobs/{job.pk}/rerun/")
    assert rerun.status_code == 202, rerun.content
    run_jobs()
    latest = Job.objects.latest("created_at")
    assert latest.stage == Stage.COMPLETED, latest.error
    faces = list(Face.objects.filter(job=latest))
    assert faces and all((small_disk / face.crop.name).is_file() for face in faces)
