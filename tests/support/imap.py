"""A real IMAP server for tests: Debian's dovecot run privately with a generated config.

    with DovecotServer(tmp_path) as imap:
        imap.add_user("support@acme.example", "secret")
        imap.append("support@acme.example", raw_bytes)
        ... intake polls 127.0.0.1:imap.port ...
        imap.flags("support@acme.example")   # {uid: flags}

Each instance has its own config, ports, passwd-file and maildirs under a tmp dir, so it
never touches a system dovecot (there may be none) and parallel runs do not collide.
Messages are delivered with IMAP APPEND, like any mail client would.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.infra import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def dovecot_available() -> bool:
    return Path(DOVECOT).exists()


class DovecotServer:
    def __init__(self, workdir: Path | None = None):
        # Dovecot's unprivileged processes must traverse to the config and maildirs, and
        # pytest's tmp dirs are private (0700): the server gets its own 0755 directory.
        self.dir = Path(tempfile.mkdtemp(prefix="desk-dovecot-", dir=workdir and None))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.users: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        me = pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            # dovecot refuses root as a mail user: mail is owned by its own unprivileged user
            mail_user = pwd.getpwnam("dovecot") if _has_user("dovecot") else pwd.getpwnam("nobody")
            self.run_user, self.login_user = "root", (
                "dovenull" if _has_user("dovenull") else mail_user.pw_name)
        else:
            mail_user = me
            self.run_user = self.login_user = me.pw_name
        self.mail_uid, self.mail_gid = mail_user.pw_uid, mail_user.pw_gid
        self.internal_user = mail_user.pw_name if os.getuid() == 0 else me.pw_name

    # -- lifecycle -------------------------------------------------------------------------

    def _write_config(self) -> Path:
        for sub in ("run", "state", "home"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chown(self.dir / "home", self.mail_uid, self.mail_gid)
        conf = self.dir / "dovecot.conf"
        conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = test-dovecot-{self.port}
log_path = {self.dir}/dovecot.log
info_log_path = {self.dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.internal_user}
default_internal_group = {pwd.getpwnam(self.internal_user).pw_gid and
                          __import__('grp').getgrgid(pwd.getpwnam(self.internal_user).pw_gid).gr_name}
default_login_user = {self.login_user}
first_valid_uid = {min(self.mail_uid, 1) if self.mail_uid else 0}
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.dir}/passwd
  default_fields = uid={self.mail_uid} gid={self.mail_gid} home={self.dir}/home/%u
}}
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
        (self.dir / "passwd").touch()
        return conf

    def start(self) -> DovecotServer:
        conf = self._write_config()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                     stdout=open(self.dir / "stdout.log", "ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log())
            try:
                imaplib.IMAP4("127.0.0.1", self.port, timeout=2).logout()
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("dovecot did not start: " + self.log())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        out = ""
        for name in ("dovecot.log", "stdout.log"):
            p = self.dir / name
            if p.exists():
                out += p.read_text(errors="replace")[-3000:]
        return out

    # -- users and mail --------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """passwd-file is re-read on change: no reload needed."""
        self.users[user] = password
        lines = [f"{u}:{p}::::::" for u, p in self.users.items()]
        (self.dir / "passwd").write_text("\n".join(lines) + "\n")

    def connect(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.connect(user)
        try:
            typ, data = conn.append(folder, None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data}")
        finally:
            conn.logout()

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        """{uid: flags} of every message in `folder`."""
        conn = self.connect(user)
        try:
            conn.select(folder)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            out: dict[int, str] = {}
            for item in data or []:
                if not item:
                    continue
                text = item.decode() if isinstance(item, bytes) else str(item)
                if "UID" in text:
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    out[uid] = text.split("FLAGS (")[1].split(")")[0]
            return out
        finally:
            conn.logout()

    def count(self, user: str, folder: str = "INBOX") -> int:
        conn = self.connect(user)
        try:
            typ, data = conn.select(folder)
            return int(data[0])
        finally:
            conn.logout()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
