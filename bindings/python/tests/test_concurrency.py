"""Threads and asyncio: 8 threads sharing one Cache, the GIL released
while a call waits, acompletion / aembedding running concurrently."""
import asyncio
import threading

import pytest

import llmcache


@pytest.fixture
def shared(redis_server):
    c = llmcache.Cache(type="redis", host=redis_server.host, port=redis_server.port,
                       password=redis_server.password)
    c.flush_all()
    llmcache.cache = c
    return c


def test_eight_threads_share_one_cache(fake, shared):
    prompts = ["thread question %d" % i for i in range(12)]
    errors, results = [], {}
    start = threading.Barrier(8)

    def work(t):
        try:
            start.wait()
            for rnd in range(3):
                for i, p in enumerate(prompts):
                    r = llmcache.completion(model="gpt-4o-mini",
                                            messages=[{"role": "user", "content": p}])
                    assert r.choices[0].message.content == "echo: " + p
                    results[(t, rnd, i)] = r.cache
                shared.set("thread:%d:%d" % (t, rnd), "v%d" % rnd)
                assert shared.get("thread:%d:%d" % (t, rnd)) == "v%d" % rnd
                e = llmcache.embedding(model="text-embedding-3-small",
                                       input=[prompts[t], prompts[t + 1]])
                assert len(e.data) == 2
        except Exception as exc:  # reported below with its thread
            errors.append((t, repr(exc)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 8 * 3 * 12
    # Every prompt is cached now: another round goes nowhere upstream.
    n = fake.count()
    for p in prompts:
        assert llmcache.completion(model="gpt-4o-mini",
                                   messages=[{"role": "user", "content": p}]).cache is True
    assert fake.count() == n
    assert shared.stats()["hits"] > 0


def test_gil_released_while_waiting(fake, shared):
    """While one thread waits on a slow provider, another runs Python and
    answers from the cache: the waiting call does not hold the GIL."""
    hit = [{"role": "user", "content": "already cached"}]
    llmcache.completion(model="gpt-4o-mini", messages=hit)
    fake.cmd("delay 3000")
    n = fake.count()
    done = threading.Event()
    t = threading.Thread(target=lambda: (llmcache.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "slow"}]), done.set()))
    t.start()
    while fake.count() == n:  # the slow request reached the provider
        pass
    r = llmcache.completion(model="gpt-4o-mini", messages=hit)
    assert r.cache is True
    assert shared.get("nothing") is None
    assert not done.is_set(), "the slow call finished before the hit ran"
    t.join()
    assert done.is_set()
    fake.cmd("delay 0")


def test_acompletion_concurrently(fake, shared):
    prompts = ["async question %d" % i for i in range(16)]

    async def main():
        first = await asyncio.gather(*[
            llmcache.acompletion(model="gpt-4o-mini", messages=[{"role": "user", "content": p}])
            for p in prompts])
        again = await asyncio.gather(*[
            llmcache.acompletion(model="gpt-4o-mini", messages=[{"role": "user", "content": p}])
            for p in prompts])
        emb = await llmcache.aembedding(model="text-embedding-3-small", input=prompts[:3])
        txt = await llmcache.atext_completion(model="gpt-3.5-turbo-instruct", prompt="async")
        return first, again, emb, txt

    n = fake.count()
    first, again, emb, txt = asyncio.run(main())
    assert [r.choices[0].message.content for r in first] == ["echo: " + p for p in prompts]
    assert all(r.cache is False for r in first) and all(r.cache is True for r in again)
    assert fake.count() == n + 16 + 1 + 1
    assert emb.item_hits == (False, False, False) and txt.choices[0].text


def test_acompletion_overlaps_slow_calls(fake, shared):
    """Slow calls awaited together are all in flight at once: the provider
    sees every request before the first answer comes back."""
    fake.cmd("delay 3000")

    async def main():
        n0 = fake.count()
        tasks = [asyncio.ensure_future(llmcache.acompletion(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "slow %d" % i}]))
            for i in range(4)]
        seen = n0
        while seen < n0 + 4 and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
            seen = fake.count()
        in_flight = not any(t.done() for t in tasks)
        await asyncio.gather(*tasks)
        return in_flight, seen - n0

    n = fake.count()
    in_flight, seen = asyncio.run(main())
    fake.cmd("delay 0")
    assert seen == 4 and in_flight, "the four calls did not run concurrently"
    assert fake.count() == n + 4


def test_acompletion_stream_async_for(fake, shared):
    q = [{"role": "user", "content": "an async stream of several words"}]

    async def read():
        stream = await llmcache.acompletion(model="gpt-4o-mini", messages=q, stream=True)
        parts = []
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.get("content") or "")
        return "".join(parts), stream.cache

    n = fake.count()
    first = asyncio.run(read())
    second = asyncio.run(read())
    assert first == ("echo: " + q[0]["content"], False)
    assert second == ("echo: " + q[0]["content"], True)
    assert fake.count() == n + 1


def test_acompletion_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        llmcache.acompletion(model="gpt-4o-mini", messages=[])
