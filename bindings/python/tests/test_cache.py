"""The Cache type: construction from a type or a URL, every backend the
suite can start, the raw key/value methods and their errors."""
import os

import pytest

import llmcache
from conftest import REDIS_PASSWORD


@pytest.fixture(params=["local", "sqlite", "redis", "memcached", "redis-cluster",
                        "redis-cluster-nodes", "file-plugin", "file-plugin-url"])
def any_cache(request, tmp_path, redis_server, memcached_server, cluster_server):
    if request.param == "local":
        return llmcache.Cache()
    if request.param == "sqlite":
        return llmcache.Cache(type="sqlite", path=str(tmp_path / "c.db"))
    if request.param == "redis":
        c = llmcache.Cache(url="redis://:%s@%s:%d/1" % (redis_server.password, redis_server.host,
                                                        redis_server.port))
        c.flush_all()
        return c
    if request.param == "memcached":
        c = llmcache.Cache(type="memcached", host="127.0.0.1", port=memcached_server.port)
        c.flush_all()
        return c
    if request.param == "redis-cluster":
        c = llmcache.Cache(type="redis-cluster", host="127.0.0.1", port=cluster_server.port,
                           password=REDIS_PASSWORD)
        c.flush_all()
        return c
    if request.param == "redis-cluster-nodes":
        # LiteLLM's form for a cluster.
        c = llmcache.Cache(type="redis-cluster", password=REDIS_PASSWORD,
                           startup_nodes=[{"host": "127.0.0.1", "port": cluster_server.port}])
        c.flush_all()
        return c
    (tmp_path / "files").mkdir()
    if request.param == "file-plugin":
        return llmcache.Cache(type="file", path=str(tmp_path / "files"))
    return llmcache.Cache(url="file://" + str(tmp_path / "files"))


def test_raw_methods(any_cache):
    c = any_cache
    assert c.ping() is True
    assert c.get("missing") is None
    assert c.get("missing", "dflt") == "dflt"
    c.set("k", "välue")
    assert c.get("k") == "välue"
    assert c.get("k", decode=False) == "välue".encode()
    c.set(b"bin\x00key", b"\x00\xff\x01")
    assert c.get(b"bin\x00key", decode=False) == b"\x00\xff\x01"
    with pytest.raises(UnicodeDecodeError):
        c.get(b"bin\x00key")
    assert c.delete("k") is True
    assert c.get("k") is None
    c.set("ns1:a", "1")
    c.set("ns1:b", "2")
    c.set("ns2:a", "3")
    c.flush(namespace="ns1")
    assert c.get("ns1:a") is None and c.get("ns1:b") is None
    assert c.get("ns2:a") == "3"
    # Completions through it: miss, then hit.
    llmcache.cache = c
    msg = [{"role": "user", "content": "backend " + c.backend}]
    r1 = llmcache.completion(model="gpt-4o-mini", messages=msg, mock_response="m")
    r2 = llmcache.completion(model="gpt-4o-mini", messages=msg, mock_response="m")
    assert (r1.cache, r2.cache) == (False, True)
    st = c.stats()
    assert st["sets"] >= 5 and st["hits"] >= 3 and st["misses"] >= 3
    assert isinstance(st["backend"], dict)


def test_properties_and_options(redis_server):
    c = llmcache.Cache(type="redis", host=redis_server.host, port=redis_server.port,
                       password=redis_server.password, namespace="team", ttl=60)
    assert c.backend == "redis"
    assert c.namespace == "team"
    assert redis_server.password not in c.url and redis_server.password not in repr(c)
    c.set("team:x", "1", ttl=30)
    assert c.flush() == 1  # the cache's own namespace
    local = llmcache.Cache("local", max_entries=10, max_item_bytes=16)
    with pytest.raises(llmcache.CacheError) as e:
        local.set("big", "x" * 100)
    assert e.value.status == "ETOOBIG"
    assert local.get("big") is None


def test_bad_construction():
    with pytest.raises(llmcache.InvalidArgumentError, match="bogus"):
        llmcache.Cache(type="redis", bogus=1)
    with pytest.raises(llmcache.NotFoundError):
        llmcache.Cache(type="no-such-backend")
    with pytest.raises(llmcache.InvalidArgumentError):
        llmcache.Cache(url="redis://host:notaport/0")
    with pytest.raises(ValueError):
        llmcache.Cache(type="redis", url="redis://127.0.0.1:1/0")
    with pytest.raises(TypeError):
        llmcache.Cache(type="local", max_entries=[1])
    with pytest.raises(TypeError):
        llmcache.Cache(1)
    with pytest.raises(llmcache.InvalidArgumentError):
        llmcache.Cache(max_entries="many")


def test_bad_arguments():
    c = llmcache.Cache()
    with pytest.raises(TypeError):
        c.get(1)
    with pytest.raises(TypeError):
        c.set("k", 1)
    with pytest.raises(ValueError):
        c.set("k", "v", ttl=-1)
    with pytest.raises(llmcache.InvalidArgumentError):
        c.flush()  # no namespace given and none configured


def test_plugin_type(tmp_path):
    """A backend from a plugin (the file backend example) by its type name."""
    assert os.environ.get("LLMCACHE_PLUGIN_PATH"), "meson test sets LLMCACHE_PLUGIN_PATH"
    c = llmcache.Cache(type="file", path=str(tmp_path / "a dir?#%"))
    assert c.backend == "file"
    c.set("a", "b")
    assert c.get("a") == "b"


def test_add_cache_and_get_cache(fake):
    """LiteLLM's custom key-value pairs, and responses stored by hand."""
    cache = llmcache.Cache()
    cache.add_cache(cache_key="test-key", result="1234")
    assert cache.get_cache(cache_key="test-key") == "1234"
    assert cache.get_cache(cache_key="absent") is None
    # Keyed by a completion's arguments: completion() answers from it.
    llmcache.cache = cache
    msg = [{"role": "user", "content": "stored by hand"}]
    stored = {"id": "chatcmpl-hand", "object": "chat.completion", "created": 1,
              "model": "gpt-4o-mini",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "from add_cache"}}]}
    assert cache.get_cache(model="gpt-4o-mini", messages=msg) is None
    cache.add_cache(stored, model="gpt-4o-mini", messages=msg)
    assert cache.get_cache(model="gpt-4o-mini", messages=msg).choices[0].message.content == \
        "from add_cache"
    n = fake.count()
    r = llmcache.completion(model="gpt-4o-mini", messages=msg)
    assert r.cache is True and r.choices[0].message.content == "from add_cache"
    assert fake.count() == n
    # And the other way round: what completion() stored, get_cache() reads.
    msg2 = [{"role": "user", "content": "stored by completion"}]
    llmcache.completion(model="gpt-4o-mini", messages=msg2)
    assert cache.get_cache(model="gpt-4o-mini", messages=msg2).choices[0].message.content == \
        "echo: stored by completion"
    # With get_cache_key set, that function names the key.
    cache.get_cache_key = lambda **kw: "custom:" + kw["messages"][0]["content"]
    cache.add_cache(stored, model="gpt-4o-mini", messages=[{"role": "user", "content": "z"}])
    assert cache.get("custom:z", decode=False)
    with pytest.raises(TypeError):
        cache.add_cache("not a response", model="gpt-4o-mini", messages=msg)
    with pytest.raises(TypeError):
        cache.add_cache(cache_key="k")
