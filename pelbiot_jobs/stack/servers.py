"""The servers a process of pelbiot-jobs runs for the browser, and the rule they share: never
open by accident. The web view in its own process (`pelbiot-jobs web`) or in Flower's (`up`)."""

from __future__ import annotations

from ..lib.errors import ConfigError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def required(creds, unauthenticated: bool, what: str, variables: str, option: str):
    """``creds``, or ConfigError when there are none and running open was not configured."""
    if creds is None and not unauthenticated:
        raise ConfigError(f"{variables} are not set: {what} will not start without authentication "
                          f"(set them, or use {option})")
    return creds


def refuse_open(what: str, variables: str, creds, unauthenticated: bool, address: str, unix_socket=None) -> None:
    """Without credentials, start only when asked to and only on 127.0.0.1: never open by accident."""
    if creds is not None:
        return
    if not unauthenticated:
        raise ConfigError(f"{variables} are not set: {what} will not start without authentication (set them, "
                          f"or pass --unauthenticated with --address 127.0.0.1 for a local-only {what})")
    if address not in LOCAL_HOSTS or unix_socket:
        raise ConfigError(f"{what} address {address!r} is not valid without authentication: an open {what} may only "
                          "listen on 127.0.0.1")


def web_listen(settings, address: str, port: int, unauthenticated: bool, serve_forever: bool = False) -> None:
    """The web view on address:port, refused without credentials unless local and asked for."""
    from ..web import app
    from .supervisor import web_credentials

    creds = web_credentials(settings)
    refuse_open("the web view", "PELBIOT_WEB_USER and PELBIOT_WEB_PASSWORD (or Flower's)", creds,
                unauthenticated or settings.web.unauthenticated, address)
    (app.serve if serve_forever else app.listen)(settings, address, port, creds[:2] if creds else None)
