"""Start the real guestlist binary for the compat tests.

Every test gets a running server (`server` fixture), once per storage engine:
SQLite always, PostgreSQL when GUESTLIST_TEST_DATABASE_URL is set (a fresh
database is created for each server and dropped afterwards).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = float(os.environ.get("GUESTLIST_START_TIMEOUT", "60"))
STOP_TIMEOUT_S = 20.0
SERVER_ENV = {"GUESTLIST_DATA_DIR", "GUESTLIST_LISTEN", "GUESTLIST_DATABASE_URL", "GUESTLIST_IN_MEMORY", "GUESTLIST_PLAIN_HTTP", "GUESTLIST_TLS_CERT", "GUESTLIST_TLS_KEY", "GUESTLIST_PUBLIC_URL", "GUESTLIST_CONNECTION", "GUESTLIST_CLIENT_SECRET"}


def guestlist_bin() -> str:
    return os.environ.get("GUESTLIST_BIN") or str(REPO_ROOT / "target" / "debug" / "guestlist")


@dataclass
class Server:
    """A running guestlist server and what its connection.json says."""

    engine: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    conn: dict
    database_url: str | None = None
    extra_apps: list = field(default_factory=list)

    @property
    def graph_url(self) -> str:
        return self.conn["graphUrl"].rstrip("/")

    @property
    def authority_url(self) -> str:
        return self.conn["authorityUrl"].rstrip("/")

    @property
    def tenant_id(self) -> str:
        return self.conn["tenantId"]

    @property
    def tenant_domain(self) -> str:
        return self.conn["tenantDomain"]

    @property
    def client_id(self) -> str:
        return self.conn["clientId"]

    @property
    def client_secret(self) -> str:
        return self.conn["clientSecret"]

    @property
    def ca(self) -> str:
        return self.conn["caCertificate"]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def add_app(self, name: str, *permissions: str) -> dict:
        """`guestlist app add ... --json` against this server's storage."""
        cmd = [guestlist_bin(), "app", "add", "--data-dir", str(self.data_dir), "--name", name]
        for p in permissions:
            cmd += ["--permission", p]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd.append("--json")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
        app = json.loads(out.stdout)
        assert set(app) >= {"clientId", "clientSecret", "tenantId"}, app
        return app


def _wait_for_connection_file(path: Path, proc: subprocess.Popen, log_path: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"guestlist exited with {proc.returncode} before writing {path}:\n"
                + log_path.read_text(errors="replace")[-8000:]
            )
        if path.exists():
            try:
                conn = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                pass  # caught mid-write; try again
            else:
                if conn.get("graphUrl"):
                    return conn
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(
        f"guestlist wrote no {path} within {START_TIMEOUT_S}s:\n" + log_path.read_text(errors="replace")[-8000:]
    )


def start_server(engine: str, database_url: str | None = None, extra_args: tuple = ()) -> Server:
    binary = guestlist_bin()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"guestlist binary not found at {binary}: run `cargo build -p guestlist` or set GUESTLIST_BIN")
    data_dir = Path(tempfile.mkdtemp(prefix=f"guestlist-compat-{engine}-"))
    conn_file = data_dir / "connection.json"
    conn_file.unlink(missing_ok=True)
    log_path = data_dir.parent / (data_dir.name + ".log")
    cmd = [binary, "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *extra_args]
    if database_url:
        cmd += ["--database-url", database_url]
    # The server's own settings come from our flags only, not from the caller's environment.
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV}
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(data_dir.parent))
    log.close()
    conn = _wait_for_connection_file(conn_file, proc, log_path)
    return Server(engine, data_dir, proc, log_path, conn, database_url)


def stop_server(server: Server) -> int:
    """SIGTERM, wait; returns the exit code (killed servers give a negative one)."""
    proc = server.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9
    return proc.returncode


# ---------------------------------------------------------------- PostgreSQL


def _psql(admin_url: str, sql: str) -> None:
    psql = shutil.which("psql")
    if not psql:
        pytest.fail("GUESTLIST_TEST_DATABASE_URL is set but psql is not on PATH")
    out = subprocess.run(
        [psql, admin_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed: {out.stderr}")


def _with_database(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def create_database(admin_url: str) -> tuple[str, str]:
    name = "guestlist_compat_" + secrets.token_hex(6)
    _psql(admin_url, f'CREATE DATABASE "{name}"')
    return name, _with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    try:
        _psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except RuntimeError:
        pass


# ---------------------------------------------------------------- fixtures

ENGINES = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=ENGINES)
def engine(request) -> str:
    if request.param == "postgres" and not os.environ.get("GUESTLIST_TEST_DATABASE_URL"):
        pytest.skip("GUESTLIST_TEST_DATABASE_URL not set")
    return request.param


def _server_for(engine: str):
    admin_url = os.environ.get("GUESTLIST_TEST_DATABASE_URL")
    dbname = db_url = None
    if engine == "postgres":
        dbname, db_url = create_database(admin_url)
    server = start_server(engine, db_url)
    try:
        yield server
    finally:
        rc = stop_server(server)
        if engine == "postgres":
            drop_database(admin_url, dbname)
        if rc == 0:
            shutil.rmtree(server.data_dir, ignore_errors=True)
            server.log_path.unlink(missing_ok=True)
        else:
            print(f"\nguestlist ({engine}) exited with {rc}; data dir kept: {server.data_dir}\n{server.log()}")


@pytest.fixture(scope="session")
def server(engine):
    """One running server per engine, shared by the tests of that engine."""
    yield from _server_for(engine)


@pytest.fixture(scope="session")
def invite_only_app(server) -> dict:
    """An app holding User.Invite.All only (enough to invite, not to reset)."""
    return server.add_app("compat-invite-only", "User.Invite.All")


@pytest.fixture
def fresh_server(engine):
    """A server of its own, for tests that stop it."""
    yield from _server_for(engine)


def pytest_runtest_makereport(item, call):
    # Attach the server log to failures; the server's side of a failure is usually the useful half.
    if call.when == "call" and call.excinfo is not None:
        srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        if isinstance(srv, Server):
            item.add_report_section("call", "guestlist log (tail)", srv.log()[-4000:])
