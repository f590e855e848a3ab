"""The report pages' filter form: the API's query parameters as a GET form. The form only
parses; who may see what is ``filters.resolve``'s to say, as for the API."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Q, Value, When

from analysis.filters import ReportFilters, resolve
from recognition.models import Subject

# People offered in the person menu: named ones A to Z, then unnamed ones with faces.
PEOPLE_IN_MENU = 300
KIND_CHOICES = [("", "Photos and videos"), ("image", "Photos"), ("video", "Videos")]


class DateInput(forms.DateInput):
    input_type = "date"


class ReportFilterForm(forms.Form):
    since = forms.DateField(required=False, label="From", widget=DateInput)
    until = forms.DateField(required=False, label="To", widget=DateInput)
    kind = forms.ChoiceField(required=False, label="Kind", choices=KIND_CHOICES)
    person = forms.IntegerField(required=False, label="Person", widget=forms.Select)
    owner = forms.CharField(required=False, label="Owner", widget=forms.Select)

    def __init__(self, data, *, viewer):
        super().__init__(data)
        self.viewer = viewer
        self.raw_owner = (data.get("owner") or "").strip()
        if viewer.is_staff:
            users = get_user_model().objects.order_by("email").values_list("pk", "email")
            self.fields["owner"].widget.choices = [("", "Everyone"), *((str(pk), email) for pk, email in users)]
        else:
            # Not offered; a hand-made ?owner= still reaches ``resolve``, which refuses it in words.
            del self.fields["owner"]
        scope_owner = viewer.pk if not viewer.is_staff else _owner_id(self.raw_owner)
        self.fields["person"].widget.choices = [("", "Everyone")] + people_menu(scope_owner, data.get("person"))
        if scope_owner is None:
            self.fields["person"].help_text = "Choose an owner to pick one of their people."

    def filters(self) -> ReportFilters:
        """The resolved filters (call after ``is_valid``); raises the refusals of ``resolve``."""
        data = self.cleaned_data
        return resolve(self.viewer, owner=self.raw_owner or None, since=data.get("since"), until=data.get("until"),
                       kind=data.get("kind") or None, person=data.get("person"))

    def query_string(self) -> str:
        """The filters as given, for links to other reports and to CSV."""
        keep = {name: self.data.get(name) for name in ("since", "until", "kind", "person", "owner")}
        return urlencode({name: value for name, value in keep.items() if value})


def _owner_id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def people_menu(owner_id: int | None, selected) -> list[tuple[str, str]]:
    if owner_id is None:
        return []
    people = (
        Subject.objects.filter(owner_id=owner_id)
        .annotate(shown_faces=Count("faces", filter=Q(faces__dismissed=False)))
        .filter(~Q(name="") | Q(shown_faces__gt=0))
        .order_by(_unnamed_last(), "name", "-shown_faces", "id")[:PEOPLE_IN_MENU]
    )
    choices = [(str(person.pk), person.display_name) for person in people]
    if selected and str(selected).isdigit() and str(selected) not in {value for value, _ in choices}:
        extra = Subject.objects.filter(owner_id=owner_id, pk=int(selected)).first()
        if extra is not None:
            choices.append((str(extra.pk), extra.display_name))
    return choices


def _unnamed_last():
    return Case(When(name="", then=Value(1)), default=Value(0))
