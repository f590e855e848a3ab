"""Accounts API: sign-up, JWT obtain/refresh/verify/logout, /me/, token tampering, throttling."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # the `user` fixture's password


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is not what these tests are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def obtain_tokens(client, email, password):
    return client.post(reverse("auth-token"), {"email": email, "password": password}, format="json")


def bearer(client, access):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- registration ---------------------------------------------------------------------------


def test_register_returns_the_user_and_working_tokens(api_client, django_user_model):
    response = api_client.post(
        reverse("auth-register"),
        {"email": "  Carol@Example.COM ", "password": "a long enough secret", "display_name": "Carol"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["user"]["email"] == "carol@example.com"
    assert body["user"]["display_name"] == "Carol"
    assert "password" not in body["user"]
    assert django_user_model.objects.get(email="carol@example.com").check_password("a long enough secret")
    me = bearer(api_client, body["access"]).get(reverse("me"))
    assert me.status_code == 200 and me.json()["email"] == "carol@example.com"


def test_register_without_display_name(api_client):
    response = api_client.post(
        reverse("auth-register"), {"email": "dave@example.com", "password": "a long enough secret"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["user"]["display_name"] == ""


def test_register_duplicate_email_in_any_case_is_refused_clearly(api_client, user):
    response = api_client.post(
        reverse("auth-register"), {"email": "ALICE@example.com", "password": "a long enough secret"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "email: An account with this email address already exists."
    assert body["code"] == "invalid"
    assert "email" in body["errors"]


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("83920174659201", "entirely numeric"),
        ("erin@example.com", "too similar"),
    ],
)
def test_register_applies_django_password_validators(api_client, django_user_model, password, fragment):
    response = api_client.post(
        reverse("auth-register"), {"email": "erin@example.com", "password": password}, format="json"
    )

    assert response.status_code == 400
    assert fragment in " ".join(response.json()["errors"]["password"])
    assert not django_user_model.objects.filter(email="erin@example.com").exists()


def test_register_rejects_a_malformed_email(api_client):
    response = api_client.post(
        reverse("auth-register"), {"email": "not-an-email", "password": "a long enough secret"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("email: ")


# --- tokens ---------------------------------------------------------------------------------


def test_obtain_tokens_with_email_and_password(api_client, user):
    response = obtain_tokens(api_client, "Alice@Example.com", PASSWORD)

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    me = bearer(api_client, response.json()["access"]).get(reverse("me"))
    assert me.json()["email"] == "alice@example.com"


def test_obtain_tokens_with_a_wrong_password_is_401_with_a_message(api_client, user):
    response = obtain_tokens(api_client, user.email, "wrong password")

    assert response.status_code == 401
    assert response.json()["message"] == "No active account found with the given credentials"


def test_inactive_user_cannot_obtain_tokens(api_client, user):
    user.is_active = False
    user.save()
    assert obtain_tokens(api_client, user.email, PASSWORD).status_code == 401


def test_refresh_rotates_and_blacklists_the_old_refresh_token(api_client, user):
    first = obtain_tokens(api_client, user.email, PASSWORD).json()

    rotated = api_client.post(reverse("auth-token-refresh"), {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != first["refresh"]
    assert bearer(api_client, rotated.json()["access"]).get(reverse("me")).status_code == 200
    api_client.credentials()
    replay = api_client.post(reverse("auth-token-refresh"), {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"
    again = api_client.post(reverse("auth-token-refresh"), {"refresh": rotated.json()["refresh"]}, format="json")
    assert again.status_code == 200


def test_verify_accepts_a_valid_token_and_rejects_garbage(api_client, user):
    tokens = obtain_tokens(api_client, user.email, PASSWORD).json()

    assert api_client.post(reverse("auth-token-verify"), {"token": tokens["access"]}, format="json").status_code == 200
    bad = api_client.post(reverse("auth-token-verify"), {"token": "not.a.token"}, format="json")
    assert bad.status_code == 401
    assert bad.json()["message"]


def test_logout_blacklists_the_refresh_token(api_client, user):
    tokens = obtain_tokens(api_client, user.email, PASSWORD).json()
    bearer(api_client, tokens["access"])

    response = api_client.post(reverse("auth-logout"), {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 205
    api_client.credentials()
    refused = api_client.post(reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json")
    assert refused.status_code == 401
    assert "blacklisted" in refused.json()["message"]


def test_logout_requires_authentication(api_client, user):
    tokens = obtain_tokens(api_client, user.email, PASSWORD).json()

    response = api_client.post(reverse("auth-logout"), {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    still_valid = api_client.post(reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json")
    assert still_valid.status_code == 200


def test_logout_refuses_another_users_refresh_token(api_client, user, other_user):
    bobs = obtain_tokens(api_client, other_user.email, "another long secret").json()
    alices = obtain_tokens(api_client, user.email, PASSWORD).json()
    bearer(api_client, alices["access"])

    response = api_client.post(reverse("auth-logout"), {"refresh": bobs["refresh"]}, format="json")

    assert response.status_code == 400
    assert response.json()["message"] == "refresh: This refresh token belongs to another account."


def test_logout_with_an_invalid_refresh_token_is_400(auth_client):
    response = auth_client.post(reverse("auth-logout"), {"refresh": "garbage"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["refresh"]


# --- /me/ -----------------------------------------------------------------------------------


def test_me_returns_the_current_user(auth_client, user):
    body = auth_client.get(reverse("me")).json()
    assert body == {
        "id": user.pk,
        "email": "alice@example.com",
        "display_name": "",
        "is_staff": False,
        "date_joined": body["date_joined"],
    }


def test_me_patch_changes_only_the_display_name(auth_client, user):
    response = auth_client.patch(
        reverse("me"), {"display_name": "Alice L.", "email": "evil@example.com", "is_staff": True}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.display_name, user.email, user.is_staff) == ("Alice L.", "alice@example.com", False)


def test_me_refuses_put(auth_client):
    assert auth_client.put(reverse("me"), {"display_name": "x"}, format="json").status_code == 405


def test_anonymous_api_request_is_401_with_a_json_message(api_client):
    response = api_client.get(reverse("me"))

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": "Authentication credentials were not provided.",
        "status": 401,
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_session_login_also_authenticates_the_api(client, user):
    client.force_login(user)
    assert client.get(reverse("me")).json()["email"] == user.email


# --- forged, expired and tampered tokens ----------------------------------------------------


def _claims(user, **overrides):
    """Access-token claims as simplejwt writes them (times as Unix seconds)."""
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"token_type": "access", "exp": now + 300, "iat": now, "jti": "0123456789abcdef", "user_id": user.pk}
    claims.update(overrides)
    return claims


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_token_we_signed_ourselves_is_accepted(api_client, user):
    # Control for the forgeries below: the claims and key are right.
    token = jwt.encode(_claims(user), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert bearer(api_client, token).get(reverse("me")).status_code == 200


def test_expired_token_is_401(api_client, user):
    an_hour_ago = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp())
    token = jwt.encode(
        _claims(user, exp=an_hour_ago, iat=an_hour_ago - 900), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"
    )
    response = bearer(api_client, token).get(reverse("me"))
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_token_signed_with_another_key_is_401(api_client, user):
    token = jwt.encode(_claims(user), "not the server's key, long enough for hs256 use", algorithm="HS256")
    assert bearer(api_client, token).get(reverse("me")).status_code == 401


def test_unsigned_alg_none_token_is_401(api_client, user):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user))}."
    assert bearer(api_client, token).get(reverse("me")).status_code == 401


def test_tampered_payload_is_401(api_client, user, staff_user):
    genuine = str(AccessToken.for_user(user))
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = staff_user.pk  # try to become staff with alice's signature

    forged = f"{header}.{_b64(claims)}.{signature}"

    assert bearer(api_client, genuine).get(reverse("me")).status_code == 200
    assert bearer(api_client, forged).get(reverse("me")).status_code == 401


def test_refresh_token_is_not_accepted_as_an_access_token(api_client, user):
    refresh = obtain_tokens(api_client, user.email, PASSWORD).json()["refresh"]
    assert bearer(api_client, refresh).get(reverse("me")).status_code == 401


def test_token_of_a_deactivated_user_is_401(api_client, user):
    access = obtain_tokens(api_client, user.email, PASSWORD).json()["access"]
    user.is_active = False
    user.save()
    assert bearer(api_client, access).get(reverse("me")).status_code == 401


# --- throttling -----------------------------------------------------------------------------


def test_eleventh_login_attempt_from_one_client_is_429(api_client, user):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
    statuses = [obtain_tokens(api_client, f"guess{n}@example.com", "wrong password").status_code for n in range(limit)]

    over = obtain_tokens(api_client, user.email, PASSWORD)

    assert statuses == [401] * limit
    assert over.status_code == 429
    assert over.json()["code"] == "throttled"
    assert "throttled" in over.json()["message"]
    assert int(over["Retry-After"]) > 0


def test_login_attempts_on_one_email_are_limited_across_client_addresses(api_client, user):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
    for n in range(limit):
        response = api_client.post(
            reverse("auth-token"),
            {"email": user.email, "password": "wrong password"},
            format="json",
            REMOTE_ADDR=f"10.0.0.{n + 1}",
        )
        assert response.status_code == 401

    # Right password, fresh address, but the account's budget is spent (the email is matched in any case).
    response = api_client.post(
        reverse("auth-token"), {"email": "ALICE@example.com", "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.1.1"
    )
    assert response.status_code == 429
    # Another account from yet another address is unaffected.
    response = api_client.post(
        reverse("auth-token"), {"email": "bob@example.com", "password": "x"}, format="json", REMOTE_ADDR="10.0.1.2"
    )
    assert response.status_code == 401


def test_registration_is_throttled(api_client):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
    for n in range(limit):
        response = api_client.post(reverse("auth-register"), {"email": f"bad{n}", "password": "x"}, format="json")
        assert response.status_code == 400
    response = api_client.post(
        reverse("auth-register"), {"email": "late@example.com", "password": "a long enough secret"}, format="json"
    )
    assert response.status_code == 429
