"""A loopback SMTP server that records the mail it accepts (stdlib only).

Speaks the part of RFC 5321 a client needs: EHLO/HELO (advertising AUTH
PLAIN, and no STARTTLS), AUTH PLAIN against one user, MAIL FROM, RCPT TO,
DATA with dot-unstuffing, RSET, NOOP, QUIT; refuses MAIL before AUTH when a
user is set (530). Run it alone for demos: ``python -m tests.fakes.smtp``.
"""

from __future__ import annotations

import argparse
import base64
import email
import socketserver
import threading
from dataclasses import dataclass, field
from email.message import Message


@dataclass
class Mail:
    """One accepted message."""

    sender: str
    recipients: list[str]
    message: Message


@dataclass
class FakeSmtp:
    """The server; ``url`` is what ``TONEHUB_SMTP_URL`` takes."""

    user: str = "mailer"
    password: str = "s3cret-mail"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)

    def start(self) -> None:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake._session(self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"smtp://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def _session(self, rfile, wfile) -> None:  # noqa: C901 - a protocol loop
        def say(line: str) -> None:
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        say("220 fake-smtp ESMTP")
        authed, sender, rcpts = not self.user, "", []
        while True:
            raw = rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                say("250-fake-smtp")
                say("250-AUTH PLAIN")
                say("250 8BITMIME")
            elif verb == "HELO":
                say("250 fake-smtp")
            elif verb == "AUTH":
                parts = line.split()
                blob = parts[2] if len(parts) > 2 else ""
                try:
                    _, user, password = base64.b64decode(blob).decode().split("\0")
                except ValueError:
                    say("501 malformed AUTH")
                    continue
                if (user, password) == (self.user, self.password):
                    authed = True
                    say("235 2.7.0 Authentication successful")
                else:
                    say("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                if not authed:
                    say("530 5.7.0 Authentication required")
                    continue
                sender, rcpts = line.split(":", 1)[1].strip().strip("<>"), []
                say("250 OK")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                say("250 OK")
            elif verb == "DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                body = []
                while True:
                    chunk = rfile.readline(65536)
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    body.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                message = email.message_from_bytes(b"".join(body))
                self.mails.append(Mail(sender, rcpts, message))
                say("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                say("250 OK")
            elif verb == "QUIT":
                say("221 Bye")
                return
            else:
                say("502 Command not implemented")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()

    class Printing(FakeSmtp):
        def _session(self, rfile, wfile) -> None:
            before = len(self.mails)
            super()._session(rfile, wfile)
            for mail in self.mails[before:]:
                print(f"to {mail.recipients}: {mail.message['Subject']}", flush=True)
                print(mail.message.get_payload(), flush=True)

    fake = Printing(port=args.port)
    fake.start()
    print(f"Fake SMTP on 127.0.0.1:{fake.port}")
    print(f"  TONEHUB_SMTP_URL={fake.url}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
