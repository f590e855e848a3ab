"""The user admin works with email as the login and no username."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_user_list_searches_and_filters_by_email(admin_client, user, other_user):
    response = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "alice", "is_staff__exact": "0"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [user]


def test_add_user_with_email_and_password(admin_client, django_user_model):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Carol@Example.com",
            "display_name": "Carol",
            "usable_password": "true",
            "password1": "a long enough secret",
            "password2": "a long enough secret",
        },
    )

    carol = django_user_model.objects.get(email="carol@example.com")
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert carol.check_password("a long enough secret") and carol.display_name == "Carol"


def test_add_user_refuses_an_email_taken_in_another_case(admin_client, user):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "ALICE@example.com",
            "usable_password": "true",
            "password1": "a long enough secret",
            "password2": "a long enough secret",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == ["An account with this email address already exists."]


def test_change_user(admin_client, user):
    url = reverse("admin:accounts_user_change", args=[user.pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        url,
        {
            "email": "alice@example.com",
            "display_name": "Alice L.",
            "first_name": "",
            "last_name": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.display_name == "Alice L."
    assert user.check_password("correct horse battery")  # untouched by the change form


def test_non_staff_cannot_reach_the_user_admin(client, user):
    client.force_login(user)
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302
