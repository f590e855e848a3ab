"""Small builders shared by the recognition API tests: uploads, stored assets, faces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media import services as media_services
from recognition.models import Face, Job, Subject


def upload_of(data: bytes | Path, name: str | None = None) -> SimpleUploadedFile:
    if isinstance(data, Path):
        name, data = name or data.name, data.read_bytes()
    return SimpleUploadedFile(name or "photo.jpg", data)


def jpeg_bytes(size=(96, 64), seed: int = 0) -> bytes:
    """A face-free picture (smooth noise); ``seed`` makes different bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def stored_asset(owner, data: bytes, name: str = "photo.jpg"):
    """An asset stored like an upload, with a finished job (no worker involved)."""
    asset = media_services.ingest_upload(owner, upload_of(data, name)).asset
    Job.objects.create(asset=asset, stage="completed", progress=100)
    return asset


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector) * 0.5


def crop_bytes() -> bytes:
    """A small JPEG standing in for the crop the pipeline stores with a face."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 40), (120, 90, 70)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_face(asset, *, embedding=None, subject=None, is_example=False, box=(10, 8, 40, 44), quality=0.8,
              model_version="test", with_crop=True, **fields) -> Face:
    """A face as the pipeline stores one, with a crop (``with_crop=False``: one found before
    crops were stored)."""
    face = Face.objects.create(
        asset=asset, owner_id=asset.owner_id, box=list(box), landmarks=[[20, 20]] * 5, score=0.99, quality=quality,
        embedding=unit_vector(0) if embedding is None else embedding, model_version=model_version, subject=subject,
        is_example=is_example, **fields,
    )
    if with_crop:
        face.crop.save("crop.jpg", ContentFile(crop_bytes()))
    return face


def enrolled_photo(owner, photo_name: str, subject_name: str) -> dict:
    """One stored photo with its finished job, a subject, and the photo's face as its example."""
    asset = stored_asset(owner, jpeg_bytes(), photo_name)
    subject = Subject.objects.create(owner=owner, name=subject_name)
    face = make_face(asset, subject=subject, is_example=True)
    return {"asset": asset, "job": asset.jobs.get(), "subject": subject, "face": face}
