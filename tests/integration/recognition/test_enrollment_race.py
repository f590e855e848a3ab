"""An enrolment that is refused must not take with it a dashboard upload of the same bytes
that arrived while the enrolment was looking for faces."""

import pytest

from media.models import Asset
from recognition import enrollment, services
from recognition.models import Job, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_enrolment_keeps_the_photo_a_concurrent_upload_claimed(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    subject = Subject.objects.create(owner=user, name="Ada")
    data = jpeg_bytes()
    dashboard = {}

    def analyze_while_the_same_photo_is_uploaded(asset):
        # The realtime worker takes its time; meanwhile the user uploads the photo on the dashboard.
        dashboard["outcome"] = services.upload(user, upload_of(data, "same.jpg"))
        return {"faces": [], "model_version": "test"}  # and then: no face, refused

    with pytest.raises(enrollment.EnrollmentError):
        enrollment.enroll_photo(subject, upload_of(data, "same.jpg"), "same.jpg", analyze_while_the_same_photo_is_uploaded)

    outcome = dashboard["outcome"]
    assert not outcome.created  # deduplicated onto the enrolment's photo…
    assert outcome.job is not None  # …which it started processing
    asset = Asset.objects.get(pk=outcome.asset.pk)  # and which is still there
    assert Job.objects.filter(asset=asset).count() == 1
    assert asset.file.storage.exists(asset.file.name)


def test_a_refused_enrolment_alone_leaves_nothing(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    subject = Subject.objects.create(owner=user, name="Ada")
    with pytest.raises(enrollment.EnrollmentError):
        enrollment.enroll_photo(subject, upload_of(jpeg_bytes(), "x.jpg"), "x.jpg",
                                lambda asset: {"faces": [], "model_version": "test"})
    assert not Asset.objects.exists()
