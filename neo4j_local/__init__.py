"""Run a real local Neo4j 5.26 LTS Community server for tests, CI and development.

The server jars come from Maven Central (``neo4j_local/pom.xml``, shipped with
the package and fetched with ``mvn``
into ``<home>/lib``) and run on the local Java 17+ as a detached process
bound to 127.0.0.1 only. Auth is enabled: user ``neo4j`` gets its initial
password through Neo4j's own ``neo4j-admin dbms set-initial-password``
command (``org.neo4j.cli.AdminTool``) before the first start.

Layout of ``<home>`` (default ``$PROUTER_NEO4J_HOME`` or ``./.neo4j``)::

    lib/          server jars (+ .pom-sha256 stamp of the pom they came from)
    conf/         neo4j.conf, rewritten on every start
    data/         databases and transaction logs (delete it for a fresh server)
    logs/         neo4j.log, debug.log, ... and console.log (server stdout/stderr)
    server.json   pid, uri, username, password of the running server

Command line: ``prouter neo4j start|status|stop``; ``start`` prints
shell-eval-able ``NEO4J_*=...`` lines (``set -a; eval "$(prouter neo4j start)"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

__all__ = [
    "DEFAULT_PASSWORD",
    "Neo4jStartError",
    "ServerInfo",
    "default_home",
    "env_lines",
    "import_full",
    "start",
    "status",
    "stop",
]

POM = Path(__file__).resolve().parent / "pom.xml"
HOME_ENV = "PROUTER_NEO4J_HOME"
DEFAULT_PASSWORD = "prouter-test"
USERNAME = "neo4j"
HOST = "127.0.0.1"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"

HEAP_INITIAL = "512m"
HEAP_MAX = "1g"
PAGECACHE = "256m"
LOG_TAIL_LINES = 40

# JVM flags taken from the neo4j.conf that ships with the 5.26 distribution
# (the shell launcher would add them from server.jvm.additional).
JVM_FLAGS = [
    f"-Xms{HEAP_INITIAL}",
    f"-Xmx{HEAP_MAX}",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
]


class Neo4jStartError(RuntimeError):
    """The server could not be fetched, configured or started (message carries the log tail)."""


class _PortTaken(Neo4jStartError):
    """The chosen Bolt port was grabbed by someone else before the server bound it."""


@dataclass(frozen=True)
class ServerInfo:
    """Connection details of a running local server."""

    uri: str
    username: str
    password: str
    pid: int
    home: Path

    @property
    def port(self) -> int:
        """Bolt port parsed from ``uri``."""
        return int(self.uri.rsplit(":", 1)[1])

    def env(self) -> dict[str, str]:
        """``NEO4J_URI``/``NEO4J_USERNAME``/``NEO4J_PASSWORD`` for this server."""
        return {
            "NEO4J_URI": self.uri,
            "NEO4J_USERNAME": self.username,
            "NEO4J_PASSWORD": self.password,
        }


# --------------------------------------------------------------------------- paths


def default_home() -> Path:
    """``$PROUTER_NEO4J_HOME`` if set, else ``.neo4j`` in the working directory."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser().resolve() if env else Path.cwd() / ".neo4j"


def _home(home: Path | str | None) -> Path:
    return Path(home).expanduser().resolve() if home is not None else default_home()


def _log(msg: str) -> None:
    print(f"[neo4j_local] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str] | None:
    """The arguments of ``pid`` from /proc (None where /proc is unavailable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


_CHILDREN: set[int] = set()  # servers launched by this process (safe to waitpid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (reaping it first if this process launched it)."""
    if pid in _CHILDREN:
        with contextlib.suppress(ChildProcessError, OSError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                _CHILDREN.discard(pid)
                return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    return True


def _is_our_server(pid: int, home: Path) -> bool:
    """Whether ``pid`` is a live Neo4j server for ``home`` (best effort without /proc)."""
    if pid <= 0:
        return False
    args = _cmdline(pid)
    if args is not None and (ENTRY_POINT not in args or f"--home-dir={home}" not in args):
        return False
    return _alive(pid)  # without /proc (macOS) the recorded pid is trusted


def _server_pids(home: Path) -> list[int]:
    """All live server processes started for ``home`` (Linux /proc scan)."""
    pids = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if entry.name.isdigit() and _is_our_server(int(entry.name), home):
            pids.append(int(entry.name))
    return pids


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid`` (falls back to the pid)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError, AttributeError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM the process groups, wait up to ``timeout``, then SIGKILL the rest."""
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """Serialize start/stop on one home across processes (e.g. pytest-xdist workers)."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(home / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- jars


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise Neo4jStartError("java not found: install a JDK 17 or 21 (or set JAVA_HOME)")
    return java


def _classpath(lib: Path) -> str:
    return str(lib / "*")


def _fetch_jars(home: Path) -> Path:
    """Make sure ``<home>/lib`` holds the jars of ``neo4j_local/pom.xml``; run mvn if not."""
    lib = home / "lib"
    stamp = lib / ".pom-sha256"
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()
    has_jars = lib.is_dir() and any(lib.glob("*.jar"))
    if has_jars and (not stamp.exists() or stamp.read_text().strip() == pom_hash):
        return lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jStartError(f"{lib} is empty and mvn is not on PATH to fetch the Neo4j jars")
    partial = home / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    _log(f"fetching Neo4j server jars from Maven Central into {lib} (first time: ~1-2 min)")
    base = [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies"]
    base.append(f"-DoutputDirectory={partial}")
    t0 = time.monotonic()
    # Offline first: with a populated ~/.m2 this needs no network at all.
    res = subprocess.run([*base, "-o"], capture_output=True, text=True, cwd=home)
    if res.returncode != 0:
        res = subprocess.run(base, capture_output=True, text=True, cwd=home)
    if res.returncode != 0 or not any(partial.glob("*.jar")):
        shutil.rmtree(partial, ignore_errors=True)
        out = (res.stdout + res.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise Neo4jStartError("mvn could not fetch the Neo4j jars:\n" + "\n".join(out))
    (partial / ".pom-sha256").write_text(pom_hash + "\n")
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
    _log(f"fetched {sum(1 for _ in lib.glob('*.jar'))} jars in {time.monotonic() - t0:.0f}s")
    return lib


# --------------------------------------------------------------------------- config


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _write_conf(home: Path, port: int) -> Path:
    conf_dir = home / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "logs", "run", "plugins", "import"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by prouter/neo4j_local.py on every start; edits are overwritten.",
        f"server.directories.data={home / 'data'}",
        f"server.directories.logs={home / 'logs'}",
        f"server.directories.run={home / 'run'}",
        f"server.directories.plugins={home / 'plugins'}",
        f"server.directories.import={home / 'import'}",
        f"server.default_listen_address={HOST}",
        f"server.default_advertised_address={HOST}",
        f"server.bolt.listen_address={HOST}:{port}",
        f"server.bolt.advertised_address={HOST}:{port}",
        "server.bolt.enabled=true",
        "server.http.enabled=false",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        f"server.memory.heap.initial_size={HEAP_INITIAL}",
        f"server.memory.heap.max_size={HEAP_MAX}",
        f"server.memory.pagecache.size={PAGECACHE}",
        "dbms.usage_report.enabled=false",
        "db.logs.query.enabled=OFF",
        "db.tx_log.rotation.size=16M",
        "db.tx_log.preallocate=false",
        "db.tx_log.rotation.retention_policy=100M size",
        # Bolt otherwise idles ~10 s on shutdown after the databases have stopped.
        "internal.server.bolt.thread_pool_shutdown_wait_time=1s",
        "internal.server.bolt.connection_shutdown_wait_time=1s",
        "internal.dbms.bolt.netty_server_shutdown_quiet_period=0",
        "internal.dbms.bolt.netty_server_shutdown_timeout=2s",
        "",
    ]
    path = conf_dir / "neo4j.conf"
    path.write_text("\n".join(lines))
    return conf_dir


def _set_initial_password(home: Path, conf_dir: Path, password: str) -> None:
    """Set the neo4j user's password before the system database first exists.

    Once ``data/databases/system`` exists the password lives in that database and
    can no longer be set this way; the password used is recorded in
    ``data/prouter-auth.json`` so a mismatch is reported instead of failing auth.
    """
    record = home / "data" / "prouter-auth.json"
    if (home / "data" / "databases" / "system").exists():
        if record.exists():
            used = json.loads(record.read_text()).get("password")
            if used != password:
                raise Neo4jStartError(
                    f"the database in {home / 'data'} was initialised with another password "
                    f"({used!r}); pass that one or delete {home / 'data'} for a fresh server"
                )
        return
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf_dir)}
    cmd = [_java(), "-Xmx256m", "-cp", _classpath(home / "lib"), ADMIN_TOOL]
    cmd += ["dbms", "set-initial-password", password]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=home)
    if res.returncode != 0 or not (home / "data" / "dbms" / "auth.ini").exists():
        raise Neo4jStartError(
            "neo4j-admin dbms set-initial-password failed:\n" + (res.stdout + res.stderr).strip()
        )
    record.write_text(json.dumps({"username": USERNAME, "password": password}) + "\n")


# --------------------------------------------------------------------------- readiness


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path})"
    return "\n".join(lines[-n:]) if lines else f"({path} is empty)"


def _bolt_handshake(port: int, timeout: float = 2.0) -> bool:
    """Whether a Bolt server on ``port`` agrees on a protocol version."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            # magic, then proposals 5.0-5.8 (range), 4.4, 4.3, 3.0
            s.sendall(
                bytes.fromhex("6060b017")
                + bytes([0, 8, 8, 5])
                + bytes([0, 0, 4, 4])
                + bytes([0, 0, 3, 4])
                + bytes([0, 0, 0, 3])
            )
            reply = b""
            while len(reply) < 4:
                chunk = s.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            return reply != b"\0\0\0\0"
    except OSError:
        return False


def _driver_module() -> ModuleType | None:
    """The ``neo4j`` Python driver if it is installed."""
    try:
        import neo4j
    except ImportError:
        return None
    return neo4j


def _query_ok(uri: str, password: str) -> bool:
    """``RETURN 1`` through the Python driver if installed; True when it is not.

    Raises Neo4jStartError on an authentication failure.
    """
    neo4j = _driver_module()
    if neo4j is None:
        return True
    try:
        with neo4j.GraphDatabase.driver(
            uri, auth=(USERNAME, password), connection_timeout=5
        ) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
            return records[0]["one"] == 1
    except neo4j.exceptions.AuthError as exc:
        raise Neo4jStartError(f"server at {uri} rejected the password: {exc}") from exc
    except Exception:
        return False


def _answering(info: ServerInfo) -> bool:
    return _is_our_server(info.pid, info.home) and _bolt_handshake(info.port)


# --------------------------------------------------------------------------- public API


def _read_info(home: Path) -> ServerInfo | None:
    try:
        data = json.loads((home / "server.json").read_text())
        return ServerInfo(
            uri=data["uri"],
            username=data["username"],
            password=data["password"],
            pid=int(data["pid"]),
            home=Path(data["home"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(home: Path | None = None) -> ServerInfo | None:
    """The server recorded in ``<home>/server.json`` if it runs and speaks Bolt, else None."""
    info = _read_info(_home(home))
    return info if info is not None and _answering(info) else None


def start(
    home: Path | None = None,
    port: int | None = None,
    password: str = DEFAULT_PASSWORD,
    timeout: float = 120,
) -> ServerInfo:
    """Start (or reuse) the local Neo4j server and return how to connect to it.

    Fetches the jars with mvn when ``<home>/lib`` is empty, writes ``conf/neo4j.conf``
    (Bolt on 127.0.0.1:``port`` or a free port, HTTP off, auth on), sets the initial
    password on a fresh database, launches the server detached and waits until it
    answers. A server already running for ``home`` is returned as is (an explicit
    ``port`` or ``password`` that differs from it raises). On failure anything
    started is killed and Neo4jStartError carries the tail of ``logs/console.log``.
    ``timeout`` bounds the wait for readiness, not the one-off jar download.
    """
    home = _home(home)
    with _locked(home):
        running = status(home)
        if running is not None:
            if port is not None and port != running.port:
                raise Neo4jStartError(f"a server already runs on port {running.port}, not {port}")
            if password != running.password:
                raise Neo4jStartError("a server already runs with a different password")
            return running
        (home / "server.json").unlink(missing_ok=True)
        leftovers = _server_pids(home)
        if leftovers:  # e.g. a start that died half-way: never run two on one store
            _terminate(leftovers, timeout=30)
        lib = _fetch_jars(home)
        attempts = 1 if port is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                return _launch(home, lib, port or _free_port(), password, timeout)
            except _PortTaken:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")


def _launch(home: Path, lib: Path, port: int, password: str, timeout: float) -> ServerInfo:
    conf_dir = _write_conf(home, port)
    _set_initial_password(home, conf_dir, password)
    console = home / "logs" / "console.log"
    cmd = [_java(), *JVM_FLAGS, "-cp", _classpath(lib), ENTRY_POINT]
    cmd += [f"--home-dir={home}", f"--config-dir={conf_dir}", "--console-mode"]
    _log(f"starting Neo4j on bolt://{HOST}:{port} (home {home})")
    t0 = time.monotonic()
    with open(console, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf_dir)},
        )
    _CHILDREN.add(proc.pid)
    info = ServerInfo(f"bolt://{HOST}:{port}", USERNAME, password, proc.pid, home)
    try:
        _wait_ready(proc, info, console, timeout)
    except BaseException:
        _terminate([proc.pid], timeout=10)
        with contextlib.suppress(ChildProcessError):
            proc.wait(timeout=5)
        raise
    data = {**asdict(info), "home": str(home), "started_at": time.time()}
    (home / "server.json").write_text(json.dumps(data, indent=2) + "\n")
    _log(f"Neo4j ready in {time.monotonic() - t0:.1f}s (pid {proc.pid})")
    return info


def _wait_ready(
    proc: subprocess.Popen[bytes], info: ServerInfo, console: Path, timeout: float
) -> None:
    """Return once the server logged ``Started.``, speaks Bolt and answers ``RETURN 1``."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            tail = _tail(console)
            kind = _PortTaken if "already in use" in tail.lower() else Neo4jStartError
            raise kind(f"Neo4j exited with code {code} during startup; {console}:\n{tail}")
        if (
            "Started." in console.read_text(errors="replace")
            and _bolt_handshake(info.port)
            and _query_ok(info.uri, info.password)
        ):
            return
        if time.monotonic() > deadline:
            raise Neo4jStartError(
                f"Neo4j not ready after {timeout:.0f}s; {console}:\n{_tail(console)}"
            )
        time.sleep(0.5)


def stop(home: Path | None = None, timeout: float = 30) -> bool:
    """Stop the server for ``home`` (SIGTERM, then SIGKILL) and remove server.json.

    Also stops stray servers for the same home found in /proc. Returns whether
    anything was running.
    """
    home = _home(home)
    with _locked(home):
        pids = set(_server_pids(home))
        info = _read_info(home)
        if info is not None and _is_our_server(info.pid, home):
            pids.add(info.pid)
        if pids:
            _terminate(sorted(pids), timeout)
        (home / "server.json").unlink(missing_ok=True)
        still = [p for p in pids if _alive(p)]
        if still:
            raise RuntimeError(f"Neo4j processes {still} survived SIGKILL")
        return bool(pids)


def env_lines(info: ServerInfo) -> str:
    """Shell-quoted ``NEO4J_URI=...`` lines for ``eval``."""
    return "\n".join(f"{key}={shlex.quote(value)}" for key, value in info.env().items())


def import_full(
    import_args: list[str],
    home: Path | None = None,
    *,
    password: str = DEFAULT_PASSWORD,
    database: str = "neo4j",
    array_delimiter: str = ";",
    timeout: float = 3600,
) -> ServerInfo:
    """Replace ``database`` with the CSV files named by ``import_args`` (``--nodes=...``,
    ``--relationships=...``) through ``neo4j-admin database import full`` of this
    distribution: stop the local server, import, start it again (same port and
    password when one ran). The caller checks that the database was empty."""
    home = _home(home)
    running = status(home)
    port = running.port if running else None
    password = running.password if running else password
    stop(home)
    with _locked(home):
        lib = _fetch_jars(home)
        conf_dir = _write_conf(home, port or _free_port())
        _set_initial_password(home, conf_dir, password)
        env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(conf_dir)}
        cmd = [_java(), "-Xmx1g", "-cp", _classpath(lib), ADMIN_TOOL, "database", "import"]
        cmd += ["full", database, "--overwrite-destination=true"]
        # Query texts may hold newlines, quotes and commas (standard CSV quoting).
        cmd += [f"--array-delimiter={array_delimiter}", "--multiline-fields=true", *import_args]
        _log(f"neo4j-admin database import full {database} ({len(import_args)} files)")
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, env=env, cwd=home, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise Neo4jStartError(f"neo4j-admin import ran past {timeout:.0f}s") from exc
        (home / "logs").mkdir(parents=True, exist_ok=True)
        (home / "logs" / "import.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            tail = (res.stdout + res.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
            raise Neo4jStartError("neo4j-admin database import failed:\n" + "\n".join(tail))
    return start(home, port=port, password=password)
