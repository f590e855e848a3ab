import pytest
from django.urls import reverse

DASHBOARD = "admin:django_rq_dashboard_changelist"


@pytest.mark.django_db
def test_staff_reach_the_queue_dashboard_from_the_admin(client, staff_user):
    client.force_login(staff_user)
    index = client.get("/admin/")
    assert reverse(DASHBOARD) in index.content.decode()
    dashboard = client.get(reverse(DASHBOARD))
    assert dashboard.status_code == 200
    for queue in ("inference", "realtime", "default"):
        assert queue in dashboard.content.decode()


@pytest.mark.django_db
def test_non_staff_cannot_see_the_queue_dashboard(client, user):
    client.force_login(user)
    response = client.get(reverse(DASHBOARD))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
