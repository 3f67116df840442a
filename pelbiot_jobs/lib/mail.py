"""Sending e-mail: SMTP (STARTTLS and login when configured), or the outbox folder.

Without PELBIOT_SMTP_HOST, messages are written as .eml files to ./var/outbox/ (atomically:
written aside, then renamed), so nothing is lost and an operator can open them.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path

from .errors import ConfigError, TransientError
from .redact import scrub

#: Seconds to wait for the SMTP server at each step.
SMTP_TIMEOUT = 30


def build_message(settings, recipients: list[str], subject: str, text: str,
                  html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@pelbiot-jobs>"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def _to_outbox(settings, msg: EmailMessage) -> Path:
    """Write ``msg`` to var/outbox/ atomically: a new 0600 file of a random name (O_EXCL, O_NOFOLLOW:
    nothing planted there is followed or overwritten) renamed over the final name (a rename
    replaces a link planted there, never its target), in a folder only this user may write."""
    import secrets

    from .paths import private_dir

    private_dir(settings.var_dir, follow=True)
    outbox = private_dir(settings.var_dir / "outbox")
    name = f"{msg['Message-ID'].strip('<>').split('@')[0]}.eml"
    tmp = outbox / f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(msg))
        os.replace(tmp, outbox / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return outbox / name


def deliver(settings, msg: EmailMessage) -> str:
    """Send ``msg``; return "sent" or "outbox:<path>". Raise TransientError for what a retry may fix."""
    if not settings.smtp.configured:
        return f"outbox:{_to_outbox(settings, msg)}"
    smtp = settings.smtp
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT) as server:
            server.ehlo()
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            server.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise ConfigError(f"the SMTP server {smtp.host}:{smtp.port} refused the login of "
                          f"PELBIOT_SMTP_USER={smtp.user!r} ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        text = scrub(f"{type(exc).__name__}: {exc}", settings.secrets())
        raise TransientError(f"cannot send mail through {smtp.host}:{smtp.port}: {text}") from exc
    return "sent"

