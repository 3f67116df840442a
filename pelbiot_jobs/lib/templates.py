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
        _env.filters["seconds"] = lambda v: "" if _missing(v) else human_seconds(v)
        _env.filters["count"] = lambda v: "" if _missing(v) else human_count(v)
    return _env


def human_seconds(s: float) -> str:
    """A duration as a person reads it: 420 µs, 12.3 ms, 4.56 s, 3 min 05 s, 2 h 14 min."""
    s = float(s)
    if s < 0.001:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def human_count(n: float) -> str:
    """A count with thousands separators; a fraction keeps two significant digits past the point."""
    n = float(n)
    if n.is_integer():
        return f"{int(n):,}"
    return f"{n:,.2f}" if abs(n) >= 10 else f"{n:.3g}"


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)
