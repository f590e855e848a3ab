"""When cached reports go stale: analysis listens to recognition's models (recognition never
imports analysis, so it cannot call us).

- a job reaches ``completed`` or ``failed`` (``Job.advance`` saves the stage): its owner's
  numbers changed;
- a person names, rejects, dismisses or restores a face (``Face.save``), renames, hides,
  merges or deletes a person (``Subject`` saved or deleted), or deletes an asset.

Corrections that move many faces with queryset updates (a whole video track, a merge) send no
``post_save``; recognition sends ``people_changed`` for them once committed. Clustering runs
inside a job (its completion bumps); the nightly recluster shows up when the short TTL runs out.

Bumps happen after the transaction commits: a report computed between the bump and the commit
would otherwise be cached under the new version with the old numbers.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from analysis import cache
from media.models import Asset
from recognition.models import TERMINAL_STAGES, Face, Job, Subject
from recognition.signals import people_changed


def _bump_on_commit(owner_id: int | None) -> None:
    if owner_id is not None:
        transaction.on_commit(lambda: cache.bump(owner_id))


@receiver(post_save, sender=Job, dispatch_uid="analysis_job_finished")
def job_finished(sender, instance: Job, update_fields=None, **kwargs):
    if instance.stage not in TERMINAL_STAGES:
        return
    if update_fields is not None and "stage" not in update_fields:
        return
    _bump_on_commit(instance.asset.owner_id)


@receiver(post_save, sender=Face, dispatch_uid="analysis_face_decided")
def face_saved(sender, instance: Face, **kwargs):
    _bump_on_commit(instance.owner_id)


@receiver(post_save, sender=Subject, dispatch_uid="analysis_subject_saved")
@receiver(post_delete, sender=Subject, dispatch_uid="analysis_subject_deleted")
def subject_changed(sender, instance: Subject, **kwargs):
    _bump_on_commit(instance.owner_id)


@receiver(people_changed, dispatch_uid="analysis_people_changed")
def people_decided(sender, owner_id: int, **kwargs):
    """Sent on commit by recognition's corrections, which move many faces at once."""
    cache.bump(owner_id)


@receiver(post_delete, sender=Asset, dispatch_uid="analysis_asset_deleted")
def asset_deleted(sender, instance: Asset, **kwargs):
    _bump_on_commit(instance.owner_id)
