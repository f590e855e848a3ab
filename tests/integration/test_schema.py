"""The OpenAPI schema of the whole URLconf, and the Swagger UI that shows it (served offline)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates_without_warnings(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning or error (from any app) into a failure.
    schema_file = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))

    schema = yaml.safe_load(schema_file.read_text())
    assert schema["info"]["title"] == "Sightline API"
    assert {"/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/auth/logout/", "/api/v1/me/"} <= set(
        schema["paths"]
    )
    assert "jwtAuth" in schema["components"]["securitySchemes"]


def test_swagger_ui_loads_for_a_logged_in_user_from_local_static_only(client, user):
    client.force_login(user)

    response = client.get(reverse("api-docs"))

    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("api-schema") in html
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced, "the page should load its scripts and styles"
    assert all(url.startswith("/") for url in referenced), referenced
    assert "cdn" not in html.lower()
    assert not re.search(r"https?://", html)
