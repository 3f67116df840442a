"""Secrets out of text: URL passwords masked, configured secret values replaced. Pure; used by the
settings, the errors, the logs and every face before a message leaves the process."""

from __future__ import annotations

import re

# In running text a password ends at the last '@' of its whitespace-free run (a raw '@' in it
# must not leave its tail visible); passwords with spaces are caught by their values (scrub).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>\S*)(?P<at>@)")
_WHOLE_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>[^\n]*)")


def mask_url(url: str) -> str:
    """Return ``url`` (or a text with URLs in it) with every password replaced by ``***``.

    A text that is one URL is split at its last '@', so a password with a raw '@', a space, a
    '/' or URL escapes is masked whole.
    """
    whole = _WHOLE_URL.fullmatch(url.strip())
    if whole:
        rest = whole["rest"]
        at = rest.rfind("@")
        if at != -1 and ":" in rest[:at]:
            user = rest[:at].split(":", 1)[0]
            return f"{whole['scheme']}://{user}:***@{rest[at + 1:]}"
        if at == -1:
            return url
    return _URL_PASSWORD.sub(r"\g<head>***\g<at>", url)


def password_forms(password: str) -> list[str]:
    """A password as it may show up in a message: raw, URL-decoded, and the pieces a parser that
    split it at '@' or ':' would print (a wrong host "ss@db" from "p@ss@db")."""
    from urllib.parse import unquote

    forms = {password, unquote(password)}
    for form in list(forms):
        for sep in ("@", ":", "/"):
            forms.update(piece for piece in form.split(sep)[1:] if len(piece) >= 4)
    return [f for f in forms if f]


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Remove URL passwords and the given secret values from a message."""
    text = mask_url(text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text
