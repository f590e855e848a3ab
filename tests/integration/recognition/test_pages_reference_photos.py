"""Reference photos uploaded on a person's page teach recognition, through the realtime worker
like the API's enrolment; a photo that cannot teach says why and leaves nothing behind."""

import pytest
from django.test import Client
from django.urls import reverse

from media.models import Asset
from recognition.models import Face, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_reference_photos_from_the_person_page(user, faces_dir, realtime_worker):
    obama = Subject.objects.create(owner=user, name="Obama")
    client = Client()
    client.force_login(user)

    response = client.post(reverse("person-photos", args=[obama.pk]), {
        "photos": [upload_of(faces_dir / "gallery" / "obama" / "obama.jpg"), upload_of(jpeg_bytes(), "wall.jpg"),
                   upload_of(faces_dir / "probes" / "multiface.jpg")],
    }, follow=True)

    said = [str(m) for m in response.context["messages"]]
    assert said[0] == "obama.jpg: added as a reference photo of Obama."
    assert said[1] == "wall.jpg: No face was found in this photo; an example needs exactly one face."
    # In the page's words: it has no face_index to choose with, as the API has.
    assert said[2].startswith("multiface.jpg: 6 faces were found in this photo, so it cannot tell which one is Obama.")
    assert "face_index" not in said[2]
    example = Face.objects.get(subject=obama)
    assert (example.is_example, example.decided_by) == (True, "human")
    assert list(Asset.objects.values_list("original_name", flat=True)) == ["obama.jpg"]
