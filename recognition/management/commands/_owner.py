"""Shared by the recognition commands: find the user named by ``--owner``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def find_owner(email: str | None):
    """The user with this email (any case); without one, the only user there is."""
    users = get_user_model().objects
    if email:
        owner = users.filter(email__iexact=email.strip()).first()
        if owner is None:
            raise CommandError(f"No user with the email {email!r}.")
        return owner
    only = list(users.order_by("pk")[:2])
    if len(only) != 1:
        raise CommandError("--owner EMAIL is required when there is not exactly one user.")
    return only[0]
