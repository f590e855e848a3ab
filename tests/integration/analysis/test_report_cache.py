"""Reports are cached in Redis for a short while and renewed at once when a job of the owner
finishes or a person corrects a face or a person; other owners' caches stay."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from analysis import cache as report_cache
from recognition.models import Face, Job
from recognition.people import corrections
from tests.integration.analysis.conftest import client_for

pytestmark = pytest.mark.django_db


def answer(client, report="summary", **params):
    response = client.get(f"/api/v1/reports/{report}/", params)
    assert response.status_code == 200
    return response["X-Report-Cache"], response.json()["rows"]


def test_a_second_request_is_answered_from_the_cache(libraries, user):
    alice = client_for(user)
    state, first = answer(alice)
    assert state == "miss"
    state, second = answer(alice)
    assert state == "hit" and second == first
    # Other filters, other entry.
    assert answer(alice, kind="video")[0] == "miss"
    assert answer(alice, "daily")[0] == "miss"


def test_a_finished_job_renews_its_owners_reports_and_everyones_not_other_owners(
        libraries, user, other_user, staff_user, django_capture_on_commit_callbacks):
    alice, bob, staff = client_for(user), client_for(other_user), client_for(staff_user)
    for client in (alice, bob, staff):
        answer(client)
    before = answer(alice)[1][0]["finished_jobs"]

    running = Job.objects.filter(asset__owner=user, stage="detecting").first()
    with django_capture_on_commit_callbacks(execute=True):
        running.advance("completed")

    state, rows = answer(alice)
    assert state == "miss" and rows[0]["finished_jobs"] == before + 1
    assert answer(staff)[0] == "miss"
    assert answer(bob)[0] == "hit"


def test_progress_that_finishes_nothing_keeps_the_cache(libraries, user, django_capture_on_commit_callbacks):
    alice = client_for(user)
    answer(alice)
    job = Job.objects.filter(asset__owner=user).first()
    with django_capture_on_commit_callbacks(execute=True):
        job.report_progress(42)
    assert answer(alice)[0] == "hit"


def test_naming_a_face_renews_the_numbers(libraries, user, django_capture_on_commit_callbacks):
    alice = client_for(user)
    before = answer(alice)[1][0]["recognised_faces"]
    unknown = Face.objects.filter(owner=user, subject__isnull=True, dismissed=False).first()
    with django_capture_on_commit_callbacks(execute=True):
        corrections.name_face(unknown, libraries["user"].named[1])
    state, rows = answer(alice)
    assert state == "miss" and rows[0]["recognised_faces"] == before + 1


def test_the_ttl_is_a_setting_and_zero_turns_the_cache_off(libraries, user, settings):
    settings.SIGHTLINE_REPORT_CACHE_SECONDS = 0
    alice = client_for(user)
    assert answer(alice)[0] == "miss"
    assert answer(alice)[0] == "miss"


def test_cached_entries_expire_with_the_ttl(libraries, user):
    alice = client_for(user)
    answer(alice)
    keys = cache._cache.get_client().keys("sightline:*analysis:report:summary*")
    assert keys
    ttl = cache._cache.get_client().ttl(keys[0])
    assert 0 < ttl <= 60


def test_a_version_that_expired_never_meets_old_entries(user):
    cache.delete(f"analysis:version:{user.pk}")
    report_cache.bump(user.pk)  # no version yet: starts from the clock, not from 1
    assert report_cache.version(user.pk) > 1_000_000
