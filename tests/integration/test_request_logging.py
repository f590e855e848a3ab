import json
import logging

import pytest

from config.logging import JsonFormatter, RequestContextFilter


@pytest.mark.django_db
def test_each_request_is_logged_once_as_json_with_context(client, user, caplog):
    client.force_login(user)
    with caplog.at_level(logging.INFO, logger="sightline.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    [record] = [r for r in caplog.records if r.name == "sightline.request"]
    RequestContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO"
    assert line["request_id"] == "abc-123"
    assert line["user_id"] == user.pk
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert "time" in line


def test_hostile_request_id_is_replaced(client, caplog):
    with caplog.at_level(logging.INFO, logger="sightline.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="evil\nnewline" + "x" * 100)
    assert response["X-Request-ID"].isalnum() and len(response["X-Request-ID"]) == 32


def test_log_lines_outside_requests_have_no_request_context():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    RequestContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["request_id"] is None and line["user_id"] is None
