"""pgvector at scale: one owner's identification among 1M faces of 100 owners.

    nice -n 10 .venv/bin/python bench/vector_search.py [--faces 1000000] [--owners 100]
        [--configs 16:64] [--ef-search 40 100 200 400] [--orders relaxed_order] [--keep]

Faces are synthetic but spread like real dlib embeddings (bench/synthetic_faces.py: one common
part for everybody, people 0.71-1.02 apart, photos of one person 0.38-0.54 apart, 1 to 50 faces
a person). Each person belongs to one owner drawn at random, so an owner's people sit among
everybody else's in the vector space, as they do for real. Every face is named (an example),
the worst case for identification, whose index holds only examples. Rows are written in upload
batches of 10-200 faces of one owner, the batches of all owners interleaved, so an owner's
faces are spread over the table as real uploads leave them.

The queries are faces held out of the data (new photos of the owners' people, or of people
seen only once): 40 per owner for 5 owners, each searched as ``recognition.search`` does: the
owner's examples nearest to the face, ``LIMIT 10``, in a transaction with the product's
``SET LOCAL hnsw.*`` settings. Recall@10 is against the exact answer computed with numpy.
Contenders, on the same data:

- exact: the owner's rows through the btree on (owner, is_example) and a top-10 sort (the HNSW
  index ruled out with enable_indexscan = off);
- HNSW with the iterative scan (relaxed order) for each ``m:ef_construction`` and ``ef_search``
  (the exact plan ruled out with enable_sort = off);
- the planner's own choice with HNSW's settings (``search._SEARCH_SETTINGS``: what
  identification did before it scanned small owners exactly);
- ``search.identify`` itself, one face a call, as shipped (no recall: it answers people).

Also the faces of 1, 2, 3, 5, 10 owners searched at once (``owner_id = ANY``), exactly and
through HNSW, as if one owner had them all: at what size an owner's exact search stops meeting
the target (``search.EXACT_SEARCH_MAX``), and how HNSW does with a larger share of the index.

Runs on its own embedded servers (``var/bench-vectors``) with shared_buffers and
maintenance_work_mem of its own (options); the HNSW index over all faces
(``face_embedding_hnsw``), which identification never reads, is dropped there so that each
configuration builds one index. ``--keep`` reuses the data of an earlier run (same options), and its index where the
parameters are the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench-vectors"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SIGHTLINE_LOG_LEVEL", "WARNING")

K = 10
QUERY_OWNERS = 5
TARGET_P95_MS = 10.0
TARGET_RECALL = 0.95
INDEX = "face_example_embedding_hnsw"
QUERY = (f"SELECT id FROM recognition_face WHERE owner_id = %s AND is_example "
         f"ORDER BY embedding <-> %s::vector LIMIT {K}")
EXACT_OWNERS_QUERY = (f"SELECT id FROM recognition_face WHERE owner_id = ANY(%s) AND is_example "
                      f"ORDER BY embedding <-> %s::vector LIMIT {K}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--owners", type=int, default=100)
    parser.add_argument("--queries", type=int, default=40, help="held-out query faces per query owner")
    parser.add_argument("--configs", nargs="*", default=["16:64"], help="HNSW m:ef_construction (16:64 ships)")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200, 400])
    parser.add_argument("--orders", nargs="+", default=["relaxed_order"],
                        help="hnsw.iterative_scan modes (strict_order lost to relaxed_order on recall)")
    parser.add_argument("--exact-owners", type=int, nargs="+", default=[1, 2, 3, 5, 10],
                        help="exact scans over this many owners' faces at once")
    parser.add_argument("--shared-buffers", default="1GB")
    parser.add_argument("--maintenance-work-mem", default="3GB", help="the index should fit: about 1 GB per 1M")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="reuse the data of an earlier run")
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        sys.exit("bench/vector_search.py wipes its database: it runs only on its own embedded servers.")

    configure_server(args.shared_buffers)
    from bench.servers import sightline_on_own_servers

    started = time.perf_counter()
    with sightline_on_own_servers():
        run(args)
    print(f"\nwhole run: {(time.perf_counter() - started) / 60:.1f} min")


def configure_server(shared_buffers: str) -> None:
    """shared_buffers needs a restart: written before the server starts (the last line wins)."""
    from config import embedded

    server = embedded.PostgresServer(embedded.data_dir() / "postgres", embedded.socket_dir())
    if server.is_running():
        print(f"(PostgreSQL already running in {server.pgdata}: shared_buffers as it is)")
        return
    server.init()
    with open(server.pgdata / "postgresql.auto.conf", "a") as conf:
        conf.write(f"shared_buffers = '{shared_buffers}'\n")


# --- data ----------------------------------------------------------------------------------


class Data:
    """The faces as stored (ids 1..n in storage order), and the held-out query faces."""

    def __init__(self, faces: int, owners: int, queries_per_owner: int, seed: int):
        from bench.synthetic_faces import photo_slots, synthetic_identities

        query_owners = [1 + i * owners // QUERY_OWNERS for i in range(QUERY_OWNERS)]
        total = faces + queries_per_owner * len(query_owners)
        embeddings, identities = synthetic_identities(total, seed=seed)
        identities = np.asarray(identities)
        rng = np.random.default_rng(seed + 1)
        people = int(identities.max()) + 1
        self.person_owner = rng.integers(1, owners + 1, size=people)
        face_owner = self.person_owner[identities]

        held = np.zeros(total, dtype=bool)
        query_index = []
        for owner in query_owners:
            chosen = rng.choice(np.flatnonzero(face_owner == owner), queries_per_owner, replace=False)
            held[chosen] = True
            query_index.extend(chosen)
        query_index = np.asarray(query_index)
        self.queries = embeddings[query_index]
        self.query_owner = face_owner[query_index]

        # Upload batches of one owner, all owners' batches interleaved.
        batches = []
        for owner in range(1, owners + 1):
            mine = np.flatnonzero((face_owner == owner) & ~held)
            cuts = np.cumsum(rng.integers(10, 201, size=len(mine) // 10 + 1))
            batches.extend(part for part in np.split(mine, cuts[cuts < len(mine)]) if len(part))
        batches = [batches[i] for i in rng.permutation(len(batches))]
        order = np.concatenate(batches)
        self.embeddings = embeddings[order]
        self.owner = face_owner[order]
        self.person = identities[order]
        # Photos: up to 3 faces of different people, within an upload batch.
        self.asset = np.empty(len(order), dtype=np.int64)
        self.asset_owner: list[int] = []
        position = 0
        for batch in batches:
            slots = photo_slots(identities[batch].tolist(), 3)
            first = len(self.asset_owner) + 1
            self.asset[position:position + len(batch)] = [first + photo for photo, _ in slots]
            self.asset_owner.extend([int(face_owner[batch[0]])] * (slots[-1][0] + 1))
            position += len(batch)

    def exact(self, query: np.ndarray, owners) -> tuple[list[int], list[int]]:
        """The ids of the K faces of ``owners`` nearest to ``query``, and of those of them that
        are within the match threshold (the only ones identification can use)."""
        from django.conf import settings

        rows = np.flatnonzero(np.isin(self.owner, owners))
        distances = np.linalg.norm(self.embeddings[rows].astype(np.float64) - query.astype(np.float64), axis=1)
        order = np.argsort(distances, kind="stable")[:K]
        near = order[distances[order] <= settings.SIGHTLINE_MATCH_THRESHOLD]
        return (rows[order] + 1).tolist(), (rows[near] + 1).tolist()


def _execute(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def store(data: Data, owners: int) -> None:
    """Wipe this database's rows and write the data: people, photos and faces."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    for index in ("face_embedding_hnsw", INDEX):
        _execute(f"DROP INDEX IF EXISTS {index}")
    _execute("TRUNCATE accounts_user, media_asset, recognition_subject, recognition_job, recognition_face "
             "RESTART IDENTITY CASCADE")
    User = get_user_model()
    User.objects.bulk_create([User(email=f"owner{n:03d}@bench.localhost", password="!")
                              for n in range(1, owners + 1)])  # ids 1..owners after RESTART IDENTITY
    # Person p is subject p + 1.
    _execute("""INSERT INTO recognition_subject (id, owner_id, name, notes, hidden, created_at)
                SELECT n, o, 'Person ' || n, '', false, now() FROM unnest(%s::int[]) WITH ORDINALITY AS p(o, n)""",
             [data.person_owner.tolist()])
    _execute("""INSERT INTO media_asset (id, owner_id, kind, original_name, file, sha256, size_bytes, content_type,
                                         width, height, created_at)
                SELECT n, o, 'image', 'photo-' || n || '.jpg', 'bench/' || n || '.jpg',
                       md5(n::text) || md5((n + 1)::text), 1000000, 'image/jpeg', 1920, 1080,
                       now() - (%s - n) * interval '1 second'
                FROM unnest(%s::int[]) WITH ORDINALITY AS a(o, n)""",
             [len(data.asset_owner), data.asset_owner])
    columns = ("id, asset_id, owner_id, box, landmarks, score, quality, embedding, model_version, subject_id, "
               "is_example, decided_by, dismissed, created_at, crop")
    vector = "[" + ",".join(["%.9g"] * data.embeddings.shape[1]) + "]"  # float32 exactly, as numpy has it
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY recognition_face ({columns}) FROM STDIN") as copy:
            for start in range(0, len(data.embeddings), 50_000):
                lines = [
                    f"{i + 1}\t{data.asset[i]}\t{data.owner[i]}\t[0, 0, 90, 90]\t"
                    f"[[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]\t0.99\t0.9\t{vector % tuple(row)}\tbench\t"
                    f"{data.person[i] + 1}\tt\thuman\tf\t{now}\t\n"
                    for i, row in enumerate(data.embeddings[start:start + 50_000].tolist(), start)
                ]
                copy.write("".join(lines))
    for table in ("recognition_subject", "media_asset", "recognition_face"):
        _execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    _execute("VACUUM ANALYZE recognition_subject, media_asset, recognition_face")


# --- measuring -----------------------------------------------------------------------------


def _plan(settings: str, sql: str, params) -> str:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(settings)
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    if INDEX in plan:
        return "HNSW"
    if "Sort" in plan:
        return "btree + sort" if "Index" in plan else "seq scan + sort"
    return plan.splitlines()[0]


def priority(niceness: int) -> None:
    """Builds run niced (a machine shared with others); searches at normal priority, both
    this process and its PostgreSQL backend, so the latencies are not scheduling delays."""
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for pid in (0, backend):
        try:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
        except OSError:  # lowering niceness needs root: keep what we have
            pass


def backend_cpu_ms() -> float:
    """CPU time the PostgreSQL backend of this connection has used (/proc/PID/schedstat): what a
    search costs the server whatever else runs on the machine, near its latency on an idle one."""
    from django.db import connection

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    with open(f"/proc/{backend}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e6


def measure(settings: str, cases: list, sql: str = QUERY) -> dict:
    """p50/p95 (ms) of the search in a transaction with ``settings``, as recognition.search runs
    it (BEGIN, SET LOCAL, the query, COMMIT): wall time at the client, and CPU time of the
    server's backend; recall@K. ``cases``: (query vector, sql owner parameter, exact ids). One
    untimed pass first, so the figures are those of a warm server."""
    from django.db import connection, transaction

    from recognition.search import vector_literal

    plan = _plan(settings, sql, [cases[0][1], vector_literal(cases[0][0])])
    for timed in (False, True):
        times, server, recalls, near_recalls = [], [], [], []
        for query, owners, exact in cases:
            params = [owners, vector_literal(query)]
            cpu = backend_cpu_ms()
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(settings)
                cursor.execute(sql, params)
                found = [row[0] for row in cursor.fetchall()]
            times.append((time.perf_counter() - started) * 1000)
            server.append(backend_cpu_ms() - cpu)
            if exact is not None:
                nearest, near = exact
                recalls.append(len(set(found) & set(nearest)) / len(nearest))
                if near:
                    near_recalls.append(len(set(found) & set(near)) / len(near))
    return {"plan": plan, "p50": statistics.median(times), "p95": float(np.percentile(times, 95)),
            "server_p50": statistics.median(server), "server_p95": float(np.percentile(server, 95)),
            "recall": statistics.mean(recalls) if recalls else None,
            "near_recall": statistics.mean(near_recalls) if near_recalls else None}


def time_identify(data: Data) -> dict:
    """recognition.search.identify itself, one face a call (planner's choice, product settings)."""
    from recognition import search

    for timed in (False, True):
        times, server = [], []
        for query, owner in zip(data.queries, data.query_owner):
            cpu = backend_cpu_ms()
            started = time.perf_counter()
            search.identify(int(owner), query[None, :])
            times.append((time.perf_counter() - started) * 1000)
            server.append(backend_cpu_ms() - cpu)
    from django.db import connection

    with connection.cursor() as cursor:
        exact = {search.searched_exactly(cursor, int(owner)) for owner in set(data.query_owner.tolist())}
    plan = {frozenset([True]): "exact", frozenset([False]): "HNSW"}.get(frozenset(exact), "exact or HNSW")
    plan += f" (owner ≤ {search.EXACT_SEARCH_MAX:,} examples: exact)"
    return {"p50": statistics.median(times), "p95": float(np.percentile(times, 95)), "plan": plan,
            "server_p50": statistics.median(server), "server_p95": float(np.percentile(server, 95))}


def row(cells) -> None:
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


def result_cells(result: dict) -> list:
    recall = "—" if result.get("recall") is None else f"{result['recall']:.3f}"
    if result.get("near_recall") is not None:
        recall += f" ({result['near_recall']:.3f})"
    server = f"{result['server_p50']:.1f} / {result['server_p95']:.1f}" if "server_p50" in result else "—"
    accurate = result.get("recall") is None or result["recall"] >= TARGET_RECALL
    meets = "/".join("yes" if accurate and p95 <= TARGET_P95_MS else "no"
                     for p95 in (result["p95"], result.get("server_p95", float("inf"))))
    return [result.get("plan", "—"), f"{result['p50']:.1f} / {result['p95']:.1f}", server, recall, meets]


def build_index(m: int, ef_construction: int, maintenance_work_mem: str, keep: bool) -> tuple[float | None, int]:
    """The product's identification index (partial, on examples) with these parameters: seconds
    (None: ``keep``, and an earlier run left this very index), bytes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions, pg_relation_size(oid) FROM pg_class WHERE relname = %s", [INDEX])
        existing = cursor.fetchone()
    if keep and existing and sorted(existing[0] or []) == [f"ef_construction={ef_construction}", f"m={m}"]:
        return None, existing[1]

    notices = []
    connection.ensure_connection()
    connection.connection.add_notice_handler(lambda notice: notices.append(notice.message_primary))
    _execute(f"DROP INDEX IF EXISTS {INDEX}")
    _execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
    _execute("SET max_parallel_maintenance_workers = 1")  # a shared 2-core machine
    started = time.perf_counter()
    _execute(f"CREATE INDEX {INDEX} ON recognition_face USING hnsw (embedding vector_l2_ops) "
             f"WITH (m = {m}, ef_construction = {ef_construction}) WHERE is_example")
    seconds = time.perf_counter() - started
    for notice in notices:
        print(f"  (PostgreSQL: {notice})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s)", [INDEX])
        return seconds, cursor.fetchone()[0]


def describe(data: Data, args) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('shared_buffers'), "
                       "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
                       "pg_size_pretty(pg_table_size('recognition_face'))")
        version, shared_buffers, pgvector, table_size = cursor.fetchone()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    sizes = np.bincount(data.owner)[1:]
    people = np.bincount(data.person)
    people = people[people > 0]
    query_sizes = [int(sizes[owner - 1]) for owner in sorted(set(data.query_owner.tolist()))]
    print(f"- date: {time.strftime('%Y-%m-%d')}; machine: {platform.node()}, {cpu}, {os.cpu_count()} cores; "
          f"{version.split(',')[0]}, pgvector {pgvector}; shared_buffers {shared_buffers}, "
          f"maintenance_work_mem {args.maintenance_work_mem}, max_parallel_maintenance_workers 1; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- data: {len(data.embeddings):,} faces (table {table_size}), {len(people):,} people with 1-{people.max()} "
          f"faces (median {int(np.median(people))}), {args.owners} owners of {sizes.min():,}-{sizes.max():,} faces; "
          f"{len(data.queries)} held-out query faces of {len(query_sizes)} owners "
          f"({', '.join(f'{s:,}' for s in query_sizes)} faces)\n")


def run(args) -> None:
    from recognition import search

    started = time.perf_counter()
    data = Data(args.faces, args.owners, args.queries, args.seed)
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    if not args.keep:
        started = time.perf_counter()
        store(data, args.owners)
        print(f"stored (COPY, VACUUM ANALYZE) in {time.perf_counter() - started:.0f} s", flush=True)
    from recognition.models import Face

    if Face.objects.count() != len(data.embeddings):
        sys.exit("--keep: the stored faces are not this run's (other options?): run without --keep.")
    describe(data, args)
    started = time.perf_counter()
    cases = [(query, int(owner), data.exact(query, [owner])) for query, owner in zip(data.queries, data.query_owner)]
    print(f"(exact answers from numpy in {time.perf_counter() - started:.0f} s)\n", flush=True)

    print("| search | m | ef_construction | build | index size | ef_search | plan | p50 / p95 ms (client) "
          "| p50 / p95 ms (server CPU) | recall@10 (of those within 0.6) | p95 ≤ 10 ms, recall ≥ 0.95 (client/CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    priority(0)
    exact = f"{search._SCAN}; SET LOCAL enable_indexscan = off"
    row(["exact, btree on owner", "—", "—", "—", "—", "—", *result_cells(measure(exact, cases))])
    for config in args.configs:
        m, ef_construction = (int(x) for x in config.split(":"))
        priority(10)
        seconds, size = build_index(m, ef_construction, args.maintenance_work_mem, args.keep)
        priority(0)
        took = "(kept)" if seconds is None else f"{seconds / 60:.1f} min"
        built = [m, ef_construction, took, f"{size / 2**20:,.0f} MB"]
        for order in args.orders:
            scan = search._SCAN.replace("relaxed_order", order)
            for ef_search in args.ef_search:
                settings = f"{scan}; SET LOCAL hnsw.ef_search = {ef_search}; SET LOCAL enable_sort = off"
                row([f"HNSW, iterative scan ({order.replace('_', ' ')})", *built, ef_search,
                     *result_cells(measure(settings, cases))])
        row(["planner's choice, HNSW settings (identification before)", *built, 100,
             *result_cells(measure(search._SEARCH_SETTINGS, cases))])
        identify = time_identify(data)
        row(["`search.identify`, one face a call, as shipped", *built, "—", identify["plan"],
             f"{identify['p50']:.1f} / {identify['p95']:.1f}",
             f"{identify['server_p50']:.1f} / {identify['server_p95']:.1f}",
             "1.000" if identify["plan"].startswith("exact") else "—", "—"])

    print("\nOne owner with more faces: the faces of several owners searched at once (``owner_id = ANY``), "
          "exactly and through the HNSW index (relaxed iterative scan, ef_search 100), as if one owner had them "
          "all.\n")
    print("| faces searched | share of the index | exact: p50 / p95 ms (client) | exact: p50 / p95 ms (server CPU) "
          "| exact p95 ≤ 10 ms (client/CPU) | HNSW: p50 / p95 ms (client) | HNSW: p50 / p95 ms (server CPU) "
          "| HNSW recall@10 (within 0.6) |")
    print("|---|---|---|---|---|---|---|---|")
    owners = np.arange(1, args.owners + 1)
    hnsw = f"{search._SCAN}; SET LOCAL hnsw.ef_search = 100; SET LOCAL enable_sort = off"
    for count in args.exact_owners:
        if count > args.owners:
            continue
        scaling, scanned = [], []
        for query, owner in list(zip(data.queries, data.query_owner))[::2]:
            chosen = np.roll(owners, -(int(owner) - 1))[:count].tolist()
            scaling.append((query, chosen, data.exact(query, chosen)))
            scanned.append(int(np.isin(data.owner, chosen).sum()))
        _, client, server, _, meets = result_cells(measure(exact, scaling, EXACT_OWNERS_QUERY))
        cells = ["—"] * 3
        if args.configs:
            _, *cells, _ = result_cells(measure(hnsw, scaling, EXACT_OWNERS_QUERY))
        row([f"{int(np.mean(scanned)):,} ({count} owner{'s' if count > 1 else ''})",
             f"{np.mean(scanned) / len(data.embeddings):.0%}", client, server, meets, *cells])

if __name__ == "__main__":
    main()
