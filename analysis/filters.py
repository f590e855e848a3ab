"""What a report is asked for, and who may ask: one ``ReportFilters`` for the API, the pages and
``manage.py report``, resolved here so the ownership rule lives in one place.

- ``owner``: whose data. A user sees only their own; staff see everyone's (no owner) or one
  owner's. A user who is not staff and names another owner is refused with a 403 that says so
  (rather than silently shown their own numbers, which would look like the other user's).
- ``since`` / ``until``: calendar days (inclusive, in ``settings.TIME_ZONE``) of the time each
  report counts by (uploads by upload time, jobs by when they finished; see ``reports``).
- ``kind``: ``image`` or ``video``: only assets of that kind, their faces and their jobs.
- ``person``: one person (a subject id): the assets they appear in, their faces, those jobs.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model

from config.refusals import NotFound, Refusal
from media.models import Asset
from recognition.models import Subject

# A per-day report over more than this many days is refused: nobody reads 10 years day by day.
MAX_DAYS = 3660
KINDS = tuple(Asset.Kind.values)


class OwnerNotAllowed(Refusal):
    code = "owner_staff_only"
    status = 403


@dataclass(frozen=True)
class ReportFilters:
    owner_id: int | None = None  # None: every owner (staff, operators)
    since: date | None = None
    until: date | None = None
    kind: str | None = None
    person_id: int | None = None

    @property
    def since_at(self) -> datetime | None:
        """The first instant counted."""
        return _start_of(self.since) if self.since else None

    @property
    def until_before(self) -> datetime | None:
        """The first instant no longer counted (``until`` is inclusive)."""
        return _start_of(self.until + timedelta(days=1)) if self.until else None

    def cache_part(self) -> str:
        """What a cached answer depends on: the filters, and the zone that decides the days."""
        parts = [f"{key}={value}" for key, value in sorted(asdict(self).items())]
        return ":".join([*parts, f"zone={settings.TIME_ZONE}"])

    def describe(self) -> dict:
        """The filters as the API echoes them."""
        return {
            "owner": self.owner_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "kind": self.kind,
            "person": self.person_id,
        }


def report_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=report_zone())


def find_user(reference: str | int):
    """A user by id or by email (any case); None if there is none."""
    users = get_user_model().objects
    text = str(reference).strip()
    if text.isdigit():
        return users.filter(pk=int(text)).first()
    return users.filter(email__iexact=text).first()


def resolve(viewer, *, owner: str | int | None = None, since: date | None = None, until: date | None = None,
            kind: str | None = None, person: int | None = None) -> ReportFilters:
    """The filters ``viewer`` may use, or a refusal.

    ``viewer``: the user asking; ``None`` for an operator at the command line, who sees everything.
    ``owner``: a user id or email.
    """
    if since and until and since > until:
        raise Refusal("since must be on or before until.", "invalid_period")
    if since and until and (until - since).days >= MAX_DAYS:
        raise Refusal(f"Ask for at most {MAX_DAYS} days at a time.", "period_too_long")
    if kind is not None and kind not in KINDS:
        raise Refusal(f"kind must be one of {', '.join(KINDS)}.", "invalid_kind")

    sees_everyone = viewer is None or viewer.is_staff
    owner_id = None if sees_everyone else viewer.pk
    if owner not in (None, ""):
        target = find_user(owner)
        if not sees_everyone and (target is None or target.pk != viewer.pk):
            raise OwnerNotAllowed("Only staff can see another user's reports; leave out owner to see yours.")
        if target is None:
            raise NotFound(f"There is no user {owner}.")
        owner_id = target.pk

    if person is not None:
        people = Subject.objects.filter(pk=person)
        if owner_id is not None:
            people = people.filter(owner_id=owner_id)
        if not people.exists():
            raise NotFound(f"You have no person with id {person}." if owner_id == getattr(viewer, "pk", None)
                           else f"There is no person with id {person} here.")
    return ReportFilters(owner_id=owner_id, since=since, until=until, kind=kind, person_id=person)
