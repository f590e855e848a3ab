"""Who may see what: every user sees only what they own; staff see everything.

Three small pieces every app uses, so the rule lives in one place:

- ``owned_by(queryset, user, owner_field)``: the filter itself, for pages, consumers, commands;
- ``OwnedQuerysetMixin``: a DRF view(set) mixin that applies it in ``get_queryset`` (so other
  users' rows are never loaded: they answer 404, not 403) and sets the owner on create;
- ``IsOwnerOrStaff``: the object-level check, a second line behind the filtered queryset.

``owner_field`` is a Django lookup path to the owning user: ``"owner"`` on an Asset,
``"asset__owner"`` on a Face.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

LOOKUP_SEP = "__"


def owned_by(queryset: QuerySet, user, owner_field: str = "owner") -> QuerySet:
    """Rows of ``queryset`` owned by ``user``: all of them for staff, none for anonymous users."""
    if not user or not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(**{owner_field: user})


def owner_id_of(obj, owner_field: str = "owner"):
    """Follow ``owner_field`` to the owning user's id (``"asset__owner"`` → ``obj.asset.owner_id``),
    without loading the user row itself."""
    *path, last = owner_field.split(LOOKUP_SEP)
    for attribute in path:
        obj = getattr(obj, attribute, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


class IsOwnerOrStaff(BasePermission):
    """Authenticated users, and per object only its owner (``view.owner_field``) or staff."""

    message = "You do not have permission to access this item."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request, view, obj):
        if request.user.is_staff:
            return True
        owner_id = owner_id_of(obj, getattr(view, "owner_field", "owner"))
        return owner_id is not None and owner_id == request.user.pk


class OwnedQuerysetMixin:
    """For DRF generic views and viewsets: list, retrieve and change only what the user owns."""

    owner_field = "owner"
    permission_classes = [IsOwnerOrStaff]

    def get_queryset(self):
        return owned_by(super().get_queryset(), self.request.user, self.owner_field)

    def perform_create(self, serializer):
        # With a lookup path (``asset__owner``) the owner comes from the parent object,
        # which the serializer must limit to the user's own; there is nothing to set here.
        if LOOKUP_SEP in self.owner_field:
            serializer.save()
        else:
            serializer.save(**{self.owner_field: self.request.user})
