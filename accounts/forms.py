"""Forms for the email-based User: login and sign-up pages, and the admin."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import (
    AdminUserCreationForm,
    AuthenticationForm,
    BaseUserCreationForm,
    UserChangeForm,
)
from django.core.exceptions import ValidationError

from accounts.models import User, canonical_email

DUPLICATE_EMAIL_MESSAGE = "An account with this email address already exists."


def clean_new_email(email: str, instance: User | None = None) -> str:
    """Canonical form of ``email``; refuses one that another account already uses (any case)."""
    email = canonical_email(email)
    others = User.objects.filter(email__iexact=email)
    if instance is not None and instance.pk:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        raise ValidationError(DUPLICATE_EMAIL_MESSAGE, code="unique")
    return email


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form, asking for an email address (the field keeps its name, ``username``)."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    # Django's default adds "both fields may be case-sensitive"; emails are not.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password.",
    }


class RegistrationForm(BaseUserCreationForm):
    """Sign-up: email, optional display name, password twice (checked by the password validators)."""

    class Meta:
        model = User
        fields = ("email", "display_name")
        labels = {"email": "Email", "display_name": "Display name (optional)"}

    def clean_email(self):
        return clean_new_email(self.cleaned_data["email"])


class AdminUserAddForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name")

    def clean_email(self):
        return clean_new_email(self.cleaned_data["email"])


class AdminUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        return clean_new_email(self.cleaned_data["email"], instance=self.instance)
