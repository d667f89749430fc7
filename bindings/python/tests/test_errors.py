"""Every exception class, raised by the real failure it names (the fake
provider answering 401, 429, 400, 500, a cut stream, a slow answer; a
closed port; a Redis with another password), carrying the C status and
message and never a secret."""
import time

import pytest

import llmcache
from conftest import SECRET_KEY, free_port

MSG = [{"role": "user", "content": "fail?"}]
NO_RETRY = {"max_retries": 0}


def call(**kw):
    args = dict(model="gpt-4o-mini", messages=MSG, **NO_RETRY)
    args.update(kw)
    return llmcache.completion(**args)


def check(exc, cls, status, secret=SECRET_KEY):
    assert isinstance(exc, cls) and isinstance(exc, llmcache.Error)
    assert exc.status == status
    assert isinstance(exc.code, int) and exc.message == str(exc) and exc.message
    assert secret not in str(exc) and secret not in repr(exc.args)


def test_authentication_error(fake):
    fake.cmd("fail 1 401 -1")
    with pytest.raises(llmcache.AuthenticationError) as e:
        call(api_key="sk-very-secret-401")
    check(e.value, llmcache.AuthenticationError, "EAUTH", "sk-very-secret-401")
    assert e.value.status_code == 401 and e.value.native == 401


def test_missing_key_is_authentication_error(fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(llmcache.AuthenticationError, match="OPENAI_API_KEY"):
        call()


def test_rate_limit_error(fake):
    fake.cmd("fail 1 429 -1")
    with pytest.raises(llmcache.RateLimitError) as e:
        call()
    check(e.value, llmcache.RateLimitError, "ERATELIMIT")
    assert e.value.status_code == 429


def test_bad_request_error(fake):
    fake.cmd("fail 1 400 -1")
    with pytest.raises(llmcache.BadRequestError) as e:
        call()
    check(e.value, llmcache.BadRequestError, "EBADREQUEST")
    assert not isinstance(e.value, llmcache.ContextWindowExceededError)


def test_context_window_exceeded_error(fake):
    fake.cmd('reply 400 {"error":{"message":"This model\'s maximum context length is 8192 '
             'tokens","type":"invalid_request_error","code":"context_length_exceeded"}}')
    with pytest.raises(llmcache.ContextWindowExceededError) as e:
        call()
    check(e.value, llmcache.BadRequestError, "ECONTEXT")
    assert "maximum context length" in str(e.value)


def test_api_error(fake):
    fake.cmd("fail 1 500 -1")
    with pytest.raises(llmcache.APIError) as e:
        call()
    check(e.value, llmcache.APIError, "EUPSTREAM")
    assert e.value.status_code == 500
    fake.cmd('reply 302 {"moved":true}')
    with pytest.raises(llmcache.APIError) as e:
        call()
    assert e.value.status == "EPROVIDER"


def test_stream_error_and_nothing_cached(fake):
    llmcache.cache = llmcache.Cache()
    q = [{"role": "user", "content": "a stream that will be cut off before its end"}]
    fake.cmd("cut 2")
    s = llmcache.completion(model="gpt-4o-mini", messages=q, stream=True, **NO_RETRY)
    with pytest.raises(llmcache.StreamError) as e:
        for _ in s:
            pass
    check(e.value, llmcache.APIError, "ESTREAM")
    assert llmcache.completion(model="gpt-4o-mini", messages=q).cache is False


def test_timeout(fake):
    fake.cmd("delay 1500")
    with pytest.raises(llmcache.Timeout) as e:
        call(timeout=0.3)
    check(e.value, TimeoutError, "ETIMEDOUT")
    fake.cmd("delay 0")
    # The fake provider still holds that request until its late answer is
    # written; resetting it before then (the next test's setup) would free
    # the request under its feet.
    time.sleep(2)


def test_api_connection_error(fake):
    with pytest.raises(llmcache.APIConnectionError) as e:
        call(api_base="http://127.0.0.1:%d/v1" % free_port())
    check(e.value, ConnectionError, "ECONN")


def test_not_found_error(fake):
    with pytest.raises(llmcache.NotFoundError) as e:
        call(model="no-such-model-family")
    check(e.value, LookupError, "ENOTFOUND")
    assert "known providers" in str(e.value)


def test_invalid_argument_error(fake):
    with pytest.raises(llmcache.InvalidArgumentError) as e:
        call(messages=[])
    check(e.value, ValueError, "EINVAL")
    assert "messages" in str(e.value)


def test_cache_error(redis_server, doomed_redis):
    with pytest.raises(llmcache.CacheError) as e:
        llmcache.Cache(type="redis", host="127.0.0.1", port=free_port(), timeout_ms=2000).ping()
    check(e.value, llmcache.CacheError, "ECONN")
    down = llmcache.Cache(type="redis", host=doomed_redis.host, port=doomed_redis.port,
                          password=doomed_redis.password, timeout_ms=2000)
    assert down.ping() is True
    doomed_redis.stop()
    with pytest.raises(llmcache.CacheError) as e:
        down.ping()
    check(e.value, llmcache.CacheError, e.value.status)
    with pytest.raises(llmcache.CacheError):
        down.get("k")
    with pytest.raises(llmcache.CacheError) as e:
        llmcache.Cache(type="redis", host=redis_server.host, port=redis_server.port,
                       password="not-the-password-x1").set("k", "v")
    check(e.value, llmcache.CacheError, "EAUTH", "not-the-password-x1")


def test_completion_fails_open_on_a_dead_cache(fake, doomed_redis):
    """The cache is an optimisation: a dead backend is a miss, not an error."""
    llmcache.cache = llmcache.Cache(type="redis", host=doomed_redis.host, port=doomed_redis.port,
                                    password=doomed_redis.password, timeout_ms=500)
    doomed_redis.stop()
    r = llmcache.completion(model="gpt-4o-mini", messages=MSG)
    assert r.cache is False and r.choices[0].message.content == "echo: fail?"


def test_hierarchy():
    for name in ("InvalidArgumentError", "NotFoundError", "AuthenticationError",
                 "RateLimitError", "BadRequestError", "ContextWindowExceededError", "APIError",
                 "StreamError", "Timeout", "APIConnectionError", "CacheError"):
        assert issubclass(getattr(llmcache, name), llmcache.Error), name
    assert issubclass(llmcache.Error, Exception)
