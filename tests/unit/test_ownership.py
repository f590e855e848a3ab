"""Ownership rules shared by every app: owned_by, IsOwnerOrStaff, OwnedQuerysetMixin.

Real tables with a user foreign key stand in for the later apps' models: simplejwt's
OutstandingToken (``user``, like an Asset's ``owner``) and BlacklistedToken (``token__user``,
like a Face's ``asset__owner``).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework import generics, serializers
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.ownership import IsOwnerOrStaff, OwnedQuerysetMixin, owned_by, owner_id_of


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def where_clause(queryset) -> str:
    """The WHERE part of the queryset's SQL ("" if it has none), without any ORDER BY."""
    sql = str(queryset.order_by().query)
    return sql[sql.index(" WHERE ") :] if " WHERE " in sql else ""


# --- owned_by -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_owned_by_filters_in_sql_on_the_owner_column(user):
    queryset = owned_by(OutstandingToken.objects.all(), user, "user")

    assert where_clause(queryset) == f' WHERE "token_blacklist_outstandingtoken"."user_id" = {user.pk}'


@pytest.mark.django_db
def test_owned_by_follows_a_lookup_path_with_a_join(user):
    queryset = owned_by(BlacklistedToken.objects.all(), user, "token__user")

    sql = str(queryset.query)
    assert 'INNER JOIN "token_blacklist_outstandingtoken"' in sql
    assert where_clause(queryset) == f' WHERE "token_blacklist_outstandingtoken"."user_id" = {user.pk}'


@pytest.mark.django_db
def test_owned_by_returns_only_the_users_rows(user, other_user):
    alices = [RefreshToken.for_user(user) for _ in range(2)]
    bobs = RefreshToken.for_user(other_user)
    alices[0].blacklist()
    bobs.blacklist()

    tokens = owned_by(OutstandingToken.objects.all(), user, "user")
    blacklisted = owned_by(BlacklistedToken.objects.all(), user, "token__user")

    assert sorted(tokens.values_list("jti", flat=True)) == sorted(t["jti"] for t in alices)
    assert list(blacklisted.values_list("token__jti", flat=True)) == [alices[0]["jti"]]


@pytest.mark.django_db
def test_staff_see_everything_unfiltered(user, other_user, staff_user):
    RefreshToken.for_user(user), RefreshToken.for_user(other_user)

    queryset = owned_by(OutstandingToken.objects.all(), staff_user, "user")

    assert where_clause(queryset) == ""
    assert queryset.count() == 2


@pytest.mark.django_db
def test_anonymous_users_own_nothing(user):
    RefreshToken.for_user(user)

    assert list(owned_by(OutstandingToken.objects.all(), AnonymousUser(), "user")) == []
    assert list(owned_by(OutstandingToken.objects.all(), None, "user")) == []


# --- IsOwnerOrStaff -------------------------------------------------------------------------


def person(pk, is_staff=False):
    # Like model instances, stand-ins are equal when their primary keys are.
    return SimpleNamespace(pk=pk, is_authenticated=True, is_staff=is_staff)


def check(obj, user, owner_field="owner"):
    request = SimpleNamespace(user=user)
    view = SimpleNamespace(owner_field=owner_field)
    permission = IsOwnerOrStaff()
    return permission.has_permission(request, view) and permission.has_object_permission(request, view, obj)


def test_owner_may_access_their_object():
    assert check(SimpleNamespace(owner_id=1), person(1))


def test_someone_else_may_not():
    assert not check(SimpleNamespace(owner_id=1), person(2))


def test_staff_may_access_anything():
    assert check(SimpleNamespace(owner_id=1), person(3, is_staff=True))


def test_owner_is_found_through_a_lookup_path():
    alice = person(1)
    face = SimpleNamespace(asset=SimpleNamespace(owner_id=alice.pk))

    assert owner_id_of(face, "asset__owner") == alice.pk
    assert check(face, alice, "asset__owner")
    assert not check(face, person(2), "asset__owner")


def test_an_object_without_owner_is_nobodys():
    alice = person(1)
    assert not check(SimpleNamespace(owner_id=None), alice)
    assert not check(SimpleNamespace(asset=None), alice, "asset__owner")


def test_anonymous_users_are_refused_before_any_object():
    permission = IsOwnerOrStaff()
    assert not permission.has_permission(SimpleNamespace(user=AnonymousUser()), SimpleNamespace())


# --- OwnedQuerysetMixin, in a real DRF view -------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = OutstandingToken
        fields = ("id", "jti")


class OwnTokenList(OwnedQuerysetMixin, generics.ListAPIView):
    queryset = OutstandingToken.objects.order_by("id")
    serializer_class = TokenSerializer
    owner_field = "user"
    pagination_class = None


class OwnTokenDetail(OwnedQuerysetMixin, generics.RetrieveAPIView):
    queryset = OutstandingToken.objects.all()
    serializer_class = TokenSerializer
    owner_field = "user"


def call(view, user, **kwargs):
    request = APIRequestFactory().get("/")
    if user is not None:
        force_authenticate(request, user=user)
    return view.as_view()(request, **kwargs)


@pytest.mark.django_db
def test_list_shows_only_own_rows_and_staff_see_all(user, other_user, staff_user):
    mine = RefreshToken.for_user(user)
    RefreshToken.for_user(other_user)

    assert [row["jti"] for row in call(OwnTokenList, user).data] == [mine["jti"]]
    assert len(call(OwnTokenList, staff_user).data) == 2


@pytest.mark.django_db
def test_someone_elses_object_is_404_not_403(user, other_user):
    theirs = OutstandingToken.objects.get(jti=RefreshToken.for_user(other_user)["jti"])

    assert call(OwnTokenDetail, user, pk=theirs.pk).status_code == 404
    assert call(OwnTokenDetail, other_user, pk=theirs.pk).status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_are_refused(user):
    RefreshToken.for_user(user)
    assert call(OwnTokenList, None).status_code == 401


class RecordingSerializer:
    """Stands in for a serializer: remembers what save() was given."""

    def save(self, **kwargs):
        self.saved_with = kwargs


def test_perform_create_sets_the_owner():
    view = OwnedQuerysetMixin()
    view.request = SimpleNamespace(user=person(1))
    serializer = RecordingSerializer()

    view.perform_create(serializer)

    assert serializer.saved_with == {"owner": view.request.user}


def test_perform_create_leaves_an_inherited_owner_to_the_parent():
    view = OwnedQuerysetMixin()
    view.owner_field = "asset__owner"
    view.request = SimpleNamespace(user=person(1))
    serializer = RecordingSerializer()

    view.perform_create(serializer)

    assert serializer.saved_with == {}
