"""Ray: a cluster of a head and two worker nodes, simulated on this machine, runs a small grid on the tiny model (the
records come from both nodes, written by the driver, the model and data shipped through the object store); a worker
node killed mid-run leaves every other record intact and that run runs again; Ctrl-C cancels every task.

Ray probes the internet at start-up and its servers listen on the network: everything Ray here runs inside a
network namespace of its own with only loopback up (`unshare -n`), where this file runs itself again as its own
pytest session; every node's address is checked to be 127.0.0.1, and what the tests start they stop by pid."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]")')

from test_pool import grid_jobs  # noqa: E402

from runners.core.signals import Stopped, stop_on_signals  # noqa: E402
from runners.execute.ray import RayExecutor  # noqa: E402
from runners.store.records import read_record  # noqa: E402

INSIDE = os.environ.get("PEFT_LAB_RAY_NAMESPACE") == "1"  # set in the namespace's own session
ROOT = Path(__file__).resolve().parent.parent
inside = pytest.mark.skipif(not INSIDE, reason="runs in the namespace of test_ray_in_a_loopback_only_namespace")


def _unshare() -> list[str]:
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


@pytest.mark.skipif(INSIDE, reason="this is the namespace's session")
def test_ray_in_a_loopback_only_namespace():
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare (util-linux) and ip (iproute2) for a loopback-only network namespace")
    probe = subprocess.run([*_unshare(), "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    # Short paths: Ray's unix sockets live under its temp folder, and a socket path has at most 107 characters.
    short = Path(tempfile.mkdtemp(prefix="plr-", dir="/tmp"))
    env = {**os.environ, "PEFT_LAB_RAY_NAMESPACE": "1", "TMPDIR": str(short), "RAY_TMPDIR": str(short / "ray"),
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    script = 'ip link set lo up && exec "$0" -m pytest "$@"'
    proc = subprocess.Popen([*_unshare(), "sh", "-c", script, sys.executable, str(Path(__file__)), "-q", "-x",
                             "-p", "no:cacheprovider", "--basetemp", str(short / "pytest")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out = proc.communicate(timeout=420)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this test started, by its id
        out = proc.communicate()[0]
    finally:
        shutil.rmtree(short, ignore_errors=True)
    failures = out.find("= FAILURES =")  # the inner session's report of what failed, before Ray's logs
    assert proc.returncode == 0, out[failures:failures + 6000] if failures >= 0 else out[-6000:]
    assert "3 passed, 1 skipped" in out, out[-3000:]  # the skipped one: this test, in the namespace


@pytest.fixture
def cluster():
    """A head that runs nothing (no CPU for tasks) and two worker nodes of one CPU each, all on 127.0.0.1."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    try:
        assert {n.node_ip_address for n in cluster.list_all_nodes()} == {"127.0.0.1"}
        yield cluster, nodes
    finally:
        cluster.shutdown()


def _workers_of(pids: list[int]) -> list[int]:
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


@inside
def test_a_grid_runs_on_both_nodes_and_a_lost_node_costs_only_its_run_which_runs_again(cluster, tmp_path,
                                                                                     tiny_model_dir, tweets_dir):
    cluster, nodes = cluster
    jobs = grid_jobs(tmp_path, tiny_model_dir, tweets_dir, methods=("head", "bitfit", "lora"), budget="16samples")
    executor = RayExecutor(address=cluster.address, quiet=True)
    begun, killed = [], {}
    real_begin = executor._begin

    def begin(key, where):  # the third run to start: kill its node meanwhile
        real_begin(key, where)
        run = executor._running[key]
        begun.append(run.job.run_id)
        if len(begun) == 3:
            node = run.extra["node"]
            time.sleep(2)  # it is loading or training
            [victim] = [n for n in nodes if n.node_id == node["node_id"]]
            cluster.remove_node(victim, allow_graceful=False)
            killed.update(run_id=run.job.run_id, node=node)

    executor._begin = begin
    with executor:
        records = {r.run_id: r for r in executor.map(jobs)}
    assert sorted(records) == sorted(j.run_id for j in jobs) and killed
    for job in jobs:
        record = records[job.run_id]
        assert record.status.value == "ok", record.error
        assert read_record(Path(job.record_path)) == record  # written by the driver, where the plan said
        d = record.device
        assert d["executor"] == "ray" and d["node_ip"] == "127.0.0.1" and d["threads"] == 1
        assert d["attempt"] == (2 if job.run_id == killed["run_id"] else 1)
    retried = records[killed["run_id"]].device
    assert retried["node_id"] != killed["node"]["node_id"]
    assert retried["retried_after"].startswith(f"attempt 1: node {killed['node']['node_id'][:8]} (127.0.0.1) lost")
    # both nodes ran runs: the lost one at least the killed run's first attempt (Ray may have given the first two runs
    # to one node, one after the other, and the third to the other: seen once in CI)
    ran_on = {r.device["node_id"] for r in records.values()} | {killed["node"]["node_id"]}
    assert ran_on == {n.node_id for n in nodes}
    assert not _workers_of([killed["node"]["pid"]])  # the lost node's run died with it
    cache = Path(tempfile.gettempdir()) / "peft-lab-ray-cache"  # the nodes' copies of the model and the data
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    # the nodes' run folders are cleaned up, but for the one its node was killed under (a lost machine's disk)
    assert len(list(Path(tempfile.gettempdir()).glob("peft-lab-run-*"))) == 1


@inside
def test_ctrl_c_cancels_the_running_tasks_drops_the_queued_and_the_local_instance_stops(tmp_path, tiny_model_dir,
                                                                                       tweets_dir):
    import ray

    jobs = grid_jobs(tmp_path, tiny_model_dir, tweets_dir, methods=("head", "full", "lora"), budget="60s")
    executor = RayExecutor(workers=2, quiet=True, grace_s=5)  # a local instance: 2 cores, one each
    pids = []
    real_begin = executor._begin

    def begin(key, where):
        real_begin(key, where)
        pids.append(executor._running[key].extra["node"]["pid"])
        if len(pids) == 2:  # both train: Ctrl-C in a moment
            threading.Timer(2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()

    executor._begin = begin
    got = []
    with stop_on_signals(), pytest.raises(Stopped) as stopped:
        with executor:
            assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
            got.extend(executor.map(jobs))
    assert got == [] and not ray.is_initialized()  # the instance stopped with the command
    cancelled = stopped.value.cancelled
    assert sorted(r.config.method for r in cancelled) == ["full", "head"]
    for r in cancelled:
        assert r.status.value == "cancelled" and r.error.startswith("interrupted (Ctrl-C)")
        assert read_record(Path(jobs[0].record_path).with_name(f"{r.run_id}.json")) == r
    assert not Path(jobs[2].record_path).exists()  # queued: dropped, no record; the same command resumes it
    assert not _workers_of(pids)
    assert not list(Path(jobs[0].record_path).parent.glob(".*"))  # no claim left


def test_a_run_whose_node_is_lost_past_its_retries_is_recorded_failed_naming_the_node(tmp_path, make_job):
    """No cluster needed: what the driver does with a lost node's run once its retries are spent."""
    import ray.exceptions

    from runners.execute.claims import Claims
    from runners.execute.pool import Running
    from runners.execute.progress import Progress

    job = make_job(tmp_path / "x-s0-abc.json")
    executor = RayExecutor(address="auto", retries=0)  # never connects here
    executor.progress = Progress(1, quiet=True)
    claims = Claims()
    run = Running(job, claims.take(job), 0, time.time(), extra={"attempt": 1, "job": job})
    lost = ray.exceptions.NodeDiedError("Task failed because the node it was running on is dead or unavailable. "
                                        "Node IP: 10.0.0.7, node ID: 5ba4c0af89d4ef4e4381dfe433aa9995385e9e26cf2697")
    record = executor._ended(run, lost)
    assert record.status.value == "failed" and read_record(Path(job.record_path)) == record
    assert record.error == "node 5ba4c0af (10.0.0.7) was lost mid-run (NodeDiedError), on attempt 1 of 1"
    run.extra["node"] = {"node_id": "77aa" * 10, "node_ip": "10.0.0.8"}  # it had said where it started
    record = executor._ended(run, ray.exceptions.OutOfMemoryError("killed"))
    assert record.status.value == "oom" and record.error == "killed by Ray's memory monitor on node 77aa77aa (10.0.0.8)"
    claims.close()
