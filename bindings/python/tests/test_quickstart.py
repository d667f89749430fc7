"""LiteLLM's caching Quick Start, copied as written with litellm replaced
by llmcache, against a real redis-server with a password and the fake
provider; and the Quick Start of docs/python.md, run as it is printed."""
import os
import re

import llmcache


def test_litellm_quick_start(fake, redis_server, redis_cache):
    host, port, password = redis_server.host, redis_server.port, redis_server.password
    before = fake.count()

    # ---- LiteLLM's Quick Start, litellm -> llmcache ----
    import llmcache
    from llmcache import completion
    from llmcache.caching.caching import Cache

    llmcache.cache = Cache(type="redis", host=host, port=port, password=password)

    # Make completion calls
    response1 = completion(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Tell me a joke."}],
        caching=True
    )
    response2 = completion(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Tell me a joke."}],
        caching=True
    )

    # response1 == response2, response 1 is cached
    # ---- end of the Quick Start ----

    assert fake.count() == before + 1, "the second call must not go upstream"
    c1 = response1["choices"][0]["message"]["content"]
    c2 = response2.choices[0].message.content
    assert c1 == c2 == "echo: Tell me a joke."
    assert response1["cache"] is False and response1.cache is False
    assert response2["cache"] is True and response2.cache is True
    assert response1.id == response2.id
    # "response1 == response2": the same answer; only the hit carries the
    # cache marker.
    assert response1 == response2
    d1, d2 = response1.to_dict(), response2.to_dict()
    assert d2.pop("cache") is True and "cache" not in d1
    assert d1 == d2
    assert response1 != completion(model="gpt-3.5-turbo",
                                   messages=[{"role": "user", "content": "Another joke."}])
    # The entry really lives in Redis, under the key the response names.
    assert llmcache.cache.get(response2.cache_key, decode=False) is not None


def test_quick_start_without_caching_argument(fake, redis_server):
    """LiteLLM's other spelling: no caching=True, the cache is on by default."""
    from llmcache import completion
    from llmcache.caching import Cache

    llmcache.cache = Cache(type="redis", host=redis_server.host, port=str(redis_server.port),
                           password=redis_server.password, namespace="qs2")
    llmcache.cache.flush()
    before = fake.count()
    r1 = completion(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hi"}])
    r2 = completion(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hi"}])
    assert fake.count() == before + 1
    assert (r1.cache, r2.cache) == (False, True)
    assert r2.cache_key.startswith("qs2:")


def test_redis_environment_variables(fake, redis_server, monkeypatch):
    """REDIS_HOST, REDIS_PORT and REDIS_PASSWORD fill in Cache(type="redis")."""
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("REDIS_PASSWORD", redis_server.password)
    c = llmcache.Cache(type="redis")
    assert c.ping() is True
    c.set("env-key", "v")
    assert c.get("env-key") == "v"
    assert redis_server.password not in c.url
    # An explicit argument wins over the variable.
    monkeypatch.setenv("REDIS_PASSWORD", "wrong")
    c2 = llmcache.Cache(type="redis", password=redis_server.password)
    assert c2.get("env-key") == "v"


def test_docs_quick_start_runs(fake, redis_server, monkeypatch):
    """docs/python.md's Quick Start, exactly as printed."""
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "python.md")
    text = open(docs, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/python.md has no python block"
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("REDIS_PASSWORD", redis_server.password)
    llmcache.Cache(type="redis").flush_all()
    before = fake.count()
    out = {}
    exec(compile(blocks[0], "docs/python.md", "exec"), out)
    assert fake.count() == before + 1
    assert out["response2"].cache is True
