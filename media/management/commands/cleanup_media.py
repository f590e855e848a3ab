"""``manage.py cleanup_media [--older-than HOURS] [--dry-run]``: delete stored files no asset uses."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from media import services


class Command(BaseCommand):
    help = ("Delete uploaded files and thumbnails that no asset points at (left by a process killed "
            "mid-upload or a rolled-back transaction).")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=24.0, metavar="HOURS",
                            help="Only files last changed more than this many hours ago (default 24), "
                                 "so uploads in flight are never touched.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")

    def handle(self, *args, older_than: float, dry_run: bool, **options):
        if older_than < 0:
            raise CommandError("--older-than cannot be negative.")
        found = 0
        for name in services.delete_orphaned_files(timedelta(hours=older_than), dry_run=dry_run):
            found += 1
            self.stdout.write(f"{'would delete' if dry_run else 'deleted'} {name}")
        self.stdout.write(f"{found} orphaned file(s) {'would be deleted' if dry_run else 'deleted'}.")
