"""completion(), text_completion() and embedding() through a cache: hits
and misses, per-call controls, mock responses, credentials, routing by
model name, custom keys, streams and embedding partial hits."""
import pytest

import llmcache
from conftest import SECRET_KEY

MSG = [{"role": "user", "content": "What is a cache?"}]


@pytest.fixture(params=["local", "redis"])
def cache(request, redis_server):
    if request.param == "local":
        c = llmcache.Cache()
    else:
        c = llmcache.Cache(type="redis", host=redis_server.host, port=redis_server.port,
                           password=redis_server.password)
        c.flush_all()
    llmcache.cache = c
    return c


def test_miss_then_hit(fake, cache):
    n = fake.count()
    r1 = llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=0.5, caching=True)
    r2 = llmcache.completion("gpt-4o-mini", MSG, temperature=0.5, caching=True)
    assert fake.count() == n + 1
    assert r1.cache is False and r2.cache is True
    assert r1.choices[0].message.content == "echo: What is a cache?"
    assert r2["choices"][0]["message"]["role"] == "assistant"
    assert r2.usage.total_tokens == r1["usage"]["total_tokens"]
    assert r2.cache_age_ms is not None and r1.cache_age_ms is None
    assert r1.cache_stored is True
    assert r2.attempts == 0 and r1.attempts == 1
    assert r2.provider == "openai"
    assert "choices" in r2 and len(r2) >= 4 and "id" in list(r2)
    assert r2.get("nope", 7) == 7
    assert '"cache":true' in r2.json().replace(" ", "")
    # A different parameter is a different entry.
    r3 = llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=0.7)
    assert r3.cache is False and fake.count() == n + 2


def test_without_a_cache(fake):
    llmcache.cache = None
    n = fake.count()
    for _ in range(2):
        r = llmcache.completion(model="gpt-4o-mini", messages=MSG)
        assert r.cache is False and r.cache_key is None
    assert fake.count() == n + 2


def test_per_call_controls(fake, cache):
    n = fake.count()
    llmcache.completion(model="gpt-4o-mini", messages=MSG)
    # no-cache: skips the read (goes upstream), still stores.
    r = llmcache.completion(model="gpt-4o-mini", messages=MSG, cache={"no-cache": True})
    assert r.cache is False and fake.count() == n + 2
    # no-store: a new question is not stored.
    q = [{"role": "user", "content": "not stored"}]
    llmcache.completion(model="gpt-4o-mini", messages=q, cache={"no-store": True})
    assert llmcache.completion(model="gpt-4o-mini", messages=q).cache is False
    # namespace: its own key space.
    r = llmcache.completion(model="gpt-4o-mini", messages=MSG, cache={"namespace": "x", "ttl": 60})
    assert r.cache is False and r.cache_key.startswith("x:")
    r = llmcache.completion(model="gpt-4o-mini", messages=MSG, cache={"namespace": "x"})
    assert r.cache is True
    # s-maxage: an answer of age >= 0 is accepted with a generous bound.
    assert llmcache.completion(model="gpt-4o-mini", messages=MSG,
                               cache={"s-maxage": 3600}).cache is True
    # caching=False opts out.
    c = fake.count()
    assert llmcache.completion(model="gpt-4o-mini", messages=MSG, caching=False).cache is False
    assert fake.count() == c + 1
    # Unknown control names are an error naming them.
    with pytest.raises(llmcache.InvalidArgumentError, match="no-cahce"):
        llmcache.completion(model="gpt-4o-mini", messages=MSG, cache={"no-cahce": True})
    with pytest.raises(TypeError):
        llmcache.completion(model="gpt-4o-mini", messages=MSG, cache=True)


def test_mock_response_needs_no_provider(fake, cache):
    n = fake.count()
    r1 = llmcache.completion(model="gpt-4o-mini", messages=MSG, mock_response="canned")
    r2 = llmcache.completion(model="gpt-4o-mini", messages=MSG, mock_response="canned")
    assert r1.choices[0].message.content == "canned" and r2.cache is True
    assert fake.count() == n


def test_api_key_and_api_base(fake, cache, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    secret = "sk-per-call-secret-987"
    q = [{"role": "user", "content": "per call credentials"}]
    r1 = llmcache.completion(model="gpt-4o-mini", messages=q, api_key=secret,
                             api_base=fake.url + "/v1")
    assert r1.cache is False and fake.cmd("lastpath") == "/v1/chat/completions"
    # The key is not part of the cache key: another key hits the same entry.
    r2 = llmcache.completion(model="gpt-4o-mini", messages=q, api_key="sk-other",
                             api_base=fake.url + "/v1")
    assert r2.cache is True
    stored = cache.get(r2.cache_key, decode=False)
    assert secret.encode() not in stored and secret not in r2.json()
    assert secret not in r2.cache_key


@pytest.mark.parametrize("model,path", [
    ("anthropic/claude-3-5-haiku-latest", "/v1/messages"),
    ("gemini/gemini-1.5-flash", "/v1beta/models/gemini-1.5-flash:generateContent"),
    ("ollama/llama3", "/api/chat"),
])
def test_routing_by_model_name(fake, cache, model, path):
    q = [{"role": "user", "content": "route " + model}]
    r1 = llmcache.completion(model=model, messages=q, api_key="k-test", api_base=fake.url)
    assert fake.cmd("lastpath") == path
    assert r1.choices[0].message.content.endswith("route " + model)
    assert r1.provider == model.split("/")[0]
    n = fake.count()
    r2 = llmcache.completion(model=model, messages=q, api_key="k-test", api_base=fake.url)
    assert r2.cache is True and fake.count() == n


def test_custom_get_cache_key(fake, cache):
    seen = []

    def custom_get_cache_key(*args, **kwargs):
        seen.append(kwargs)
        # LiteLLM's documented example: model + messages, nothing else.
        return str(kwargs.get("model", "")) + str(kwargs.get("messages", ""))

    cache.get_cache_key = custom_get_cache_key
    n = fake.count()
    r1 = llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=0.1)
    # temperature is not in the custom key: a hit despite the change.
    r2 = llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=0.9)
    assert (r1.cache, r2.cache) == (False, True) and fake.count() == n + 1
    assert r1.cache_key == "gpt-4o-mini" + str(MSG)
    assert seen[0]["temperature"] == 0.1 and seen[0]["messages"] == MSG
    # The key function's failures are the call's.
    cache.get_cache_key = lambda **kw: 42
    with pytest.raises(TypeError, match="str"):
        llmcache.completion(model="gpt-4o-mini", messages=MSG)

    def boom(**kw):
        raise RuntimeError("key function failed")

    cache.get_cache_key = boom
    with pytest.raises(RuntimeError):
        llmcache.completion(model="gpt-4o-mini", messages=MSG)
    cache.get_cache_key = None
    assert llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=0.1).cache is False


def test_stream_miss_then_replayed_hit(fake, cache):
    q = [{"role": "user", "content": "stream me a fairly long answer, please"}]
    n = fake.count()
    s1 = llmcache.completion(model="gpt-4o-mini", messages=q, stream=True)
    chunks1 = list(s1)
    assert fake.count() == n + 1
    text1 = "".join(c.choices[0].delta.get("content") or "" for c in chunks1 if c.choices)
    assert text1 == "echo: " + q[0]["content"]
    assert s1.cache is False and s1.response.cache is False
    s2 = llmcache.completion(model="gpt-4o-mini", messages=q, stream=True)
    chunks2 = list(s2)
    assert fake.count() == n + 1, "a hit is replayed, not fetched"
    assert s2.cache is True and len(chunks2) >= 3
    assert chunks2[0].object == "chat.completion.chunk"
    assert chunks2[0].choices[0].delta.role == "assistant"
    text2 = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks2
                    if c["choices"])
    assert text2 == text1
    assert [c.choices[0].finish_reason for c in chunks2 if c.choices][-1] == "stop"
    # A plain call shares the streamed call's entry.
    assert llmcache.completion(model="gpt-4o-mini", messages=q).cache is True


def test_stream_closed_early(fake, cache):
    """Closing a stream before its end is safe whatever the C call is doing
    (here the fast fake provider may already have finished it)."""
    q = [{"role": "user", "content": "closed early"}]
    with llmcache.completion(model="gpt-4o-mini", messages=q, stream=True) as s:
        assert next(s).object == "chat.completion.chunk"
    s.close()
    with pytest.raises(StopIteration):
        next(s)
    assert llmcache.completion(model="gpt-4o-mini", messages=q).choices[0].message.content
    # Dropping an unread stream is fine too.
    llmcache.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "drop"}],
                        stream=True)


def test_embedding_partial_hits(fake, cache):
    n = fake.count()
    r1 = llmcache.embedding(model="text-embedding-3-small", input=["alpha", "beta"])
    assert r1.item_hits == (False, False) and fake.count() == n + 1
    assert len(r1.data) == 2 and len(r1.data[0].embedding) > 0
    r2 = llmcache.embedding(model="text-embedding-3-small", input=["beta", "gamma"])
    assert r2.item_hits == (True, False) and r2.cache is False and fake.count() == n + 2
    assert r2.data[0].embedding == r1.data[1].embedding
    assert [d.index for d in r2.data] == [0, 1]
    r3 = llmcache.embedding(model="text-embedding-3-small", input=["gamma", "alpha", "beta"])
    assert r3.item_hits == (True, True, True) and r3.cache is True and fake.count() == n + 2
    r4 = llmcache.embedding("text-embedding-3-small", "alpha")
    assert r4.cache is True


def test_text_completion(fake, cache):
    n = fake.count()
    r1 = llmcache.text_completion(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    r2 = llmcache.text_completion("gpt-3.5-turbo-instruct", "Say hi")
    assert r1.choices[0].text == r2["choices"][0]["text"] and r1.choices[0].text
    assert (r1.cache, r2.cache) == (False, True) and fake.count() == n + 1
    with pytest.raises(ValueError):
        llmcache.text_completion(model="gpt-3.5-turbo-instruct", prompt="x", stream=True)


def test_request_values_are_checked(fake, cache):
    with pytest.raises(ValueError, match="temperature"):
        llmcache.completion(model="gpt-4o-mini", messages=MSG, temperature=float("nan"))
    with pytest.raises(TypeError, match="messages"):
        llmcache.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": {1, 2}}])
    with pytest.raises(TypeError, match="keys must be str"):
        llmcache.completion(model="gpt-4o-mini", messages=[{1: "x"}])
    with pytest.raises(TypeError, match="twice"):
        llmcache.completion("gpt-4o-mini", MSG, model="gpt-4o")
    with pytest.raises(TypeError):
        llmcache.completion("a", MSG, "extra")
    deep = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        llmcache.completion(model="gpt-4o-mini", messages=MSG, extra=deep)
    with pytest.raises(llmcache.InvalidArgumentError):
        llmcache.completion(model="gpt-4o-mini", messages="not a list")
    llmcache.cache = "not a cache"
    with pytest.raises(TypeError, match="llmcache.cache"):
        llmcache.completion(model="gpt-4o-mini", messages=MSG)
    # Text with every kind of character survives the trip.
    # (NUL is left out: the fake provider echoes C strings.)
    odd = "quote \" backslash \\ newline \n tab \t ctl \x01 \x1f é 日本 🎉"
    llmcache.cache = cache
    r = llmcache.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": odd}])
    assert r.choices[0].message.content == "echo: " + odd
    with pytest.raises(UnicodeEncodeError):
        llmcache.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "\ud800"}])


def test_help_reads_well():
    import inspect
    import pydoc
    sig = inspect.signature(llmcache.completion)
    assert list(sig.parameters)[:2] == ["model", "messages"] and "caching" in sig.parameters
    assert "password" in inspect.signature(llmcache.Cache).parameters
    assert "per-call controls" in pydoc.render_doc(llmcache.completion, renderer=pydoc.plaintext)
    assert "caching" in llmcache.completion.__doc__
    assert "redis" in llmcache.Cache.__doc__
    assert llmcache.Response.__doc__ and llmcache.Stream.__doc__


def test_hostile_controls_and_names(fake, cache):
    """Bad controls and namespaces are refused by the library where the key
    is built, and the refusal names the problem."""
    for bad in ({"namespace": ""}, {"namespace": 5}, {"ttl": "soon"}, {"ttl": -5},
                {"s-maxage": "x"}, {"no-cache": "yes please"}, {"key": 7}):
        with pytest.raises(llmcache.InvalidArgumentError):
            llmcache.completion(model="gpt-4o-mini", messages=MSG, cache=bad)
    with pytest.raises(llmcache.InvalidArgumentError):
        llmcache.Cache(namespace="a:b")
    # A key function cannot smuggle a non-string key in.
    cache.get_cache_key = lambda **kw: None
    with pytest.raises(TypeError):
        llmcache.completion(model="gpt-4o-mini", messages=MSG)
    cache.get_cache_key = None
    # Argument names are compared whole: "stream\0x" is a request field,
    # not the stream switch.
    r = llmcache.completion(model="gpt-4o-mini", messages=MSG, **{"stream\0x": True})
    assert isinstance(r, llmcache.Response)
