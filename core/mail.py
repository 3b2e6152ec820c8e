"""Outgoing email: a small interface with an SMTP backend (stdlib only).

The dashboard's invites go through ``Mailer.send``. With no SMTP URL the
deployment has no mail (development): the dashboard shows the invite link
to copy instead. ``TONEHUB_SMTP_URL`` is ``smtp://user:password@host:587``
(STARTTLS when the server offers it) or ``smtps://...:465`` (TLS from the
start); ``TONEHUB_MAIL_FROM`` is the sender.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from core.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

SMTP_TIMEOUT = 10.0
"""Seconds for the whole SMTP conversation's each step."""


class Mailer(Protocol):
    """Sends one plain-text email."""

    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """An SMTP server, from a URL.

    Args:
        url: ``smtp://[user:password@]host[:port]`` or ``smtps://...``.
        sender: The From address.
        context: TLS settings (tests trust their own CA).
    """

    url: str
    sender: str
    context: ssl.SSLContext | None = None

    def send(self, to: str, subject: str, body: str) -> None:
        """Send it, or raise ``ServiceUnavailable`` (never logs the body)."""
        parts = urlsplit(self.url)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        context = self.context or ssl.create_default_context()
        try:
            if parts.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    parts.hostname or "",
                    parts.port or 465,
                    timeout=SMTP_TIMEOUT,
                    context=context,
                )
            else:
                client = smtplib.SMTP(
                    parts.hostname or "", parts.port or 587, timeout=SMTP_TIMEOUT
                )
            with client:
                client.ehlo()
                if parts.scheme == "smtp" and client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                if parts.username:
                    client.login(unquote(parts.username), unquote(parts.password or ""))
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("Mail to a recipient failed: %s", type(exc).__name__)
            raise ServiceUnavailable(
                "The email could not be sent right now; try again shortly."
            ) from exc


def build_mailer(smtp_url: str, sender: str) -> Mailer | None:
    """The deployment's mailer, or ``None`` when no SMTP server is set."""
    if not smtp_url:
        return None
    if urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
        raise ValueError("TONEHUB_SMTP_URL must start with smtp:// or smtps://")
    return SmtpMailer(smtp_url, sender)
