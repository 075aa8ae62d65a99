"""Executor config and the replica pool's rules, without models: config validation of executor
fields, the executor table, config.gpu.yml, and a replica pool of in-process fake replicas
(least-loaded dispatch, retry once on death, 503 when none is live, background restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, get_args

import pytest

from speechengine.capabilities import Capability
from speechengine.config import ExecutorKind, ModelConfig, RaySettings, load_settings
from speechengine.engine.deployment import Deployment
from speechengine.errors import ConfigError, InvalidRequestError, ServiceUnavailableError
from speechengine.executor import EXECUTORS, make_executor
from speechengine.executor.replicas import ReplicaDied, ReplicaPool
from speechengine.models.base import ModelInfo
from tests.conftest import ROOT

VAD = "{id: a, family: silero-vad, weights: {local: /x}"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, needle",
    [
        (f"models:\n  - {VAD}, executor: threads}}\n", "models.0.executor"),
        (f"models:\n  - {VAD}, replicas: 2}}\n", "needs executor 'process' or 'ray'"),
        (f"models:\n  - {VAD}, executor: process, replicas: 0}}\n", "models.0.replicas"),
        (f"models:\n  - {VAD}, executor: process, num_gpus: 1}}\n", "Ray resources"),
        (f"models:\n  - {VAD}, strict: maybe}}\n", "models.0.strict"),
        ("ray: {address: 'http://x'}\n", "ray.address"),
        ("ray: {address: auto, num_cpus: 2}\n", "brings its own resources"),
        ("ray: {adress: auto}\n", "ray.adress"),
    ],
)
def test_bad_executor_config_names_the_field(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text))
    assert needle in str(e.value)


def test_good_executor_config(tmp_path):
    s = load_settings(write(tmp_path, "ray: {address: 'ray://head:10001'}\nmodels:\n"
                            f"  - {VAD}, executor: ray, replicas: 3, num_cpus: 0.5, num_gpus: 0.25}}\n"
                            f"  - {{id: b, family: silero-vad, weights: {{local: /x}}, executor: process, replicas: 2}}\n"))
    a, b = s.models
    assert (a.executor, a.replicas, a.num_cpus, a.num_gpus) == ("ray", 3, 0.5, 0.25)
    assert (b.executor, b.replicas, b.replica_threads) == ("process", 2, 1)
    assert s.ray.address == "ray://head:10001"


def test_every_executor_kind_has_one_table_entry():
    assert set(EXECUTORS) == set(get_args(ExecutorKind))


@pytest.mark.parametrize("kind, replicas, workers", [("local", 1, 3), ("process", 2, 1), ("process", 3, 2)])
def test_scheduler_slots_are_replicas_times_workers(tmp_path, kind, replicas, workers):
    cfg = ModelConfig(id="a", family="silero-vad", weights={"local": str(tmp_path)}, executor=kind,
                      replicas=replicas, workers=workers)
    dep = Deployment(cfg, tmp_path, RaySettings())
    assert dep.executor.kind == kind and dep.executor.concurrency == replicas * workers
    assert dep.scheduler._slots._value == replicas * workers


def test_gpu_config_puts_default_models_on_cuda():
    gpu = load_settings(ROOT / "config.gpu.yml")
    default = load_settings(ROOT / "config.yml")
    assert [m.id for m in gpu.models] == [m.id for m in default.models]
    by_id = {m.id: m for m in default.models}
    cpu_only = {"silero-vad", "deepfilternet3", "rnnoise", "world-vc"}  # tiny, or native CPU libraries
    heavy = [m for m in gpu.models if m.family not in cpu_only]
    assert heavy and all(m.device == "cuda" for m in heavy)
    assert all(m.max_batch_size > by_id[m.id].max_batch_size for m in heavy)


# --- the replica pool with fake in-process replicas --------------------------------------------


class FakeReplica:
    def __init__(self, index: int, gate: asyncio.Event) -> None:
        self.index = index
        self.dead = False
        self.gate = gate
        self.calls: list[str] = []
        self.waiting: set[asyncio.Future] = set()

    def kill(self) -> None:
        self.dead = True
        for f in self.waiting:
            if not f.done():
                f.set_exception(ReplicaDied("killed"))


class FakePool(ReplicaPool):
    kind = "fake"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.gate.set()
        self.spawned: list[FakeReplica] = []

    async def _spawn(self, index: int) -> FakeReplica:
        r = FakeReplica(index, self.gate)
        self.spawned.append(r)
        return r

    async def _call(self, handle: FakeReplica, method: str, *args: Any) -> Any:
        if handle.dead:
            raise ReplicaDied("gone")
        handle.calls.append(method)
        if method == "load":
            return ModelInfo(sample_rate=handle.index)
        if method == "check":
            if args[1] == "bad":
                raise InvalidRequestError("bad input")
            return ()
        done = asyncio.get_running_loop().create_future()
        handle.waiting.add(done)
        waiter = asyncio.ensure_future(self.gate.wait())
        waiter.add_done_callback(lambda _: done.done() or done.set_result(None))
        await done
        return [f"{x}@{handle.index}" for x in args[1]]

    async def _is_alive(self, handle: FakeReplica) -> bool:
        return not handle.dead

    async def _stop(self, handle: FakeReplica, *, force: bool) -> None:
        handle.dead = True

    def _pid(self, handle: FakeReplica) -> int:
        return 1000 + self.spawned.index(handle)


def fake_pool(tmp_path, replicas: int) -> FakePool:
    cfg = ModelConfig(id="m", family="silero-vad", weights={"local": str(tmp_path)}, executor="process",
                      replicas=replicas)
    return FakePool(cfg, tmp_path, RaySettings())


async def test_pool_spreads_batches_to_least_loaded(tmp_path):
    pool = fake_pool(tmp_path, 2)
    assert (await pool.load()).sample_rate == 0
    pool.gate.clear()
    first = asyncio.ensure_future(pool.run(Capability.VAD, ["a"]))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(pool.run(Capability.VAD, ["b"]))
    await asyncio.sleep(0)
    assert [h.inflight for h in pool.health()] == [1, 1]
    pool.gate.set()
    assert {(await first)[0][-1], (await second)[0][-1]} == {"0", "1"}
    with pytest.raises(InvalidRequestError):  # typed errors from a replica pass through untouched
        await pool.check(Capability.VAD, "bad")
    await pool.shutdown()


async def test_pool_retries_once_on_death_then_restarts(tmp_path):
    pool = fake_pool(tmp_path, 2)
    await pool.load()
    pool.gate.clear()
    a = asyncio.ensure_future(pool.run(Capability.VAD, ["a"]))
    await asyncio.sleep(0)
    victim = pool.spawned[0]
    assert victim.waiting
    victim.kill()
    await asyncio.sleep(0.01)
    pool.gate.set()
    assert await asyncio.wait_for(a, 1) == ["a@1"]  # retried on the other replica
    for _ in range(100):
        if pool.health()[0].alive:
            break
        await asyncio.sleep(0.01)
    h = pool.health()[0]
    assert h.alive and h.restarts == 1 and h.pid == 1002
    await pool.shutdown()


async def test_pool_answers_503_when_every_replica_dies(tmp_path):
    pool = fake_pool(tmp_path, 1)
    await pool.load()
    pool.gate.clear()
    a = asyncio.ensure_future(pool.run(Capability.VAD, ["a"]))
    await asyncio.sleep(0)
    pool.spawned[0].kill()
    with pytest.raises(ServiceUnavailableError) as e:
        await asyncio.wait_for(a, 1)
    assert e.value.status == 503
    await pool.shutdown()


def test_make_executor_imports_lazily(tmp_path):
    cfg = ModelConfig(id="a", family="silero-vad", weights={"local": str(tmp_path)})
    assert make_executor(cfg, tmp_path, RaySettings()).kind == "local"
