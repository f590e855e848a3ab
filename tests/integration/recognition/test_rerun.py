"""Re-running an asset: one new job at a time, even for simultaneous requests."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from media.models import Asset
from recognition import services
from recognition.models import Job
from tests.integration.recognition.api_helpers import jpeg_bytes, stored_asset

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rerun_waits_for_a_concurrent_one_and_then_refuses(user):
    asset = stored_asset(user, jpeg_bytes())
    outcome: dict = {}

    def second_request():
        try:
            outcome["job"] = services.rerun_asset(asset)
        except services.JobInProgress as busy:
            outcome["busy"] = busy
        finally:
            connection.close()  # this thread's own connection

    with transaction.atomic():
        # The first request, caught between its check and its commit.
        Asset.objects.select_for_update().get(pk=asset.pk)
        first = services.start_processing(asset)
        second = threading.Thread(target=second_request)
        second.start()
        second.join(timeout=1)
        assert second.is_alive(), "the second re-run must wait for the first to commit"
    second.join(timeout=10)

    assert "job" not in outcome
    assert outcome["busy"].running.pk == first.pk
    assert Job.objects.filter(asset=asset).count() == 2  # the finished one and the first re-run


def test_a_rerun_of_an_idle_asset_starts_a_job(user):
    asset = stored_asset(user, jpeg_bytes())

    job = services.rerun_asset(asset)

    assert (job.asset_id, job.stage) == (asset.pk, "queued")
    with pytest.raises(services.JobInProgress, match=f"{asset.original_name} is still being processed"):
        services.rerun_asset(asset)
