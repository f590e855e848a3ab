"""`manage.py serve`'s process plan and shared port, without starting anything else."""

import errno
import select
import socket

import pytest

from config.management.commands.serve import available_cpus, listening_sockets, plan_processes


def test_two_cores_two_workers_of_one_thread_and_the_realtime_worker_beside_them():
    plan = plan_processes(cpus=2, gpus=0, memory=8 << 30)
    assert plan.web_processes == 2
    assert plan.worker_devices == ("cpu", "cpu")
    assert plan.worker_threads == 1 and plan.realtime_threads == 1


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 5, 8, 9, 16, 32, 64])
@pytest.mark.parametrize("memory_gib", [0, 2, 8, 64])
def test_worker_threads_add_up_to_the_cores_on_cpu(cpus, memory_gib):
    """The workers' threads fill the cores without passing them; the realtime worker's one
    thread comes on top (idle nearly always)."""
    plan = plan_processes(cpus=cpus, gpus=0, memory=memory_gib << 30)
    workers = len(plan.worker_devices)
    assert cpus - workers < workers * plan.worker_threads <= cpus or (cpus == 1 and plan.worker_threads == 1)
    assert plan.realtime_threads == 1
    if memory_gib:
        assert workers <= max(1, memory_gib // 2)  # a loaded CPU worker holds about 1 GiB


def test_memory_caps_the_workers_and_they_split_the_cores():
    plan = plan_processes(cpus=16, gpus=0, memory=8 << 30)
    assert plan.worker_devices == ("cpu",) * 4
    assert (plan.worker_threads, plan.realtime_threads, plan.web_processes) == (4, 1, 16)
    assert len(plan_processes(cpus=16, gpus=0, memory=64 << 30).worker_devices) == 16


def test_one_worker_per_gpu_each_pinned():
    plan = plan_processes(cpus=16, gpus=2, device="auto")
    assert plan.worker_devices == ("cuda:0", "cuda:1")
    assert plan.worker_threads == 7  # the CPU side (decoding, alignment) splits the other cores


def test_more_workers_than_gpus_go_round():
    assert plan_processes(cpus=8, gpus=2, inference_workers=3).worker_devices == ("cuda:0", "cuda:1", "cuda:0")


def test_a_device_named_by_the_operator_wins():
    assert set(plan_processes(cpus=8, gpus=2, device="cpu").worker_devices) == {"cpu"}
    assert plan_processes(cpus=8, gpus=2, device="cuda:1", inference_workers=2).worker_devices == ("cuda:1", "cuda:1")


def test_explicit_counts_and_threads():
    plan = plan_processes(cpus=2, gpus=0, web_processes=4, inference_workers=2, torch_threads=3)
    assert (plan.web_processes, len(plan.worker_devices), plan.worker_threads, plan.realtime_threads) == (4, 2, 3, 3)


def _accepted_on(sockets, timeout=5.0):
    """Which socket each pending connection waits on."""
    hits = {sock.fileno(): 0 for sock in sockets}
    while True:
        ready, _, _ = select.select(sockets, [], [], timeout)
        if not ready:
            return hits
        for sock in ready:
            connection, _ = sock.accept()
            connection.close()
            hits[sock.fileno()] += 1
        timeout = 0.2


def test_web_processes_share_one_port_and_the_kernel_spreads_connections():
    sockets = listening_sockets("127.0.0.1", 0, 2)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(sockets) == 2 and len(ports) == 1
        port = ports.pop()
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        hits = _accepted_on(sockets)
        for client in clients:
            client.close()
        assert sum(hits.values()) == 64
        assert min(hits.values()) >= 8, hits  # both get a share, not one socket taking the burst
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_in_use_is_refused():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError) as refused:
            listening_sockets("127.0.0.1", other.getsockname()[1], 2)
        assert refused.value.errno == errno.EADDRINUSE


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("max 100000\n", None),  # no quota: the affinity's count
    ("200000 100000\n", 2),  # docker run --cpus 2
    ("150000 100000\n", 2),  # a part of a core still runs a process
    ("50000 100000\n", 1),
    ("", None),  # unreadable: ignored
])
def test_a_containers_cpu_quota_caps_the_cpus(tmp_path, monkeypatch, cpu_max, expected):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    assert available_cpus(quota) == (expected or 16)
    assert available_cpus(tmp_path / "missing") == 16
