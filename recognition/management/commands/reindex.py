"""``manage.py reindex [--owner EMAIL] [--all]``: process again what an older model analysed."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import OuterRef, Subquery

from media.models import Asset
from recognition import services
from recognition.management.commands._owner import find_owner
from recognition.models import Job, Stage


class Command(BaseCommand):
    help = ("Re-run every photo and video an older model version analysed (after a model change), or all of "
            "them. Re-runs keep every human decision: names, 'not this person', 'not a face'.")

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="Only this user's files (email).")
        parser.add_argument("--all", action="store_true", help="Re-run every file, whatever model found its faces.")
        parser.add_argument("--model-version", help="The current model version (default: the engine's, which "
                                                    "loads the models here).")

    def handle(self, *args, owner: str | None, all: bool, model_version: str | None, **options):
        assets = Asset.objects.order_by("pk")
        if owner:
            assets = assets.filter(owner=find_owner(owner))
        if not all:
            current = model_version or self._engine_version()
            analysed_by = Job.objects.filter(asset=OuterRef("pk"), stage=Stage.COMPLETED).newest_first()
            assets = assets.annotate(analysed_by=Subquery(analysed_by.values("model_version")[:1])).exclude(
                analysed_by=current)
            self.stdout.write(f"Current model: {current}")
        started, busy = 0, 0
        for asset in assets:
            try:
                services.rerun_asset(asset)
            except services.JobInProgress:
                busy += 1
                continue
            started += 1
        self.stdout.write(f"Queued {started} file(s) for processing again"
                          + (f"; {busy} still being processed were left alone." if busy else "."))

    @staticmethod
    def _engine_version() -> str:
        from recognition import inference

        return inference.face_engine().model_version
