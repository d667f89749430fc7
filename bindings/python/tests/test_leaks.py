"""Reference counting and memory: 10,000 calls of every kind must not
grow the interpreter's allocated blocks, tracemalloc's traced memory or
the process's resident memory (which sees the C library's allocations
too). The ASan build of this suite checks the same code for invalid
accesses."""
import gc
import os
import sys
import tracemalloc

import pytest

import llmcache

N = 10_000


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def one_round(i, cache):
    msg = [{"role": "user", "content": "leak check %d" % (i % 50)}]
    r = llmcache.completion(model="gpt-4o-mini", messages=msg, mock_response="ok %d" % (i % 50))
    assert r.choices[0].message.content == "ok %d" % (i % 50)
    _ = r["cache"], r.cache_key, r._hidden_params, r.json()
    if i % 10 == 0:
        s = llmcache.completion(model="gpt-4o-mini", messages=msg,
                                mock_response="ok %d" % (i % 50), stream=True)
        assert len(list(s)) >= 2 and s.response.cache
    if i % 5 == 0:
        e = llmcache.embedding(model="text-embedding-3-small", input=["x%d" % (i % 7)])
        _ = e.item_hits
    cache.set("k%d" % (i % 20), "v" * 100)
    assert cache.get("k%d" % (i % 20)) == "v" * 100
    cache.delete("gone")
    try:
        llmcache.completion(model="no-such-model", messages=msg)
    except llmcache.NotFoundError as exc:
        assert exc.status == "ENOTFOUND"
    try:
        llmcache.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": {1}}])
    except TypeError:
        pass


def test_no_leaks_over_10000_calls(fake):
    cache = llmcache.Cache()
    llmcache.cache = cache
    for i in range(500):  # warm up every path, fill the caches
        one_round(i, cache)
    gc.collect()
    blocks0 = sys.getallocatedblocks()
    rss0 = rss_kib()
    tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0]
    refs0 = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    for i in range(N):
        one_round(i, cache)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced0
    tracemalloc.stop()
    blocks = sys.getallocatedblocks() - blocks0
    rss = rss_kib() - rss0
    # A leaked object per call would be >= 10,000 blocks; a leaked C
    # response (about 300 bytes of text plus its parse) >= 3 MB of RSS.
    assert blocks < 500, "allocated blocks grew by %d" % blocks
    assert traced < 256 * 1024, "tracemalloc: %d bytes more" % traced
    if refs0 is not None:
        assert sys.gettotalrefcount() - refs0 < 1000
    if not os.environ.get("LLMC_TEST_SANITIZED"):
        # (ASan's quarantine holds freed memory back: RSS means nothing there.)
        assert rss < 3 * 1024, "resident memory grew by %d KiB" % rss


def test_key_function_cycle_is_collected():
    """A get_cache_key closure that refers to its own Cache is a cycle the
    collector must be able to break."""
    freed = []

    class Marker:
        def __del__(self):
            freed.append(True)

    c = llmcache.Cache()
    m = Marker()
    c.get_cache_key = lambda **kw: "k" if (c, m) else "k"
    del c, m
    gc.collect()
    assert freed == [True]
