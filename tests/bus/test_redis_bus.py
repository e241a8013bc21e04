"""The bus contract on Redis Streams: the embedded server, and any Redis by URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.bus.base import msg_id_key
from engine.bus.redis import BusBackpressure, RedisBus
from engine.runtime.files import free_port
from engine.runtime.redis import EmbeddedRedis, redis_server_binary
from tests.bus.contract import BusContract, trade

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedRedis]:
    home = Path(tempfile.mkdtemp(prefix="claire-redis-"))
    server = EmbeddedRedis(home)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def external() -> Iterator[str]:
    """A Redis that claire did not start, reached by a URL with a password, over TCP."""
    folder = Path(tempfile.mkdtemp(prefix="claire-ext-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", "s3cret-pass", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    url = f"redis://:s3cret-pass@127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis.from_url(url).ping():
                break
        except redis.RedisError:
            assert time.monotonic() < deadline, "the external Redis did not start"
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


_counter = iter(range(1_000_000))


class TestEmbeddedRedisBus(BusContract):
    @pytest.fixture
    def bus(self, embedded: EmbeddedRedis) -> Iterator[RedisBus]:
        bus = RedisBus(embedded.url, prefix=f"t{next(_counter)}")
        yield bus
        bus.close()


class TestExternalRedisBus(BusContract):
    @pytest.fixture
    def bus(self, external: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisBus]:
        monkeypatch.setenv("CLAIRE_REDIS_URL", external)
        from engine.runtime.redis import ExternalRedis, redis_service

        service = redis_service(Path("/nonexistent"))
        assert isinstance(service, ExternalRedis)
        bus = RedisBus(service.url, prefix=f"x{next(_counter)}")
        yield bus
        bus.close()


def test_a_poison_message_goes_to_the_dead_letters_after_n_deliveries(
    embedded: EmbeddedRedis,
) -> None:
    bus = RedisBus(embedded.url, prefix=f"p{next(_counter)}", max_deliveries=3)
    bus.create_group("market_data", "g")
    bus.publish(trade(1))
    bus.read("market_data", "g", "c")
    for _ in range(2):  # delivered 2 and 3 times: still handed out
        assert len(bus.claim("market_data", "g", "c", min_idle_ms=0)) == 1
    assert bus.claim("market_data", "g", "c", min_idle_ms=0) == []  # the 4th: poison
    [dead] = bus.dead_letters()
    assert "delivered 4 times" in dead.reason
    assert bus.pending("market_data", "g") == []


def test_trimming_acknowledged_entries_never_drops_a_pending_one(
    embedded: EmbeddedRedis,
) -> None:
    bus = RedisBus(embedded.url, prefix=f"a{next(_counter)}")
    bus.create_group("market_data", "fast")
    bus.create_group("market_data", "slow")
    ids = [bus.publish(trade(n)) for n in range(10)]
    fast = bus.read("market_data", "fast", "c", count=10)
    bus.ack("market_data", "fast", [d.msg_id for d in fast])
    slow = bus.read("market_data", "slow", "c", count=4)
    bus.ack("market_data", "slow", [d.msg_id for d in slow[:2]])  # 2 and 3 still pending
    assert bus.trim_acknowledged("market_data") == 2
    left = [d.msg_id for d in bus.claim("market_data", "slow", "c2", min_idle_ms=0)]
    assert left == ids[2:4]
    assert [d.event for d in bus.read("market_data", "slow", "c", count=10)] == [
        trade(n) for n in range(4, 10)
    ]


def test_a_full_stream_makes_the_producer_wait_not_drop(embedded: EmbeddedRedis) -> None:
    bus = RedisBus(embedded.url, prefix=f"b{next(_counter)}", max_len=5, publish_timeout_s=0.3)
    bus.create_group("market_data", "g")
    for n in range(5):
        bus.publish(trade(n))
    with pytest.raises(BusBackpressure, match="consumer is stuck"):
        bus.publish(trade(5))
    read = bus.read("market_data", "g", "c", count=3)
    bus.ack("market_data", "g", [d.msg_id for d in read])
    bus.publish(trade(5))  # room again: the acknowledged entries were trimmed
    rest = bus.read("market_data", "g", "c", count=10)
    assert [d.event for d in rest] == [trade(3), trade(4), trade(5)]
    assert msg_id_key(rest[-1].msg_id) > msg_id_key(read[-1].msg_id)


def test_the_embedded_server_keeps_acknowledged_work_across_a_kill(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="claire-redis-kill-"))
    server = EmbeddedRedis(home, appendfsync="always")
    try:
        bus = RedisBus(server.start(), prefix="k")
        bus.create_group("orders", "execution")
        ids = [bus.publish(trade(n), stream="orders") for n in range(3)]
        bus.close()
        server.kill()
        bus = RedisBus(server.restart(), prefix="k")
        assert [d.msg_id for d in bus.read("orders", "execution", "c", count=10)] == ids
        bus.close()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_the_embedded_server_does_not_see_our_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEXC_API_SECRET", "marker-secret-7f3a")
    home = Path(tempfile.mkdtemp(prefix="claire-redis-env-"))
    server = EmbeddedRedis(home)
    try:
        server.start()
        pid = server.pid
        assert pid is not None
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"marker-secret-7f3a" not in environ
        assert os.environ["MEXC_API_SECRET"] == "marker-secret-7f3a"
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    assert server.pid is None
