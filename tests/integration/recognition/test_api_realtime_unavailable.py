"""With no realtime worker, the synchronous endpoints answer 503 with a clear message."""

from __future__ import annotations

import pytest

from media.models import Asset
from recognition.models import Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_wait(settings, no_realtime_worker):
    settings.SIGHTLINE_REALTIME_TIMEOUT_SECONDS = 1


def test_recognize_without_a_worker_is_503(auth_client):
    response = auth_client.post("/api/v1/recognize/", {"file": upload_of(jpeg_bytes())}, format="multipart")

    assert response.status_code == 503
    assert response.json()["code"] == "realtime_unavailable"
    assert response.json()["message"].startswith("No recognition worker answered within 1 s.")


def test_enrolment_without_a_worker_is_503_and_keeps_nothing(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")

    response = auth_client.post(f"/api/v1/subjects/{ada.pk}/examples/", {"file": upload_of(jpeg_bytes())},
                                format="multipart")

    assert response.status_code == 503
    assert not Asset.objects.exists()
