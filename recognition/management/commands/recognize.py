"""``manage.py recognize <photo> [--owner EMAIL] [--json] [--threshold T]``: who is in a photo.

Runs the face engine in this process and matches against the owner's subjects; stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recognition import jobs, matching
from recognition.management.commands._owner import find_owner


class Command(BaseCommand):
    help = "Find the faces of a photo and who they are among a user's subjects."

    def add_arguments(self, parser):
        parser.add_argument("photo", type=Path)
        parser.add_argument("--owner", help="Email of the user whose subjects to match (default: the only user).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON instead of a table.")
        parser.add_argument("--threshold", type=float, help="Largest distance that counts as a match.")
        parser.add_argument("--limit", type=int, default=matching.DEFAULT_CANDIDATES, help="Candidates per face.")

    def handle(self, *args, photo: Path, owner: str | None, as_json: bool, threshold: float | None, limit: int,
               **options):
        user = find_owner(owner)
        try:
            data = photo.read_bytes()
        except OSError as exc:
            raise CommandError(f"Could not read {photo}: {exc.strerror}.") from None
        analysis = jobs.analyze_photo_bytes(data)
        if "rejected" in analysis:
            raise CommandError(f"{photo}: {analysis['rejected']['message']}")
        result = matching.recognition_result(user.pk, analysis, limit, threshold)
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self._table(result)

    def _table(self, result: dict) -> None:
        faces = result["faces"]
        self.stdout.write(f"{len(faces)} face(s), threshold {result['threshold']}")
        self.stdout.write(
            f"{'#':>3}  {'box':<26} {'score':>5} {'quality':>7}  {'subject':<24} {'distance':>8}  candidates"
        )
        for number, face in enumerate(faces):
            box = ",".join(str(round(v)) for v in face["box"])
            match = face["subject"]
            candidates = ", ".join(f"{c['subject']['name']} {c['distance']:.3f}" for c in face["candidates"])
            self.stdout.write(
                f"{number:>3}  {box:<26} {face['score']:>5.2f} {face['quality']:>7.2f}  "
                f"{(match['name'] if match else 'unknown'):<24} "
                f"{(format(match['distance'], '.3f') if match else '-'):>8}  {candidates or '-'}"
            )

