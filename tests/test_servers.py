"""The rendered PostgreSQL and Redis pods against real servers: Debian's postgresql, redis-server,
prometheus-postgres-exporter and prometheus-redis-exporter (tools/servers/install.sh, run by `make test`).

Each container runs from the committed manifest (rendered/prod/manifests/), as Argo CD would apply it: its env with
the Secret references resolved to a test credential that has a space and quote characters, its args and exec probe
commands after the kubelet's $(VAR) expansion, the scripts and configuration from the rendered ConfigMaps. What a
container cannot get on this machine is moved, and only that: its ports to free loopback ports, the volume paths to a
scratch directory. Missing binaries skip these tests with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "rendered" / "prod" / "manifests"
INSTALL = "tools/servers/install.sh"
# A role name and a password that a DSN would have to quote: spaces, both quotes, backslash, URL and shell syntax.
PG_USER = "eco2 owner"
PASSWORD = "p@ss wo'rd \"x\" \\:/?#%&=$HOME`id`"
TIMEOUT = 30  # seconds for a server or an exporter to come up, and for any one command


# ---------------------------------------------------------------- the binaries


def _pg_bindir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin (the newest major wins)."""
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    dirs = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    return Path(dirs[-1]) if dirs else None


def _need(*names: str, bindir: Path | None = None) -> dict[str, str]:
    """The path of each binary (the first name of a group of aliases that exists), or skip; under CI, fail."""
    found, missing = {}, []
    for name in names:
        aliases = name.split("|")
        path = next((str(bindir / a) for a in aliases if bindir and (bindir / a).is_file()), None) or \
            next((p for p in map(shutil.which, aliases) if p), None)
        if path:
            found[aliases[0]] = path
        else:
            missing.append(aliases[0])
    if missing:
        why = (f"missing {', '.join(missing)}: `make test` installs the Debian packages when it runs as root "
               f"({INSTALL}); otherwise install postgresql, redis-server, prometheus-postgres-exporter and "
               f"prometheus-redis-exporter")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(why)
    return found


def test_missing_binaries_skip_here_and_fail_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"missing no-such-server: `make test` installs"):
        _need("redis-server", "no-such-server|no-such-alias")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and missing no-such-server"):
        _need("no-such-server")


# ---------------------------------------------------------------- the rendered pods, as the kubelet runs them


def _docs(app: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / f"{app}.yaml").read_text()) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moved(obj: Any, ports: dict[int, int]) -> Any:
    """`obj` with every rendered port number (a whole word in any string, or an integer) replaced by a free port."""
    text = json.dumps(obj)
    for old, new in ports.items():
        text, n = re.subn(rf"(?<![0-9A-Za-z]){old}(?![0-9A-Za-z])", str(new), text)
        assert n, f"port {old} does not occur"
    return json.loads(text)


def _expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion of env values, command and args: $$ is a literal $, unknown names stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), value)


@dataclass
class Container:
    spec: dict[str, Any]
    env: dict[str, str]  # exactly the container's env: Secret references resolved, $(VAR) expanded

    def expand(self, args: list[str]) -> list[str]:
        return [_expand(a, self.env) for a in args]

    def probe(self, kind: str) -> list[str]:
        return self.expand(self.spec[kind]["exec"]["command"])


def _container(pod: dict[str, Any], name: str, secret: str, secrets: dict[str, str]) -> Container:
    """A container of `pod`, its env resolved like the kubelet: the only Secret it may read is `secret`."""
    spec = next(c for c in pod["spec"]["containers"] if c["name"] == name)
    env: dict[str, str] = {}
    for e in spec.get("env") or []:
        if "value" in e:
            env[e["name"]] = _expand(str(e["value"]), env)
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret, f"{name}: env {e['name']} reads Secret {ref['name']!r}, not {secret!r}"
            env[e["name"]] = secrets[ref["key"]]
    return Container(spec, env)


def _as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments that drop root to `user` (PostgreSQL refuses to run as root)."""
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@contextmanager
def _started(argv: list[str], env: dict[str, str], log: Path, user: pwd.struct_passwd | None = None, cwd: Path | None = None,
             stop: signal.Signals = signal.SIGTERM) -> Iterator[subprocess.Popen]:
    """A server process in its own session, with its output in `log`; stopped (then killed) on the way out."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd, **_as(user))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, stop)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through $http_proxy


def _metrics(port: int, proc: subprocess.Popen, log: Path) -> str | None:
    """The exporter's /metrics (its first scrape connects to the server) once it listens; None if it exits first."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with _DIRECT.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                return resp.read().decode()
        except OSError:
            if proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                pytest.fail(f"the exporter did not answer on port {port} within {TIMEOUT}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


def _gauge(metrics: str | None, name: str) -> str | None:
    m = re.search(rf"^{name} (\S+)$", metrics or "", re.MULTILINE)
    return m[1] if m else None


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A scratch directory an unprivileged server user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="eco2-servers-", dir="/tmp" if os.geteuid() == 0 else None))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    bins: dict[str, str]
    pod: dict[str, Any]  # the rendered pod template, ports moved
    config: dict[str, str]  # the rendered ConfigMap's data
    server: Container
    secret: str
    port: int
    root: Path
    log: Path
    user: pwd.struct_passwd | None
    path_env: str

    def run(self, argv: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
        """A command in the server container: its env (and PATH to the PostgreSQL client binaries), as its user."""
        return subprocess.run(argv, env={"PATH": self.path_env, "HOME": str(self.root), **env}, cwd=self.root,
                              capture_output=True, text=True, timeout=kw.pop("timeout", TIMEOUT), **_as(self.user), **kw)

    def log_since(self, offset: int) -> str:
        return self.log.read_text(errors="replace")[offset:]

    def log_size(self) -> int:
        return len(self.log.read_text(errors="replace"))

    def psql(self, sql: str) -> str:
        proc = self.run([self.bins["psql"], "--no-psqlrc", "--no-password", "--tuples-only", "--no-align",
                         "--host", str(self.root / "run"), "--port", str(self.port), "--username", PG_USER,
                         "--dbname", "postgres", "--command", sql], {})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture(scope="module")
def postgres(scratch: Path) -> Iterator[Postgres]:
    bindir = _pg_bindir()
    bins = _need("initdb", "postgres", "pg_isready", "psql", bindir=bindir)
    docs = _docs("postgresql")
    sts = _one(docs, "StatefulSet")
    ports = {p["containerPort"]: _free_port() for c in sts["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    pod = _moved(sts["spec"]["template"], ports)
    secret = yaml.safe_load((REPO / "rendered/prod/values/postgresql.yaml").read_text())["credentialsSecret"]
    server = _container(pod, "postgresql", secret, {"username": PG_USER, "password": PASSWORD})
    port = int(server.env["PGPORT"])
    assert port in ports.values(), "PGPORT is not the server's container port"

    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
    root = scratch / "postgresql"
    (root / "run").mkdir(parents=True)
    log = root / "server.log"
    log.touch()
    pwfile = root / "pwfile"
    pwfile.write_text(server.env["POSTGRES_PASSWORD"] + "\n")
    pg = Postgres(bins, pod, _one(docs, "ConfigMap")["data"], server, secret, port, root, log, user,
                  f"{Path(bins['psql']).parent}:/usr/bin:/bin")
    if user is not None:
        for p in (root, root / "run", log, pwfile):
            os.chown(p, user.pw_uid, user.pw_gid)

    # What the image's entrypoint does at first start: initdb as POSTGRES_USER, with POSTGRES_INITDB_ARGS, then
    # `host all all all scram-sha-256` appended to initdb's default pg_hba.conf (which trusts the socket and
    # loopback). One line more here: loopback logins of the test's own role need its password, so the exporter's
    # login below is really checked; any other role still meets the image's rules.
    data = root / "data"
    proc = pg.run([bins["initdb"], "--pgdata", str(data), "--username", server.env["POSTGRES_USER"],
                   "--pwfile", str(pwfile), "--locale", "C", "--encoding", "UTF8", "--no-sync",
                   *server.env["POSTGRES_INITDB_ARGS"].split()], {}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hba = data / "pg_hba.conf"
    hba.write_text(f'host all "{PG_USER}" 127.0.0.1/32 scram-sha-256\n' + hba.read_text() + "host all all all scram-sha-256\n")

    # The container's env (PGPORT gives the port), the socket where /var/run/postgresql is mounted, loopback only.
    # A throwaway: no fsync, and an immediate shutdown (SIGQUIT) at the end, without the checkpoint.
    argv = [bins["postgres"], "-D", str(data), "-c", f"unix_socket_directories={root / 'run'}",
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    env = {k: v for k, v in server.env.items() if k != "PGDATA"}
    with _started(argv, {"PATH": pg.path_env, **env}, log, user, root, stop=signal.SIGQUIT) as proc:
        deadline = time.monotonic() + TIMEOUT
        while "database system is ready to accept connections" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, "PostgreSQL did not start:\n" + log.read_text()
            time.sleep(0.1)
        yield pg


def test_postgresql_start_script_and_probes_log_no_error(postgres: Postgres):
    """ensure-databases.sh (the postStart hook) and the startup, liveness and readiness probes, run as the rendered
    pod runs them: each succeeds, the databases exist, and the server logs no FATAL or ERROR (pg_isready without
    --username logged `FATAL: role "postgres" does not exist` on every start)."""
    pg = postgres
    script = pg.config["ensure-databases.sh"]
    hook = pg.server.expand(pg.server.spec["lifecycle"]["postStart"]["exec"]["command"])
    mounts = {m["name"]: m["mountPath"] for m in pg.server.spec["volumeMounts"]}
    assert hook == ["/bin/sh", f"{mounts['scripts']}/ensure-databases.sh"]
    # The mounts the script reads, moved into the scratch directory: the socket and the initdb ConfigMap.
    moved = {mounts["run"]: str(pg.root / "run"), f"{mounts['initdb']}/databases.sql": str(pg.root / "databases.sql")}
    for old, new in moved.items():
        assert old in script, f"ensure-databases.sh no longer uses {old}"
        script = script.replace(old, new)
    (pg.root / "ensure-databases.sh").write_text(script)
    (pg.root / "databases.sql").write_text(pg.config["databases.sql"])

    wanted = re.search(r"ARRAY\[(.*)\]::text\[\]", pg.config["databases.sql"])[1]
    wanted = sorted(re.findall(r"'([^']+)'", wanted))
    assert wanted, "databases.sql creates no database"
    for attempt in ("first start", "restart"):  # idempotent: the hook runs on every start
        offset = pg.log_size()
        proc = pg.run([hook[0], str(pg.root / "ensure-databases.sh")], pg.server.env, timeout=60)
        assert proc.returncode == 0, f"{attempt}: {proc.stdout}{proc.stderr}"
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = pg.run(pg.server.probe(kind), pg.server.env)
            assert probe.returncode == 0, f"{kind}: {probe.stdout}{probe.stderr}"
        time.sleep(0.3)  # the server writes its log asynchronously
        problems = [line for line in pg.log_since(offset).splitlines() if re.search(r"\b(FATAL|ERROR|PANIC):", line)]
        assert not problems, f"{attempt}: the server logged:\n" + "\n".join(problems)
    present = set(pg.psql("SELECT datname FROM pg_database").split())
    assert set(wanted) <= present, f"missing databases: {sorted(set(wanted) - present)}"


def _run_postgres_exporter(pg: Postgres, scratch: Path, env: dict[str, str], name: str) -> tuple[str | None, str]:
    """(its /metrics or None if it exited, its log)."""
    exporter = _container(pg.pod, "exporter", pg.secret, {"username": PG_USER, "password": PASSWORD})
    bins = _need("prometheus-postgres-exporter|postgres_exporter")
    (port,) = [p["containerPort"] for p in exporter.spec["ports"]]
    args = exporter.expand(exporter.spec["args"])
    assert args == [f"--web.listen-address=:{port}"]
    log = scratch / f"postgres-exporter-{name}.log"
    # Loopback only; otherwise the rendered args.
    argv = [bins["prometheus-postgres-exporter"], f"--web.listen-address=127.0.0.1:{port}"]
    with _started(argv, env, log) as proc:
        metrics = _metrics(port, proc, log)
    return metrics, log.read_text(errors="replace")


def test_postgres_exporter_logs_in_with_the_rendered_env(postgres: Postgres, scratch: Path):
    """The exporter with exactly the rendered env (DATA_SOURCE_NAME naming the server, PGUSER and PGPASSWORD from
    the Secret) logs in with a user and a password that have spaces and quotes: pg_up 1, and the server logs no
    error. With a wrong password the same check sees pg_up 0: the login is really checked."""
    exporter = _container(postgres.pod, "exporter", postgres.secret, {"username": PG_USER, "password": PASSWORD})
    offset = postgres.log_size()
    metrics, log = _run_postgres_exporter(postgres, scratch, exporter.env, "rendered")
    assert _gauge(metrics, "pg_up") == "1", log[-3000:]
    assert PASSWORD not in log, "the exporter logs the password"
    time.sleep(0.3)
    problems = [line for line in postgres.log_since(offset).splitlines() if re.search(r"\b(FATAL|ERROR):", line)]
    assert not problems, "the server logged:\n" + "\n".join(problems)

    metrics, log = _run_postgres_exporter(postgres, scratch, {**exporter.env, "PGPASSWORD": PASSWORD + "x"}, "wrong")
    assert _gauge(metrics, "pg_up") == "0", log[-3000:]


def test_the_exporters_own_credential_variables_fail_on_a_space(postgres: Postgres, scratch: Path):
    """Why the chart does not use DATA_SOURCE_URI with DATA_SOURCE_USER and DATA_SOURCE_PASS, the variables the
    exporter's README offers: it builds a DSN from them that it cannot parse back ("malformed dsn") when the
    password has a space. Debian's v0.11.1 exits; the same parser is in v0.17.1."""
    old = {"DATA_SOURCE_URI": f"127.0.0.1:{postgres.port}/postgres?sslmode=disable",
           "DATA_SOURCE_USER": "postgres_exporter", "DATA_SOURCE_PASS": "two words"}
    metrics, log = _run_postgres_exporter(postgres, scratch, old, "data-source-pass")
    assert _gauge(metrics, "pg_up") != "1" and "malformed dsn" in log, \
        "this exporter parses such a DSN: DATA_SOURCE_USER/PASS may do now (see postgresql.exporterEnv)\n" + log[-3000:]


# ---------------------------------------------------------------- Redis


@dataclass
class Redis:
    pod: dict[str, Any]
    server: Container
    secret: str
    port: int
    log: Path
    bins: dict[str, str]


@pytest.fixture(scope="module")
def redis(scratch: Path) -> Iterator[Redis]:
    bins = _need("redis-server", "redis-cli")
    docs = _docs("redis")
    sts = _one(docs, "StatefulSet")
    ports = {p["containerPort"]: _free_port() for c in sts["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    pod = _moved(sts["spec"]["template"], ports)
    (rendered_port,) = [p["containerPort"] for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "redis"
                        for p in c["ports"]]
    conf = _moved(_one(docs, "ConfigMap")["data"], {rendered_port: ports[rendered_port]})["redis.conf"]
    secret = yaml.safe_load((REPO / "rendered/prod/values/redis.yaml").read_text())["credentialsSecret"]
    server = _container(pod, "redis", secret, {"password": PASSWORD})
    (port,) = [p["containerPort"] for p in server.spec["ports"]]

    root = scratch / "redis"
    mounts = {m["name"]: m["mountPath"] for m in server.spec["volumeMounts"]}
    (root / "data").mkdir(parents=True)
    (root / "config").mkdir()
    # redis.conf from the ConfigMap with its data directory moved, and listening on loopback only.
    for old, new in ((f"\ndir {mounts['data']}\n", f"\ndir {root / 'data'}\n"), ("\nbind * -::*\n", "\nbind 127.0.0.1\n")):
        assert old in "\n" + conf, f"redis.conf no longer has {old.strip()!r}"
        conf = ("\n" + conf).replace(old, new)[1:]
    (root / "config" / "redis.conf").write_text(conf)
    args = server.expand(server.spec["args"])
    assert args[-1] == PASSWORD, "the password reaches redis-server as its last argument ($(REDIS_PASSWORD))"
    assert args[:2] == ["redis-server", f"{mounts['config']}/redis.conf"]
    argv = [bins["redis-server"], str(root / "config" / "redis.conf"), *args[2:]]
    log = root / "server.log"
    with _started(argv, {"PATH": "/usr/bin:/bin", **server.env}, log, cwd=root) as proc:
        deadline = time.monotonic() + TIMEOUT
        while "Ready to accept connections" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start:\n" + log.read_text()
            time.sleep(0.1)
        yield Redis(pod, server, secret, port, log, bins)


def test_redis_probes_pass_with_the_rendered_password(redis: Redis):
    """redis-server started with the rendered args ($(REDIS_PASSWORD) expanded to a password with a space and
    quotes): the liveness and readiness probes, with REDISCLI_AUTH from the Secret, pass; without it they fail."""
    path = f"{Path(redis.bins['redis-cli']).parent}:/usr/bin:/bin"
    for kind in ("livenessProbe", "readinessProbe"):
        probe = subprocess.run(redis.server.probe(kind), env={"PATH": path, **redis.server.env},
                               capture_output=True, text=True, timeout=TIMEOUT)
        assert probe.returncode == 0, f"{kind}: {probe.stdout}{probe.stderr}"
    unauthenticated = {k: v for k, v in redis.server.env.items() if k != "REDISCLI_AUTH"}
    probe = subprocess.run(redis.server.probe("readinessProbe"), env={"PATH": path, **unauthenticated},
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert probe.returncode != 0, "the readiness probe passes without the password: requirepass is not in force"


def _run_redis_exporter(r: Redis, scratch: Path, env: dict[str, str], name: str) -> str | None:
    bins = _need("prometheus-redis-exporter|redis_exporter")
    exporter = _container(r.pod, "exporter", r.secret, {"password": PASSWORD})
    (port,) = [p["containerPort"] for p in exporter.spec["ports"]]
    assert exporter.expand(exporter.spec["args"]) == [f"--web.listen-address=:{port}"]
    log = scratch / f"redis-exporter-{name}.log"
    with _started([bins["prometheus-redis-exporter"], f"--web.listen-address=127.0.0.1:{port}"], env, log) as proc:
        return _metrics(port, proc, log)


def test_redis_exporter_logs_in_with_the_rendered_env(redis: Redis, scratch: Path):
    """redis_exporter with exactly the rendered env (REDIS_ADDR, REDIS_PASSWORD from the Secret): redis_up 1; with a
    wrong password redis_up 0."""
    exporter = _container(redis.pod, "exporter", redis.secret, {"password": PASSWORD})
    assert _gauge(_run_redis_exporter(redis, scratch, exporter.env, "rendered"), "redis_up") == "1"
    wrong = {**exporter.env, "REDIS_PASSWORD": PASSWORD + "x"}
    assert _gauge(_run_redis_exporter(redis, scratch, wrong, "wrong-password"), "redis_up") == "0"
