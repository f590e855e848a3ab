#!/usr/bin/env python
"""Django's command-line utility, with the embedded servers started when no URL is configured."""

import os
import sys

# Commands that never touch a server do not start one.
OFFLINE_COMMANDS = {"help", "version", "makemigrations", "check", "collectstatic", "spectacular", "startapp", "serve"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    services = None
    if command not in OFFLINE_COMMANDS and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        from config import embedded

        # `serve` manages its own servers; for one-off commands, stop what we started on exit.
        services = embedded.ensure_running()
    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    finally:
        if services is not None:
            services.stop()


if __name__ == "__main__":
    main()
