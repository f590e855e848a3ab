from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver


def original_path(asset: Asset, filename: str) -> str:
    """Content-addressed storage path; ``filename`` is ours (``upload.<detected ext>``)."""
    ext = filename.rsplit(".", 1)[-1]
    return f"assets/{asset.owner_id}/{asset.sha256[:2]}/{asset.sha256}.{ext}"


def thumbnail_path(asset: Asset, filename: str) -> str:
    return f"thumbnails/{asset.owner_id}/{asset.sha256[:2]}/{asset.sha256}.jpg"


class Asset(models.Model):
    """One uploaded image or video, stored once per owner and content (sha256)."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    original_name = models.CharField(max_length=200, help_text="Display name only, sanitised; never a path.")
    file = models.FileField(upload_to=original_path, max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100, help_text="Detected from the content.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration_seconds = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.ImageField(upload_to=thumbnail_path, max_length=255, null=True, blank=True)
    # Lists crop thumbnails square: the point to keep in view, as fractions of the width and
    # height (a photo's largest face, set once it is processed); empty, the middle.
    focus_x = models.FloatField(null=True, blank=True)
    focus_y = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"], name="media_asset_unique_owner_sha256")]
        indexes = [models.Index(fields=["owner", "created_at"], name="media_asset_owner_created")]

    def __str__(self):
        return f"{self.kind} {self.original_name} ({self.sha256[:12]})"

    @property
    def is_video(self) -> bool:
        return self.kind == self.Kind.VIDEO


@receiver(post_delete, sender=Asset)
def delete_asset_files(sender, instance: Asset, **kwargs):
    """Remove the stored files once the delete is committed: a rolled-back delete keeps them.

    A receiver (not a model method) so queryset deletes and cascades from the owner run it too.
    """
    files = [f for f in (instance.file, instance.thumbnail) if f and f.name]
    storage_and_names = [(f.storage, f.name) for f in files]

    def delete_files():
        for storage, name in storage_and_names:
            storage.delete(name)

    transaction.on_commit(delete_files, using=kwargs.get("using"))
