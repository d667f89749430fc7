"""Fixtures of the llmcache module's suite: the fake provider server (a
real HTTP server on a free loopback port, driven through
tests/fake_provider_ctl) and a real redis-server with a password, both
started here, never assumed to be running."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import llmcache

SECRET_KEY = "sk-test-secret-123"
REDIS_PASSWORD = "py-s3cret-pw"


class FakeProvider:
    def __init__(self):
        exe = os.environ.get("LLMC_FAKE_PROVIDER")
        if not exe or not os.access(exe, os.X_OK):
            pytest.fail("LLMC_FAKE_PROVIDER does not name the fake_provider_ctl program "
                        "(run the suite through meson test)")
        self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            pytest.fail("fake provider did not start")
        self.port = int(line[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def cmd(self, line):
        if self.proc.poll() is not None:
            pytest.fail("the fake provider exited with status %s" % self.proc.returncode)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer and not answer.startswith("error"), (line, answer)
        return answer

    def count(self):
        """Requests the provider has received (upstream calls)."""
        return int(self.cmd("count"))

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def fake():
    f = FakeProvider()
    os.environ["OPENAI_API_KEY"] = SECRET_KEY
    os.environ["OPENAI_BASE_URL"] = f.url + "/v1"
    yield f
    f.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_program(name):
    path = shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/usr/bin/" + name) if os.access(p, os.X_OK)), None)
    if not path:
        pytest.fail("%s not found: install it (scripts/install-deps.sh --test)" % name)
    return path


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="llmc-py-redis-")
        self.host = "127.0.0.1"
        self.password = REDIS_PASSWORD
        exe = find_program("redis-server")
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass",
                 self.password, "--save", "", "--appendonly", "no", "--dir", self.dir],
                stdout=open(os.path.join(self.dir, "redis.log"), "w"), stderr=subprocess.STDOUT)
            if self._wait_ready():
                return
            self.proc.kill()
            self.proc.wait()
        pytest.fail("redis-server did not start (see %s/redis.log)" % self.dir)

    def _wait_ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.sendall(b"AUTH %s\r\nPING\r\n" % self.password.encode())
                    got = b""
                    while b"+PONG" not in got:
                        part = s.recv(100)
                        if not part:
                            break
                        got += part
                    if b"+PONG" in got:
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    r = RedisServer()
    yield r
    r.stop()


class Server:
    """A server process on a free loopback port, ready when it accepts TCP."""

    def __init__(self, name, argv_for_port, ready=None):
        self.dir = tempfile.mkdtemp(prefix="llmc-py-%s-" % name)
        exe = find_program(name)
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [exe] + argv_for_port(self.port, self.dir),
                stdout=open(os.path.join(self.dir, name + ".log"), "w"),
                stderr=subprocess.STDOUT)
            if self._wait() and (ready is None or ready(self)):
                return
            self.proc.kill()
            self.proc.wait()
        pytest.fail("%s did not start (see %s)" % (name, self.dir))

    def _wait(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def memcached_server():
    m = Server("memcached", lambda port, d: ["-l", "127.0.0.1", "-p", str(port), "-U", "0"] + (["-u", "root"] if os.getuid() == 0 else []))
    yield m
    m.stop()


def _one_node_cluster(srv):
    """Give the single node every slot and wait for cluster_state:ok."""
    cli = find_program("redis-cli")
    base = [cli, "-h", "127.0.0.1", "-p", str(srv.port), "-a", REDIS_PASSWORD, "--no-auth-warning"]
    subprocess.run(base + ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"], check=True,
                   capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = subprocess.run(base + ["CLUSTER", "INFO"], capture_output=True, text=True).stdout
        if "cluster_state:ok" in out:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def cluster_server():
    c = Server("redis-server", lambda port, d: [
        "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD,
        "--masterauth", REDIS_PASSWORD, "--cluster-enabled", "yes", "--cluster-config-file",
        os.path.join(d, "nodes.conf"), "--save", "", "--appendonly", "no", "--dir", d],
        ready=_one_node_cluster)
    yield c
    c.stop()


@pytest.fixture
def doomed_redis():
    """A redis-server of its own, for tests that stop it."""
    r = RedisServer()
    yield r
    if r.proc.poll() is None:
        r.stop()


@pytest.fixture(autouse=True)
def clean_state(fake):
    """Every test starts with no default cache and a quiet provider."""
    llmcache.cache = None
    fake.cmd("reset")
    fake.cmd("delay 0")
    yield
    llmcache.cache = None


@pytest.fixture
def redis_cache(redis_server):
    c = llmcache.Cache(type="redis", host=redis_server.host, port=redis_server.port,
                       password=redis_server.password)
    c.flush_all()
    return c
