"""``manage.py requeue [--include-failed] [--grace SECONDS]``: queue stuck jobs again."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from recognition import services


class Command(BaseCommand):
    help = "Re-queue jobs no worker will finish (lost, or their worker died); optionally failed ones too."

    def add_arguments(self, parser):
        parser.add_argument("--include-failed", action="store_true", help="Also re-run jobs that ended failed.")
        parser.add_argument("--grace", type=float, default=60.0,
                            help="Leave jobs changed within this many seconds alone (default 60).")

    def handle(self, *args, include_failed: bool, grace: float, **options):
        recovery = services.recover_stuck_jobs(grace=timedelta(seconds=grace), include_failed=include_failed)
        if recovery.left:
            self.stdout.write(f"Left {len(recovery.left)} unfinished job(s) alone: {services.Recovery.LEFT_MEANING}"
                              + (":" if options["verbosity"] > 1 else " (-v 2 says which)."))
            if options["verbosity"] > 1:
                for pk, why in sorted(recovery.left.items()):
                    self.stdout.write(f"  job {pk}: {why}")
        if not recovery.requeued and not recovery.failed:
            self.stdout.write("No stuck jobs.")
            return
        if recovery.requeued:
            self.stdout.write(f"Re-queued {len(recovery.requeued)} job(s): {', '.join(map(str, recovery.requeued))}.")
        if recovery.failed:
            self.stdout.write(f"Failed {len(recovery.failed)} job(s) after too many attempts: "
                              f"{', '.join(map(str, recovery.failed))}.")
