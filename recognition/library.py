"""The library: a user's photos and videos, filtered by part of the file name, person, tag,
upload date, kind and "has unknown faces". The form parses the GET parameters; ``search`` turns
them into one owner-scoped queryset (each filter an EXISTS on faces or tags, so an asset is
listed once).

An *unknown face* is a face shown (not dismissed as "not a face") that belongs to nobody or to
a person without a name, as in the reports.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from accounts.ownership import owned_by
from media import services as media_services
from recognition import pages
from recognition.models import Face, ImageTag, Subject, box_area

MENU_LIMIT = 300  # people and tags offered in the menus (the most frequent)
KIND_CHOICES = [("", "Photos and videos"), ("image", "Photos"), ("video", "Videos")]


class DateInput(forms.DateInput):
    input_type = "date"


class LibraryFilterForm(forms.Form):
    # The name as stored (sanitised at upload), matched anywhere and in any case; % and _ are
    # plain characters here, not wildcards.
    name = forms.CharField(required=False, max_length=255, label="File name", widget=forms.TextInput(
        attrs={"type": "search", "placeholder": "Part of a name", "autocomplete": "off"}))
    person = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Person")
    tag = forms.ChoiceField(required=False, label="Tag")
    since = forms.DateField(required=False, label="Uploaded from", widget=DateInput)
    until = forms.DateField(required=False, label="Uploaded to", widget=DateInput)
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label="Kind")
    unknown = forms.BooleanField(required=False, label="Has unknown faces")

    def __init__(self, data, *, user):
        super().__init__(data)
        self.user = user
        self.fields["person"].choices = [("", "Anyone")] + [
            (str(person.pk), person.display_name) for person in people_menu(user)]
        self.fields["tag"].choices = [("", "Any tag")] + [(label, label) for label in tag_menu(user)]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“Uploaded from” must be on or before “Uploaded to”.")
        return data

    def query_string(self, **changes) -> str:
        """The filters as given (for the pages' links), with ``changes`` applied."""
        keep = {name: self.data.get(name) for name in self.fields}
        keep.update(changes)
        return urlencode({name: value for name, value in keep.items() if value})


def people_menu(user) -> list[Subject]:
    """Named people A to Z, then unnamed ones that have faces, biggest first."""
    people = (owned_by(Subject.objects.all(), user)
              .annotate(shown=Count("faces", filter=Q(faces__dismissed=False)))
              .filter(~Q(name="") | Q(shown__gt=0)))
    named = list(people.exclude(name="").order_by("name", "id")[:MENU_LIMIT])
    unnamed = list(people.filter(name="").order_by("-shown", "id")[: max(0, MENU_LIMIT - len(named))])
    return named + unnamed


def tag_menu(user) -> list[str]:
    """The user's tag labels, most frequent first."""
    tags = (owned_by(ImageTag.objects.all(), user, "asset__owner").values("label")
            .annotate(n=Count("id")).order_by("-n", "label")[:MENU_LIMIT])
    return [tag["label"] for tag in tags]


def focus_on_person(assets, person_id: int) -> None:
    """Point this page's thumbnails at the person's face in each asset (the largest, if they
    are there more than once), for a list filtered by them: the stored focus is the largest
    face of all, which in a group photo may be someone else. In memory only."""
    boxes: dict[int, list] = {}
    for asset_id, box in Face.objects.shown().filter(
            asset__in=[asset.pk for asset in assets], subject_id=person_id).values_list("asset_id", "box"):
        boxes.setdefault(asset_id, []).append(box)
    for asset in assets:
        if asset.pk in boxes and not asset.is_video:  # a video's thumbnail is another frame
            asset.focus_x, asset.focus_y = media_services.focus_point(asset, max(boxes[asset.pk], key=box_area))


def search(user, filters: dict) -> QuerySet:
    """The user's assets matching ``filters`` (a valid form's ``cleaned_data``), newest first,
    with ``face_count`` and their latest job (``with_latest_job``)."""
    assets = pages.assets_with_latest_job(user)
    if filters.get("name"):
        assets = assets.filter(original_name__icontains=filters["name"])
    if filters.get("person") is not None:
        assets = assets.filter(Exists(Face.objects.filter(asset=OuterRef("pk"), subject_id=filters["person"],
                                                          dismissed=False)))
    if filters.get("tag"):
        assets = assets.filter(Exists(ImageTag.objects.filter(asset=OuterRef("pk"), label=filters["tag"])))
    if filters.get("since"):
        assets = assets.filter(created_at__date__gte=filters["since"])
    if filters.get("until"):
        assets = assets.filter(created_at__date__lte=filters["until"])
    if filters.get("kind"):
        assets = assets.filter(kind=filters["kind"])
    if filters.get("unknown"):
        unknown = Face.objects.filter(asset=OuterRef("pk"), dismissed=False).filter(
            Q(subject__isnull=True) | Q(subject__name=""))
        assets = assets.filter(Exists(unknown))
    return assets

