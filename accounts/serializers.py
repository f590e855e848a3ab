from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.forms import DUPLICATE_EMAIL_MESSAGE, clean_new_email
from accounts.models import User
from config.api import ModelSerializer


class UserSerializer(ModelSerializer):
    """The current user as the API shows it; only ``display_name`` can be changed."""

    class Meta:
        model = User
        fields = ("id", "email", "display_name", "is_staff", "date_joined")
        read_only_fields = ("id", "email", "is_staff", "date_joined")


class RegisterSerializer(ModelSerializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, trim_whitespace=False)

    class Meta:
        model = User
        fields = ("email", "password", "display_name")
        # Our own check replaces the model's case-sensitive unique validator.
        extra_kwargs = {"email": {"validators": []}, "display_name": {"required": False}}

    def validate_email(self, value):
        try:
            return clean_new_email(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error

    def validate(self, attrs):
        # Validators such as UserAttributeSimilarityValidator compare against the user's fields.
        candidate = User(email=attrs["email"], display_name=attrs.get("display_name", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": error.messages}) from error
        return attrs

    def create(self, validated_data):
        try:
            return User.objects.create_user(**validated_data)
        except IntegrityError as error:  # a concurrent sign-up with the same address won
            raise serializers.ValidationError({"email": [DUPLICATE_EMAIL_MESSAGE]}) from error


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegistrationResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token to revoke.")

    def validate_refresh(self, value):
        try:
            token = RefreshToken(value)
        except TokenError as error:
            raise serializers.ValidationError(str(error)) from error
        # A user revokes their own sessions only.
        if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(self.context["request"].user.pk):
            raise serializers.ValidationError("This refresh token belongs to another account.")
        return token

    def save(self):
        self.validated_data["refresh"].blacklist()
