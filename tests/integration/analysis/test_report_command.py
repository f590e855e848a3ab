"""``manage.py report``: the API's rows as a table, CSV or JSON, for everyone or one owner."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from tests.integration.analysis import expected
from tests.integration.analysis.conftest import assert_rows_equal, parsed

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("report", list(expected.REPORTS))
def test_json_equals_the_recomputation_for_one_owner_and_everyone(report, libraries, user):
    mine = json.loads(run(report, "--owner", user.email, "--format", "json", "--since", "2026-03-02"))
    assert mine["filters"]["owner"] == user.pk
    assert_rows_equal(parsed(report, mine["rows"]),
                      expected.REPORTS[report](expected.Ask(owner_id=user.pk, since=date(2026, 3, 2))))
    everyone = json.loads(run(report, "--format", "json", "--no-cache"))
    assert_rows_equal(parsed(report, everyone["rows"]), expected.REPORTS[report](expected.Ask()))


def test_csv_and_table_show_the_same_rows(libraries, user):
    rows = expected.failures(expected.Ask(owner_id=user.pk))
    table = list(csv.reader(io.StringIO(run("failures", "--owner", user.email, "--format", "csv"))))
    assert table[0] == ["reason", "jobs", "last_seen", "example_asset", "example_name", "example_error"]
    assert [(line[0], int(line[1])) for line in table[1:]] == [(row["reason"], row["jobs"]) for row in rows]

    text = run("failures", "--owner", user.email)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["reason", "jobs"] and set(lines[1]) <= {"-", " "}
    for row, line in zip(rows, lines[2:]):
        assert line.split()[:2] == [row["reason"], str(row["jobs"])]


def test_an_empty_report_says_so(user):
    assert "(no rows)" in run("latency", "--owner", user.email)


@pytest.mark.parametrize("args, message", [
    (["daily", "--owner", "nobody@example.com"], "There is no user nobody@example.com."),
    (["daily", "--since", "March"], "'March' is not a day"),
    (["daily", "--since", "2026-03-05", "--until", "2026-03-01"], "since must be on or before until"),
    (["people", "--person", "999999"], "no person with id 999999"),
])
def test_mistakes_are_refused_in_words(args, message, user):
    with pytest.raises(CommandError, match=message):
        run(*args)
