"""``manage.py recluster [--owner EMAIL] [--full]``: group unknown faces into people without a name."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from recognition.management.commands._owner import find_owner
from recognition.management.commands._progress import show_progress
from recognition.models import Face
from recognition.people import clustering


class Command(BaseCommand):
    help = ("Cluster unknown faces into people without a name (every owner, or one). Human decisions "
            "always stand; running it again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="Email of the one user whose faces to cluster.")
        parser.add_argument("--full", action="store_true",
                            help="Rebuild every automatic grouping, not only place the waiting faces.")

    def handle(self, *args, owner: str | None, full: bool, **options):
        owners = [find_owner(owner)] if owner else list(
            get_user_model().objects.filter(pk__in=Face.objects.values("owner_id")).order_by("email"))
        for user in owners:
            started = time.monotonic()
            result = clustering.recluster(
                user.pk, full=full,
                progress=lambda done, total, who=user.email: show_progress(self.stderr, done, total, who),
            )
            if result.faces:
                self.stderr.write("")
            self.stdout.write(
                f"{user.email}: {result.faces} face(s) considered, {result.clustered} in {result.people} "
                f"unnamed people ({result.created} new, {result.removed} removed), {result.changed} moved, "
                f"{time.monotonic() - started:.1f} s."
            )
