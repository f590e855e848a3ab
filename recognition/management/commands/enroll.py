"""``manage.py enroll <subject> <photos…> --owner EMAIL``: enrol example faces of a person.

Runs the face engine in this process (an operator's tool on a worker-capable machine)."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from media.validation import RejectedUpload
from recognition import enrollment, jobs
from recognition.management.commands._owner import find_owner
from recognition.models import Subject


def analyze_in_process(asset) -> dict:
    return jobs.analyze_stored_photo(asset.pk)


class Command(BaseCommand):
    help = "Enrol one face per photo as examples of a subject (created if needed)."

    def add_arguments(self, parser):
        parser.add_argument("subject", help="The person's name.")
        parser.add_argument("photos", nargs="+", type=Path)
        parser.add_argument("--owner", required=True, help="Email of the user the subject belongs to.")

    def handle(self, *args, subject: str, photos: list[Path], owner: str, **options):
        user = find_owner(owner)
        name = subject.strip()
        if not name:
            raise CommandError("The subject's name is empty.")
        with transaction.atomic():
            person = Subject.objects.filter(owner=user, name__iexact=name).first()
            created = person is None
            if created:
                person = Subject.objects.create(owner=user, name=name)
        self.stdout.write(f"{'Created' if created else 'Using'} subject {person.name} (id {person.pk}).")
        enrolled = 0
        for photo in photos:
            try:
                with photo.open("rb") as handle:
                    face = enrollment.enroll_photo(person, File(handle, name=photo.name), photo.name,
                                                   analyze_in_process)
            except (RejectedUpload, enrollment.EnrollmentError) as exc:
                self.stderr.write(f"{photo}: {exc.message}")
                continue
            except OSError as exc:
                self.stderr.write(f"{photo}: could not read the file ({exc.strerror}).")
                continue
            enrolled += 1
            self.stdout.write(f"{photo}: enrolled face {face.pk} (quality {face.quality:.2f}).")
        self.stdout.write(f"{enrolled} of {len(photos)} photo(s) enrolled for {person.name}.")
        if enrolled < len(photos):
            raise CommandError(f"{len(photos) - enrolled} photo(s) could not be enrolled.")
