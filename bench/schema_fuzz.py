"""Schema fuzzing, the long run: every /api/ operation with many more generated requests.

    .venv/bin/python bench/schema_fuzz.py [--examples 100] [--phases examples,coverage,fuzzing] [--seed N]

Runs ``tests/integration/test_schema_fuzz.py`` (the same user, data, realtime worker and checks as
``make test``; see that module) with ``--examples`` random cases per operation and all three
schemathesis phases (the suite runs a few cases and no coverage phase), on embedded servers of
its own (``var/bench-fuzz/``), throttles lifted. Gates, as in the suite: no 5xx, answers per schema (status,
content type, headers, body), errors in the API's shape, another user's ids answer 404 and their
data never shows. Also reports, without failing, what the leniency checks (schema-valid requests
refused, schema-invalid ones accepted) found.

Prints markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="random (fuzzing phase) cases per operation")
    parser.add_argument("--phases", default="examples,coverage,fuzzing", help="schemathesis phases to run")
    parser.add_argument("--seed", type=int, help="a seed (default: Hypothesis' derandomized, repeatable run)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        env = dict(
            os.environ,
            SIGHTLINE_DATA_DIR=os.environ.get("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench-fuzz")),
            SIGHTLINE_FUZZ_EXAMPLES=str(args.examples),
            SIGHTLINE_FUZZ_PHASES=args.phases,
            SIGHTLINE_FUZZ_REPORT=str(report_path),
            SIGHTLINE_LOG_LEVEL="WARNING",
            # Throttles would answer most of a long run with 429 before the views are reached.
            SIGHTLINE_USER_RATE="1000000/min", SIGHTLINE_ANON_RATE="1000000/min",
            SIGHTLINE_LOGIN_RATE="1000000/min", SIGHTLINE_UPLOAD_RATE="1000000/min",
        )
        if args.seed is not None:
            env["SIGHTLINE_FUZZ_SEED"] = str(args.seed)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "--timeout", "3600",
                   "tests/integration/test_schema_fuzz.py"]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        report = json.loads(report_path.read_text()) if report_path.exists() else {"operations": {}, "lenient": []}

    failed = sorted(set(re.findall(r"^FAILED [^\[]+\[(.+?)\]", result.stdout, re.M)))
    summary = re.findall(r"^=* ?(\d+ (?:passed|failed).*?)=*$", result.stdout, re.M)
    if not report["operations"]:
        print(result.stdout[-6000:], result.stderr[-3000:], sep="\n")
        sys.exit("no report: the fuzzing run did not get to the operations")

    statuses = Counter()
    for answers in report["operations"].values():
        statuses.update({status: count for status, count in answers.items()})
    requests = sum(statuses.values())
    server_errors = sum(count for status, count in statuses.items() if status.startswith("5"))

    print(f"- date: {time.strftime('%Y-%m-%d')}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; schemathesis phases {args.phases}, {args.examples} random cases per operation, "
          f"seed {'derandomized' if args.seed is None else args.seed}")
    print(f"- pytest: {summary[-1] if summary else 'no summary'}; {elapsed:.0f} s wall")
    print()
    print("| | |")
    print("|---|---|")
    print(f"| operations | {len(report['operations'])} |")
    print(f"| requests answered (checked) | {requests} ({requests / elapsed:.0f}/s) |")
    for family in "2345":
        count = sum(c for s, c in statuses.items() if s.startswith(family))
        detail = ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items()) if s.startswith(family))
        print(f"| {family}xx | {count} ({detail or '-'}) |")
    print(f"| **5xx** | **{server_errors}** |")
    print(f"| operations failing a gate | {len(failed)}{': ' + ', '.join(failed) if failed else ''} |")
    print()
    if report["lenient"]:
        grouped = Counter((f["operation"], f["check"], f["status"]) for f in report["lenient"])
        print("Leniency findings (reported, not gates):")
        print()
        print("| operation | check | status | cases | an example answer |")
        print("|---|---|---|---|---|")
        examples = {}
        for finding in report["lenient"]:
            examples.setdefault((finding["operation"], finding["check"], finding["status"]), finding["answer"])
        for (operation, check, status), count in sorted(grouped.items()):
            answer = examples[(operation, check, status)].replace("|", "\\|").replace("\n", " ")[:140]
            print(f"| `{operation}` | {check} | {status} | {count} | `{answer}` |")
    if result.returncode != 0:
        print()
        print("```")
        print(result.stdout[-8000:])
        print("```")
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
