"""``manage.py import_media <folder> --owner EMAIL [--recursive]``: upload every file of a folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from media.validation import RejectedUpload
from recognition import services
from recognition.management.commands._owner import find_owner
from recognition.management.commands._progress import show_progress


class Command(BaseCommand):
    help = "Upload every file in a folder for a user: new files are queued for processing."

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)
        parser.add_argument("--owner", required=True, help="Email of the user the files belong to.")
        parser.add_argument("--recursive", action="store_true", help="Include sub-folders.")

    def handle(self, *args, folder: Path, owner: str, recursive: bool, **options):
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        user = find_owner(owner)
        paths = sorted(
            path for path in (folder.rglob("*") if recursive else folder.iterdir())
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        )
        queued, duplicates, rejected = 0, 0, []
        for number, path in enumerate(paths, start=1):
            show_progress(self.stderr, number, len(paths), path.name)
            try:
                with path.open("rb") as handle:
                    outcome = services.upload(user, File(handle, name=path.name), path.name)
            except RejectedUpload as exc:
                rejected.append((path, exc))
                continue
            except OSError as exc:
                rejected.append((path, RejectedUpload(f"Could not read the file ({exc.strerror}).", "unreadable")))
                continue
            if outcome.created:
                queued += 1
            else:
                duplicates += 1
        if paths:
            self.stderr.write("")
        self.stdout.write(f"{len(paths)} file(s): {queued} queued, {duplicates} duplicate(s), "
                          f"{len(rejected)} rejected.")
        for path, exc in rejected:
            self.stdout.write(f"  rejected {path.relative_to(folder)}: {exc.message} ({exc.code})")
        if rejected:
            reasons = Counter(exc.code for _, exc in rejected)
            self.stdout.write("  by reason: " + ", ".join(f"{code} {count}" for code, count in reasons.most_common()))
