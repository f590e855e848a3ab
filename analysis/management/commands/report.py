"""``manage.py report <report> [--since DAY] [--until DAY] [--owner EMAIL] [--kind image|video]
[--person ID] [--format table|csv|json] [--no-cache]``: a report at the command line.

An operator sees everyone's data unless ``--owner`` names one user; the rows are the API's."""

from __future__ import annotations

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from rest_framework.utils.encoders import JSONEncoder

from analysis import export, reports, services
from analysis.filters import KINDS, resolve
from config.refusals import Refusal


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a day (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Print a report: " + ", ".join(reports.REPORTS) + "."

    def add_arguments(self, parser):
        parser.add_argument("report", choices=list(reports.REPORTS))
        parser.add_argument("--since", type=_day, help="First day counted (YYYY-MM-DD).")
        parser.add_argument("--until", type=_day, help="Last day counted (YYYY-MM-DD).")
        parser.add_argument("--owner", help="Only this user's data (email); default: everyone's.")
        parser.add_argument("--kind", choices=KINDS, help="Only photos (image) or videos.")
        parser.add_argument("--person", type=int, help="Only this person (id).")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table", dest="output")
        parser.add_argument("--no-cache", action="store_true", help="Compute afresh instead of using the cache.")

    def handle(self, *args, report: str, since, until, owner, kind, person, output: str, no_cache: bool,
               **options):
        try:
            filters = resolve(None, owner=owner, since=since, until=until, kind=kind, person=person)
            result = services.run(report, filters, use_cache=not no_cache)
        except Refusal as refusal:
            raise CommandError(refusal.message) from None
        if output == "json":
            # DRF's encoder: the same JSON as the API (full-precision times, not milliseconds).
            self.stdout.write(json.dumps(result.as_body(), cls=JSONEncoder, indent=2))
        elif output == "csv":
            self.stdout.write(export.to_csv(result.report, result.rows), ending="")
        else:
            self.stdout.write(export.to_table(result.report, result.rows), ending="")
