"""Two users with generated libraries (``library.generate``), a staff user with none, and API
clients for each; ``report_rows`` answers a report as Python values, whatever the surface."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from analysis import reports
from tests.integration.analysis import library


@pytest.fixture
def libraries(user, other_user):
    return {"user": library.generate(user, seed=1), "other": library.generate(other_user, seed=2)}


def client_for(someone) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(someone).access_token}")
    return client


def parsed(report_name: str, rows: list[dict]) -> list[dict]:
    """API JSON rows with dates and times as Python values, to compare with ``expected``."""
    kinds = {column.name: column.kind for column in reports.REPORTS[report_name].columns}
    out = []
    for row in rows:
        converted = dict(row)
        for name, value in row.items():
            if value is not None and kinds.get(name) == "date":
                converted[name] = date.fromisoformat(value)
            elif value is not None and kinds.get(name) == "datetime":
                converted[name] = datetime.fromisoformat(value)
        out.append(converted)
    return out


def assert_rows_equal(actual: list[dict], expected: list[dict]):
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected):
        assert set(got) >= set(want), (got, want)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, got, want)
            else:
                assert got[key] == value, (key, got, want)
