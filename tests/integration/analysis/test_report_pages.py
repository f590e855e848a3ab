"""The report pages (/reports/): filters, a chart drawn as inline SVG with the table of its
numbers under it, CSV links with the same filters; owner-scoped like the API."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from tests.integration.analysis import expected

pytestmark = pytest.mark.django_db

PAGES = {"summary": "/reports/", "daily": "/reports/daily/", "people": "/reports/people/",
         "latency": "/reports/latency/", "failures": "/reports/failures/"}


def logged_in(someone) -> Client:
    client = Client()
    client.force_login(someone)
    return client


def table_rows(html: str) -> list[list[str]]:
    """The cells of the report table's body, tags stripped."""
    table = re.search(r'<table class="report-table">(.*?)</table>', html, re.S).group(1)
    body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in rows]


@pytest.mark.parametrize("report, url", PAGES.items())
def test_every_page_has_a_chart_a_table_and_a_csv_link(report, url, libraries, user, django_assert_max_num_queries):
    client = logged_in(user)
    with django_assert_max_num_queries(14):  # a fixed number, however many rows
        response = client.get(url, {"since": "2026-03-02", "kind": "image"})
    html = response.content.decode()

    assert response.status_code == 200
    assert re.search(r'<svg class="chart-svg"[^>]*role="img"[^>]*aria-labelledby="[^"]+-title [^"]+-desc"', html)
    assert "<title" in html and "<desc" in html
    assert '<table class="report-table' in html and '<th scope="col"' in html
    csv_link = re.search(r'href="([^"]*format=csv[^"]*)"', html).group(1).replace("&amp;", "&")
    assert csv_link.startswith(f"/api/v1/reports/{report}/?format=csv")
    assert "since=2026-03-02" in csv_link and "kind=image" in csv_link
    assert client.get(csv_link).status_code == 200
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from a CDN


def test_the_daily_table_shows_the_recomputed_numbers(libraries, user):
    html = logged_in(user).get(PAGES["daily"], {"since": "2026-03-02", "until": "2026-03-08"}).content.decode()
    want = expected.daily(expected.Ask(owner_id=user.pk, since=date(2026, 3, 2), until=date(2026, 3, 8)))
    assert table_rows(html) == [
        [row["day"].isoformat(), *(str(row[c]) for c in ("photos", "videos", "faces", "recognised_faces",
                                                         "unknown_faces", "dismissed_faces", "failed_jobs"))]
        for row in want
    ]
    assert html.count("<polyline") == 4  # uploads, faces, recognised, unknown
    assert html.count('r="5"') == 4 * len(want)  # a week's days: dots big enough to see


def test_a_month_of_days_has_small_dots(libraries, user):
    html = logged_in(user).get(PAGES["daily"], {"since": "2026-03-01", "until": "2026-03-31"}).content.decode()
    assert 'r="3"' in html and 'r="5"' not in html


def test_the_people_table_links_each_person_and_the_chart_has_a_bar_each(libraries, user):
    html = logged_in(user).get(PAGES["people"]).content.decode()
    want = expected.people(expected.Ask(owner_id=user.pk))
    rows = table_rows(html)
    assert [row[1] for row in rows] == [r["name"] or f"Unnamed person {r['person']}" for r in want]
    assert [row[7] for row in rows] == [str(r["faces"]) for r in want]
    for person in want:
        assert f'href="/people/{person["person"]}/"' in html
    assert html.count("<rect") == 2 * len(want)  # faces and photos per person


def test_the_failures_table_links_the_example_asset(libraries, user):
    html = logged_in(user).get(PAGES["failures"]).content.decode()
    for row in expected.failures(expected.Ask(owner_id=user.pk)):
        assert f'href="/assets/{row["example_asset"]}/"' in html
        assert row["reason"] in html


def test_the_overview_shows_the_totals_and_model_versions(libraries, user):
    html = logged_in(user).get(PAGES["summary"]).content.decode()
    [total] = expected.summary(expected.Ask(owner_id=user.pk))
    assert f'<span class="stat-value">{total["faces"]}</span><span class="stat-label">faces</span>' in html
    assert f"{round(100 * total['recognised_share'])}%" in html
    for version in total["model_versions"]:
        assert version["version"] in html


def test_another_users_data_is_refused_in_words(libraries, user, other_user):
    client = logged_in(other_user)
    response = client.get(PAGES["daily"], {"owner": user.pk})
    assert response.status_code == 403
    assert "Only staff can see another user" in response.content.decode()
    response = client.get(PAGES["people"], {"person": libraries["user"].named[0].pk})
    assert response.status_code == 404
    assert f"You have no person with id {libraries['user'].named[0].pk}." in response.content.decode()
    # The owner menu is for staff only.
    assert 'name="owner"' not in client.get(PAGES["summary"]).content.decode()


def test_staff_choose_an_owner_and_then_one_of_their_people(libraries, user, staff_user):
    client = logged_in(staff_user)
    html = client.get(PAGES["people"]).content.decode()
    assert 'name="owner"' in html and f'<option value="{user.pk}">{user.email}</option>' in html
    assert "Choose an owner to pick one of their people." in html
    everyone = table_rows(html)
    assert len(everyone) == len(expected.people(expected.Ask()))

    html = client.get(PAGES["people"], {"owner": user.pk}).content.decode()
    assert len(table_rows(html)) == len(expected.people(expected.Ask(owner_id=user.pk)))
    person = libraries["user"].named[0]
    assert f'<option value="{person.pk}">{person.name}</option>' in html


def test_bad_dates_are_shown_as_form_errors(user):
    response = logged_in(user).get(PAGES["daily"], {"since": "soon"})
    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()


def test_unknown_reports_are_404_and_anonymous_visitors_log_in_first(client, user):
    assert logged_in(user).get("/reports/weekly/").status_code == 404
    response = client.get(PAGES["daily"])
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_the_nav_links_the_reports(user):
    html = logged_in(user).get(PAGES["latency"]).content.decode()
    assert re.search(r'<a href="/reports/" aria-current="page">Reports</a>', html)
    assert re.search(r'<a href="/reports/latency/" aria-current="page">Processing latency</a>', html)
