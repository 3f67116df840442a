"""The one Jinja environment for every template (reports, alert e-mails), in pelbiot_jobs/templates/.

Autoescaped for HTML: text from outside (rule names, hosts, queries) never becomes markup.
"""

from __future__ import annotations

_env = None


def _missing(value) -> bool:
    """None, a float NaN, or pandas' NA/NaT (without importing pandas)."""
    return value is None or (isinstance(value, float) and value != value) or \
        type(value).__name__ in ("NAType", "NaTType")


def environment():
    global _env
    if _env is None:
        from jinja2 import Environment, PackageLoader, select_autoescape

        _env = Environment(loader=PackageLoader("pelbiot_jobs", "templates"),
                           autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
        _env.filters["num"] = lambda v, fmt="{:,.2f}": "" if _missing(v) else fmt.format(v)
    return _env


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)
