"""A real SMTP server on loopback for the tests (aiosmtpd, from PyPI).

Every accepted message is written as one .eml file to --dir, so a test
reads exactly what arrived. Faults on demand:
  --data-replies 421,451  answer the first DATA commands with these codes
                          (in order), then accept
  --reject REGEX          answer RCPT TO for matching addresses with 550
  --auth USER:PASSWORD    require AUTH (PLAIN or LOGIN) with these
The chosen port is printed as "PORT <n>"; the server stops when its stdin
closes (the test process went away) or on SIGTERM.
"""

import argparse
import os
import re
import socket
import sys
import threading

from aiosmtpd.controller import Controller

TEXT = {
    421: "421 4.3.2 Service shutting down, try again later",
    450: "450 4.2.1 Mailbox busy, try again later",
    451: "451 4.3.0 Local error, try again later",
    452: "452 4.3.1 Insufficient storage, try again later",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Rejected",
}


class Sink:
    def __init__(self, folder, data_replies, reject):
        self.folder = folder
        self.data_replies = list(data_replies)
        self.reject = re.compile(reject) if reject else None
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            return TEXT[550]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.data_replies:
                return TEXT.get(self.data_replies.pop(0), "451 4.3.0 try again later")
            self.count += 1
            n = self.count
        tmp = os.path.join(self.folder, f".{n:07d}.tmp")
        with open(tmp, "wb") as f:
            rcpt = ",".join(envelope.rcpt_tos)
            f.write(f"X-Sink-Rcpt: {rcpt}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        os.replace(tmp, os.path.join(self.folder, f"{n:07d}.eml"))
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data-replies", default="")
    p.add_argument("--reject", default="")
    p.add_argument("--auth", default="")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    port = a.port
    if port == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    replies = [int(x) for x in a.data_replies.split(",") if x.strip()]
    auth = {}
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            from aiosmtpd.smtp import AuthResult, LoginPassword

            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == user
                and data.password.decode() == password
            )
            return AuthResult(success=ok)

        auth = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    ctl = Controller(
        Sink(a.dir, replies, a.reject),
        hostname="127.0.0.1",
        port=port,
        data_size_limit=50 * 1024 * 1024,
        **auth,
    )
    ctl.start()
    print(f"PORT {port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    ctl.stop()


if __name__ == "__main__":
    main()
