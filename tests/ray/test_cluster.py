"""The cluster path, end to end on one machine (docs/cluster.md runs these exact commands):

* a two-node Ray cluster (``ray.cluster_utils.Cluster``, in a subprocess: the pytest process's own Ray is
  untouched) runs a tiny EAGAN round and a tiny Tune grid stored at a ``file://`` URI: the SupernetHost and
  the Evaluators, and the grid's two trials, ran on different nodes, and every row reached the storage; then
  ``raynas train --num-workers 2`` in the same cluster: its two Ray Train workers ran on different nodes;
* ``ray start --head`` with token authentication and the job server, ``ray job submit`` of
  ``raynas train --preset quickstart`` (tiny settings): the job succeeds and its run is in the ``--storage``
  it was given, never in Ray's working-dir copy. Only the processes this test started are stopped, by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT, plain_shell_env, stop_session

pytestmark = pytest.mark.slow

TINY_TRAIN = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=12", "train.iters_per_epoch=2",
              "train.gen_batch_size=8", "train.dis_batch_size=8", "eval.num_samples=64", "eval.batch_size=64",
              "data.limit=128", "train.epochs=1"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAYNAS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    env.update(extra)
    return env


def test_two_node_cluster_runs_eagan_and_a_grid_across_nodes(tmp_path):
    staging = tempfile.mkdtemp(prefix="rs", dir="/tmp")
    node_b = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # the second node's own Ray temp and staging folders
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cluster_script.py"), str(tmp_path), node_b],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=_env(RAYNAS_STAGING=staging, RAYNAS_CACHE=str(tmp_path / "cache")),
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=420)
    finally:
        stop_session(proc)  # the cluster's processes too, also after a timeout (by pid)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(node_b, ignore_errors=True)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert len(out["nodes"]) == 2
    assert out["eagan_code"] == 0
    [(host, *evaluators)] = out["placements"]
    assert set(evaluators).isdisjoint({host}) and {host, *evaluators} == set(out["nodes"])
    assert sorted(out["trial_nodes"]) == out["nodes"], "the grid's two trials ran on one node"
    # no row lost, every row in the run's storage (the URI, not a node's local disk)
    assert out["grid_candidates"] == out["trial_ids"] and out["grid_rows"] == 2
    assert out["eagan_candidates"] == [f"g000-{i:03d}" for i in range(4)]
    store = tmp_path / "runs"
    assert list((store / "grid" / "results").glob("part-*.parquet"))
    # every trial's own files reached the storage, from whichever node it ran on: its TensorBoard events
    # (not only Tune's ray/tune scalars, which the driver writes), HParams sessions and genotypes
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trials = sorted(d for d in (store / "grid" / "tune").iterdir() if d.is_dir())
    assert len(trials) == 2
    for trial in trials:
        assert (trial / "genotype.json").is_file() and (trial / "genotypes" / "epoch_0001.json").is_file(), trial
        assert list((trial / "hparams").iterdir()), f"{trial}: HParams sessions"
        tags = EventAccumulator(str(trial)).Reload().Tags()
        assert "derived/genotype" in tags["images"], f"{trial}: the trial's own TensorBoard events"
    for name in ("config.yaml", "run.json", "search_state.pt", "best_G.json", "best_G.pt",
                 "checkpoints/stage-g_round000.pt", "plots/pareto.png"):
        assert (store / "eagan" / name).is_file(), name
    assert list((store / "eagan" / "tensorboard" / "hparams").iterdir()), "HParams sessions"
    # every path raynas printed or stored is the storage the user gave, never the local staging copy
    uri = f"file://{store}/eagan"
    assert not [ln for ln in out["eagan_lines"] if staging in ln or "%3A" in ln], out["eagan_lines"]
    assert f"raynas: eagan search finished: {uri}" in out["eagan_lines"]
    assert f"raynas: best_G.json {uri}/best_G.json" in out["eagan_lines"]
    assert any(ln.startswith(f"raynas: retrain  raynas retrain {uri}/best_G.json") for ln in out["eagan_lines"])
    summary = json.loads((store / "eagan" / "summary.json").read_text())
    assert {k: summary[k] for k in ("run", "results", "best_G.json")} == {
        "run": uri, "results": f"{uri}/results", "best_G.json": f"{uri}/best_G.json"}
    assert summary["best"]["genotype"] == f"{uri}/best_G.json" and staging not in json.dumps(summary)
    # data-parallel training across the nodes: one worker per node (each node has room for one), recorded
    # by rank 0 in run.json; the run's row is a 1-worker run's row, with the global batch and the worker count
    assert out["dp_code"] == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workers = out["dp_meta"]["workers"]
    assert out["dp_meta"]["num_workers"] == 2 and [w["rank"] for w in workers] == [0, 1]
    assert sorted(w["node_id"] for w in workers) == out["nodes"], "the two workers ran on one node"
    [row] = out["dp_rows"]
    assert row["epoch"] == 1 and row["global_batch"] == 16 and row["num_workers"] == 2
    assert row["stage"] == "train" and row["train_loss"] > 0 and row["test_acc"] is not None
    assert list((store / "dp" / "results").glob("part-*.parquet"))


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """docs/cluster.md on one machine: a token of its own (``ray get-auth-token --generate``, mode 600), ``ray
    start --head`` with token authentication and the job server on 127.0.0.1. Stopped by pid at the end."""
    pytest.importorskip("aiohttp", reason="the job server needs Ray's dashboard: pip install 'raynas[cluster]'")
    bin_dir = Path(sys.executable).parent
    ray_cli = shutil.which("ray", path=str(bin_dir)) or shutil.which("ray")
    assert ray_cli, "the ray command line is installed with ray"
    base = tmp_path_factory.mktemp("head")
    home = base / "home"
    home.mkdir()
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = _env(HOME=str(home), RAYNAS_CACHE=str(base / "cache"))
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    token_file = home / ".ray" / "auth_token"
    token_file.chmod(0o600)
    gcs, dash, client, agent, agent_grpc, metrics, rtenv = _free_ports(7)
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={gcs}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         "--num-cpus=2", f"--temp-dir={temp_dir}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
         f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={rtenv}", "--block"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield SimpleNamespace(ray_cli=ray_cli, env=env, token=token_file.read_text().strip(),
                              gcs=f"127.0.0.1:{gcs}", dashboard=f"http://127.0.0.1:{dash}", proc=head)
    finally:
        stop_session(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_with_token_auth_stores_the_run_where_asked(token_head, tmp_path):
    ray_cli, env, address, head = token_head.ray_cli, token_head.env, token_head.dashboard, token_head.proc
    storage = tmp_path / "store"
    from ray.job_submission import JobStatus, JobSubmissionClient

    deadline = time.time() + 120
    client_ = None
    while time.time() < deadline:
        assert head.poll() is None, head.stdout.read()[-3000:]
        try:
            client_ = JobSubmissionClient(address, headers={"Authorization": f"Bearer {token_head.token}"})
            client_.list_jobs()
            break
        except Exception:
            client_ = None
            time.sleep(1)
    assert client_ is not None, "the job server never answered"
    # Without the token the job server refuses (authentication stays on).
    import requests

    assert requests.get(f"{address}/api/jobs/", timeout=10).status_code == 401
    # docs/cluster.md: the submit command (tiny settings added), token from ~/.ray/auth_token
    sets = [x for item in TINY_TRAIN for x in ("--set", item)]
    submit = subprocess.run(
        [ray_cli, "job", "submit", "--address", address, "--working-dir", ".", "--",
         "raynas", "train", "--preset", "quickstart", "--storage", str(storage), "--name", "job-run", *sets],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = submit.stdout + submit.stderr
    assert submit.returncode == 0, log[-4000:]
    assert "succeeded" in log.lower(), log[-4000:]
    run = storage / "job-run"
    assert f"storing the run at {run}" in log and f"run stored at {run}" in log, log[-4000:]
    assert (run / "config.yaml").is_file() and list((run / "results").glob("part-*.parquet"))
    assert (run / "tune").is_dir()
    jobs = client_.list_jobs()
    assert any(j.status == JobStatus.SUCCEEDED for j in jobs)
    # A relative --storage inside a job would land in Ray's working-dir copy: refused with one message.
    job_id = client_.submit_job(entrypoint="raynas train --preset quickstart --storage runs",
                                runtime_env={"working_dir": str(ROOT)})
    while client_.get_job_status(job_id) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        time.sleep(1)
    assert client_.get_job_status(job_id) == JobStatus.FAILED
    assert "Ray's temporary copy of the job's working directory" in client_.get_job_logs(job_id)


def _start_raynas_at(address: str, tmp_path: Path, **env: str) -> tuple[subprocess.Popen, float]:
    """``raynas train --address ADDRESS`` started in a plain shell (its own process: the test session's Ray is
    not involved); (the process, when it started)."""
    proc = subprocess.Popen([sys.executable, "-m", "raynas", "train", "--preset", "quickstart", "--address", address,
                             "--storage", str(tmp_path / "store"), "--name", "r"],
                            env=plain_shell_env(HOME=str(tmp_path / "home"), **env), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, time.monotonic()


def _finish(started: tuple[subprocess.Popen, float]) -> tuple[subprocess.CompletedProcess, float]:
    """(the finished process, seconds it took). A hang is stopped by pid after 120 s."""
    proc, t0 = started
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        out, err = "", "still running after 120 s"
    finally:
        stop_session(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - t0


def _raynas_at(address: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    return _finish(_start_raynas_at(address, tmp_path, **env))


def test_a_token_cluster_without_ray_auth_mode_is_one_message_naming_the_variable(token_head, tmp_path):
    # both commands at once (each is mostly Python, torch and Ray importing), each in a folder of its own
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    no_mode = _start_raynas_at(token_head.gcs, tmp_path / "a")  # no RAY_AUTH_MODE, no token in this HOME
    wrong = _start_raynas_at(token_head.gcs, tmp_path / "b", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="not-the-token")
    done, seconds = _finish(no_mode)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.startswith("raynas: error: ") and done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert "uses token authentication" in done.stderr and "export RAY_AUTH_MODE=token" in done.stderr
    assert seconds < 60 and not (tmp_path / "a" / "store" / "r").exists()
    done, _ = _finish(wrong)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert "refused this client's token" in done.stderr


def test_an_address_where_nothing_listens_fails_fast_and_leaves_no_run(tmp_path):
    [port] = _free_ports(1)
    done, seconds = _raynas_at(f"127.0.0.1:{port}", tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.startswith(f"raynas: error: nothing answers at --address 127.0.0.1:{port}")
    assert done.stderr.count("\n") == 1 and seconds < 60
    assert not (tmp_path / "store" / "r").exists(), "a run that never started leaves no directory"
