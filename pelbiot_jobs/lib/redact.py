"""Secrets out of text: URL passwords masked, configured secret values replaced. Pure; used by the
settings, the errors, the logs and every face before a message leaves the process."""

from __future__ import annotations

import re

# In running text a password ends at the last '@' of its whitespace-free run (a raw '@' in it
# must not leave its tail visible); passwords with spaces are caught by their values (scrub).
# The work is linear in the text whatever it holds: the scheme and user are bounded repeats, and the
# end of a run and its last '@' are found once per run, not once per URL head in it (an unbounded
# scheme pattern rescanned a run of letters from each of its positions: 100 KB of letters, 20 s).
_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.-]{0,31}"
_URL_HEAD = re.compile(_SCHEME + r"://[^:/@\s]{0,256}:")
_SPACE = re.compile(r"\s")
_WHOLE_URL = re.compile(r"(?P<scheme>" + _SCHEME + r")://(?P<rest>[^\n]*)")


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
    return _mask_running(url)


def _mask_running(text: str) -> str:
    out, pos = [], 0
    run_end, last_at = -1, -1
    for head in _URL_HEAD.finditer(text):
        end = head.end()
        if head.start() < pos:
            continue  # inside a password already masked
        if end > run_end:  # a new whitespace-free run: its end and its last '@', once
            space = _SPACE.search(text, end)
            run_end = space.start() if space else len(text)
            last_at = text.rfind("@", end, run_end)
        if last_at < end:
            continue
        out += (text[pos:end], "***@")
        pos = last_at + 1
    out.append(text[pos:])
    return "".join(out)


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
