"""GET /api/v1/reports/<report>/: every report's numbers equal an independent recomputation
(``expected``), for each filter and for each viewer; ownership; CSV; errors."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from analysis import reports
from recognition.models import Subject
from tests.integration.analysis import expected
from tests.integration.analysis.conftest import assert_rows_equal, client_for, parsed
from tests.integration.analysis.library import generate

pytestmark = pytest.mark.django_db

REPORTS = list(reports.REPORTS)
FILTERS = {
    "none": {},
    "period": {"since": date(2026, 3, 3), "until": date(2026, 3, 9)},
    "since only": {"since": date(2026, 3, 6)},
    # The library has uploads at 2026-03-03 00:00 and a microsecond before: one day, each side.
    "the day before a midnight upload": {"since": date(2026, 3, 2), "until": date(2026, 3, 2)},
    "the day of a midnight upload": {"since": date(2026, 3, 3), "until": date(2026, 3, 3)},
    "videos": {"kind": "video"},
    "photos in a period": {"kind": "image", "since": date(2026, 3, 2), "until": date(2026, 3, 10)},
    "empty period": {"since": date(2025, 1, 1), "until": date(2025, 1, 31)},
}


def get(client, report: str, **params):
    response = client.get(f"/api/v1/reports/{report}/", {k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.content
    return response


def rows(client, report: str, **params) -> list[dict]:
    return parsed(report, get(client, report, **params).json()["rows"])


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("filters", list(FILTERS), ids=list(FILTERS))
def test_a_users_report_equals_the_recomputation(report, filters, libraries, user):
    params = FILTERS[filters]
    answer = rows(client_for(user), report, **params)
    assert_rows_equal(answer, expected.REPORTS[report](expected.Ask(owner_id=user.pk, **params)))


@pytest.mark.parametrize("report", REPORTS)
def test_the_person_filter_equals_the_recomputation(report, libraries, user):
    for person in (libraries["user"].named[0], libraries["user"].unnamed[0]):
        answer = rows(client_for(user), report, person=person.pk)
        assert_rows_equal(answer, expected.REPORTS[report](expected.Ask(owner_id=user.pk, person=person.pk)))


@pytest.mark.parametrize("report", REPORTS)
def test_staff_see_everyone_or_one_owner(report, libraries, user, other_user, staff_user):
    staff = client_for(staff_user)
    assert_rows_equal(rows(staff, report), expected.REPORTS[report](expected.Ask()))
    assert_rows_equal(rows(staff, report, owner=other_user.pk),
                      expected.REPORTS[report](expected.Ask(owner_id=other_user.pk)))
    assert_rows_equal(rows(staff, report, owner=other_user.email.upper(), kind="image"),
                      expected.REPORTS[report](expected.Ask(owner_id=other_user.pk, kind="image")))


@pytest.mark.parametrize("report", REPORTS)
def test_a_user_sees_only_their_own_data_and_may_not_ask_for_anothers(report, libraries, user, other_user):
    bob = client_for(other_user)
    assert_rows_equal(rows(bob, report), expected.REPORTS[report](expected.Ask(owner_id=other_user.pk)))
    assert rows(bob, report) != rows(client_for(user), report)

    refused = bob.get(f"/api/v1/reports/{report}/", {"owner": user.pk})
    assert refused.status_code == 403
    assert refused.json()["code"] == "owner_staff_only"
    assert "Only staff" in refused.json()["message"]
    # Naming nobody (or oneself) is no different: no hint whether the user exists.
    assert bob.get(f"/api/v1/reports/{report}/", {"owner": "nobody@example.com"}).status_code == 403
    assert rows(bob, report, owner=other_user.email) == rows(bob, report)

    alices_person = libraries["user"].named[0]
    missing = bob.get(f"/api/v1/reports/{report}/", {"person": alices_person.pk})
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_reports_of_a_user_without_anything_are_empty_or_zero(libraries, staff_user):
    staff = client_for(staff_user)
    for report in ("daily", "people", "latency", "failures"):
        assert rows(staff, report, owner=staff_user.pk) == []
    [total] = rows(staff, "summary", owner=staff_user.pk)
    assert total["faces"] == total["photos"] == total["storage_bytes"] == 0
    assert total["recognised_share"] is None and total["model_versions"] == []


def test_daily_columns_add_up_to_the_summary(libraries, user):
    alice = client_for(user)
    days = rows(alice, "daily")
    [total] = rows(alice, "summary")
    for column in ("photos", "videos", "faces", "recognised_faces", "unknown_faces", "dismissed_faces", "failed_jobs"):
        assert sum(day[column] for day in days) == total[column], column
    assert all(day["faces"] == day["recognised_faces"] + day["unknown_faces"] for day in days)
    # Days without anything are rows of zeros, so the line chart does not skip them.
    assert [day["day"] for day in days] == sorted({day["day"] for day in days})
    assert (days[-1]["day"] - days[0]["day"]).days == len(days) - 1


def test_days_follow_the_configured_time_zone(django_user_model, settings):
    owner = django_user_model.objects.create_user(email="tz@example.com", password="a long passphrase")
    generate(owner, seed=9, assets=2)  # uploads at 2026-03-03 00:00 UTC and a microsecond before
    client = client_for(owner)

    def uploads(rows_):
        return [(row["day"], row["photos"] + row["videos"]) for row in rows_]

    assert uploads(rows(client, "daily")) == [(date(2026, 3, 2), 1), (date(2026, 3, 3), 1)]
    settings.TIME_ZONE = "America/New_York"  # both are on the evening of the 2nd there
    assert uploads(rows(client, "daily")) == [(date(2026, 3, 2), 2)]
    assert_rows_equal(rows(client, "daily"), expected.daily(expected.Ask(owner_id=owner.pk)))
    assert uploads(rows(client, "daily", since="2026-03-03", until="2026-03-03")) == [(date(2026, 3, 3), 0)]


@pytest.mark.parametrize("report", REPORTS)
def test_csv_has_a_header_and_the_same_rows(report, libraries, user):
    alice = client_for(user)
    body = get(alice, report).json()
    response = get(alice, report, format="csv")

    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="sightline-{report}.csv"' in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == body["columns"] == reports.REPORTS[report].column_names()
    assert len(table) - 1 == len(body["rows"])
    for line, row in zip(table[1:], body["rows"]):
        for name, text in zip(table[0], line):
            value = row[name]
            if value is None:
                assert text == ""
            elif isinstance(value, bool):
                assert text == str(value).lower()
            elif isinstance(value, (int, float)):
                assert float(text) == pytest.approx(value)
            elif isinstance(value, list):
                assert text == "; ".join(f"{v['model']} {v['version']} ({v['count']})" for v in value)
            else:
                assert text.replace("+00:00", "Z") == value.replace("+00:00", "Z") or text.startswith(value[:19])


def test_csv_cells_cannot_run_as_spreadsheet_formulas(libraries, user):
    Subject.objects.filter(pk=libraries["user"].named[0].pk).update(name="=HYPERLINK(\"http://evil\")")
    text = get(client_for(user), "people", format="csv").content.decode()
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


@pytest.mark.parametrize("params, status, words", [
    ({"since": "2026-03-10", "until": "2026-03-01"}, 400, "since must be on or before until"),
    ({"since": "yesterday"}, 400, "since"),
    ({"kind": "sound"}, 400, "kind"),
    ({"since": "2000-01-01", "until": "2026-01-01"}, 400, "at most"),
    ({"person": 999999}, 404, "no person"),
    ({"format": "xml"}, 404, ""),
])
def test_bad_filters_are_refused_in_words_as_json(params, status, words, user):
    response = client_for(user).get("/api/v1/reports/daily/", params)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert words in response.json()["message"]


def test_csv_errors_are_json_too(user, other_user):
    response = client_for(user).get("/api/v1/reports/people/", {"format": "csv", "owner": other_user.pk})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert "Only staff" in response.json()["message"]


def test_options_with_format_csv_describes_the_view_in_json(user):
    # Found by the schema fuzzer: the CSV renderer was handed the view's description (a 500).
    response = client_for(user).options("/api/v1/reports/daily/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["name"]


def test_reports_need_a_login_and_unknown_reports_are_404(client, user):
    assert client.get("/api/v1/reports/daily/").status_code in (401, 403)
    assert client_for(user).get("/api/v1/reports/weekly/").status_code == 404


def test_the_index_lists_every_report_with_its_links(user):
    listing = client_for(user).get("/api/v1/reports/").json()
    assert [entry["name"] for entry in listing] == REPORTS
    for entry in listing:
        assert entry["url"].endswith(f"/api/v1/reports/{entry['name']}/")
        assert entry["csv_url"] == entry["url"] + "?format=csv"
        assert entry["columns"] == reports.REPORTS[entry["name"]].column_names()


def test_the_schema_documents_each_reports_rows_json_and_csv(tmp_path):
    import yaml
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    for name, report in reports.REPORTS.items():
        get_ = schema["paths"][f"/api/v1/reports/{name}/"]["get"]
        assert set(get_["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        assert {"since", "until", "kind", "person", "owner", "format"} <= {p["name"] for p in get_["parameters"]}
        rows = schema["components"]["schemas"][f"{name.title()}ReportRow"]["properties"]
        assert list(rows) == report.column_names()
        assert set(get_["responses"]) >= {"200", "400", "403", "404"}


def test_people_count_video_appearances_by_the_person_of_their_best_face(libraries, user):
    answer = rows(client_for(user), "people")
    assert any(row["appearances"] > 0 for row in answer)
    for row in answer:
        assert row["appearances"] <= row["faces"]
        if row["videos"] == 0:
            assert row["appearances"] == 0
