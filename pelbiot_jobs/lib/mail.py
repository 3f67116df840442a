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


def deliver(settings, msg: EmailMessage) -> str:
    """Send ``msg``; return "sent" or "outbox:<path>". Raise TransientError for what a retry may fix."""
    if not settings.smtp.configured:
        outbox = settings.var_dir / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        name = f"{msg['Message-ID'].strip('<>').split('@')[0]}.eml"
        tmp = outbox / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        os.replace(tmp, outbox / name)
        return f"outbox:{outbox / name}"
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

