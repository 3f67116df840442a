"""The operator's web view: a Tornado application (Tornado already serves Flower), pages rendered
from Jinja2 templates, data from the services, no JavaScript.

Security as Flower's, and more: every request authenticated (HTTP Basic, compared in constant
time) unless started unauthenticated on 127.0.0.1 only; every POST carries a form token bound to
the authenticated user and this process (an HMAC under a secret made at start, no cookie a page on
another port of the host could plant), and a POST whose ``Origin`` is another origin or whose
``Sec-Fetch-Site`` is not same-origin is refused with 403; every query and form value is bounded
in length before anything reads it; pages may not be framed; the content security policy allows
no script at all. Operators' actions are recorded under the user who authenticated.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hmac
import logging
from functools import partial

import tornado.web
from markupsafe import Markup

from ..lib.clock import utcnow
from ..lib.errors import InputError, NotFound, ScheduleError
from ..lib.templates import environment

log = logging.getLogger(__name__)

#: Windows the metrics page offers.
WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
#: The longest query-string value and form value accepted (a longer one is a 400 naming it).
MAX_QUERY_VALUE, MAX_FORM_VALUE = 200, 2000
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"


class Page(tornado.web.RequestHandler):
    """Authentication, security headers, the services called off the event loop, and rendering."""

    settings_: object = None

    def initialize(self, settings, credentials):
        self.settings_ = settings
        self.credentials = credentials  # (user, password) or None: unauthenticated (127.0.0.1 only)
        self.user = "local"

    def set_default_headers(self):
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-Content-Type-Options", "nosniff")
        # same-origin: no referrer leaves for another site, and the page's own forms carry its Origin
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def prepare(self):
        self._check_sizes()
        if self.credentials is None:
            return
        header = self.request.headers.get("Authorization", "")
        user = password = ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        expected_user, expected_password = self.credentials
        ok = hmac.compare_digest(user.encode(), expected_user.encode()) & \
            hmac.compare_digest(password.encode(), expected_password.encode())
        if not ok:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Basic realm="pelbiot-jobs", charset="UTF-8"')
            self.finish("authentication required\n")
            return
        self.user = user

    def _check_sizes(self):
        """Every value bounded before anything reads it (a 60 KB sort once held the event loop)."""
        from ..lib.textsafe import plain

        for values, limit, kind in ((self.request.query_arguments, MAX_QUERY_VALUE, "query"),
                                    (self.request.body_arguments, MAX_FORM_VALUE, "form")):
            for name, items in values.items():
                if len(name) > 40 or any(len(item) > limit for item in items):
                    raise tornado.web.HTTPError(400, f"{kind} parameter {plain(name[:40])} is longer than "
                                                     f"{limit if len(name) <= 40 else 40} characters")

    def _form_token(self) -> str:
        """The form token of this user in this process: an HMAC of the user (and password) under
        the secret made at start. A page elsewhere can neither read nor plant it."""
        user, password = self.credentials or ("local", "")
        key = self.application.settings["cookie_secret"].encode()
        return hmac.new(key, f"xsrf\0{user}\0{password}".encode(), "sha256").hexdigest()

    def xsrf_form_html(self) -> str:
        return f'<input type="hidden" name="_xsrf" value="{self._form_token()}"/>'

    def check_xsrf_cookie(self) -> None:
        """A POST from another origin, or without this user's form token, is refused (403)."""
        from urllib.parse import urlsplit

        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise tornado.web.HTTPError(403, f"a {site} form is refused (Sec-Fetch-Site)")
        origin = self.request.headers.get("Origin")
        # "null": a browser hides the origin (a sandboxed frame, a redirect); only a browser that
        # also says the form is same-origin (Sec-Fetch-Site, checked above) may post so.
        if origin is not None and not (origin == "null" and site == "same-origin"):
            parts = urlsplit(origin) if origin != "null" else None
            if parts is None or (parts.scheme, parts.netloc) != (self.request.protocol, self.request.host):
                raise tornado.web.HTTPError(403, "a form from another origin is refused (Origin)")
        token = self.get_body_argument("_xsrf", None) or self.request.headers.get("X-Xsrftoken") or ""
        if not hmac.compare_digest(token.encode(), self._form_token().encode()):
            raise tornado.web.HTTPError(403, "the form's token is missing or not this user's")

    async def call(self, fn, *args, **kwargs):
        """A service call, on a thread: the pages and /metrics answer while another one waits on the DB."""
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, self.settings_, *args, **kwargs))

    def page(self, template: str, **context):
        html = environment().get_template(f"web/{template}").render(
            nav=NAV, here=self.request.path, user=self.user, xsrf=Markup(self.xsrf_form_html()),
            now=utcnow(), **context)
        self.finish(html)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, (InputError, ScheduleError)):
            status_code = 404 if isinstance(exc, NotFound) else 400
            self.set_status(status_code)
            text = "\n".join(exc.problems) if isinstance(exc, ScheduleError) else str(exc)
        elif isinstance(exc, tornado.web.HTTPError):
            text = exc.log_message or self._reason
        else:
            text = "internal error (the web view's log has it)"
        from ..lib.errors import one_line

        body = environment().get_template("web/error.html.j2").render(
            nav=NAV, here=self.request.path, user=self.user, status=status_code, now=utcnow(),
            message=one_line(Exception(text), self.settings_.secrets()).removeprefix("Exception: "))
        self.finish(body)

    def log_exception(self, typ, value, tb):
        if isinstance(value, (InputError, ScheduleError)):
            return
        super().log_exception(typ, value, tb)


#: Health charts the Overview draws beside the overall one: the hosts scoring lowest now.
OVERVIEW_CHARTS = 8


class Overview(Page):
    async def get(self):
        from ..health.service import (component_units, current_health, history_points, list_incidents,
                                      score_history, trend_step)
        from ..jobs.service import overview
        from ..lib.svgchart import line_chart
        from ..reports.service import list_reports

        health = await self.call(current_health)
        # The lowest scores first; a fleet's Overview charts those few, not a hundred hosts.
        health["hosts"].sort(key=lambda s: (s["score"] is not None, s["score"] or 0.0, s["host"]))
        charted = None if len(health["hosts"]) <= OVERVIEW_CHARTS else \
            ["*"] + [s["host"] for s in health["hosts"][:OVERVIEW_CHARTS]]
        history = await self.call(score_history, 24, None, charted)
        now = utcnow()
        charts = {host: Markup(line_chart(points, now - dt.timedelta(hours=24), now, f"health {host}"))
                  for host, points in history.items()}
        jobs = (await self.call(overview, offline=True))["jobs"]
        late_after = dt.timedelta(minutes=5)
        trouble = [j for j in jobs if j["last_state"] == "FAILURE" or (
            j["next_due"] and dt.datetime.fromisoformat(j["next_due"]).replace(tzinfo=None) < now - late_after)]
        from ..tuning.service import finding_counts, findings

        open_findings = await self.call(findings, "open", None, 20)  # the worst first
        by_severity = await self.call(finding_counts)
        counts = {s: by_severity.get(s, 0) for s in ("critical", "warning", "info")}
        self.page("overview.html.j2", health=health, charts=charts, charted_of=len(health["hosts"]) if charted else None,
                  bucket_min=round(trend_step(24 * 60, history_points()) / 60), units=await self.call(component_units),
                  incidents=await self.call(list_incidents), findings=open_findings, finding_counts=counts,
                  trouble=trouble, reports=(await self.call(list_reports, 1)))


class Metrics(Page):
    async def get(self):
        from ..health.service import load_alerts
        from ..lib.svgchart import line_chart
        from ..metrics.service import hosts_seen, series

        window = self.get_argument("window", "1h")
        if window not in WINDOWS:
            raise InputError(f"window {window!r}: use one of {', '.join(WINDOWS)}")
        seconds = WINDOWS[window]
        # Machines first (no "@"), then the sources (mysql@db:3306, redis@cache:6379).
        hosts = sorted(await self.call(hosts_seen, seconds), key=lambda h: ("@" in h, h))
        host = self.get_argument("host", hosts[0] if hosts else "")
        data = await self.call(series, host, seconds) if host else {}
        try:  # the rules' definitions only: no alert state needed here
            thresholds = {r.metric: r.threshold for r in (await self.call(load_alerts))[0]}
        except ScheduleError:
            thresholds = {}
        now = utcnow()
        charts = [(metric, Markup(line_chart(points, now - dt.timedelta(seconds=seconds), now, metric,
                                             thresholds.get(metric))))
                  for metric, points in sorted(data.items())]
        self.page("metrics.html.j2", windows=WINDOWS, window=window, hosts=hosts, host=host, charts=charts)


class Incidents(Page):
    async def get(self):
        from ..health.service import list_incidents, list_silences, rule_states

        self.page("incidents.html.j2", open_=await self.call(list_incidents),
                  recent=await self.call(list_incidents, True, 30), silences=await self.call(list_silences),
                  rules=await self.call(rule_states))


class IncidentAction(Page):
    async def post(self, incident_id: str, action: str):
        from ..health.service import acknowledge, resolve

        who = f"web:{self.user}"
        if action == "ack":
            await self.call(acknowledge, int(incident_id), who, hold=self.get_argument("hold", "") == "1")
        else:
            await self.call(resolve, int(incident_id), who)
        self.redirect("/incidents", status=303)


class RuleToggle(Page):
    async def post(self):
        from ..health.service import toggle_rule

        await self.call(toggle_rule, self.get_argument("rule", ""), self.get_argument("enabled", "") == "1",
                        f"web:{self.user}", self.get_argument("reason", "").strip() or None)
        self.redirect("/incidents", status=303)


class Silences(Page):
    async def post(self):
        from ..health.service import add_silence
        from ..lib.specfile import parse_duration

        try:
            seconds = parse_duration(self.get_argument("for", ""))
        except ValueError as exc:
            raise InputError(f"for: {exc}") from None
        reason = self.get_argument("reason", "").strip()
        if not reason:
            raise InputError("say why (reason): it is kept with the silence")
        await self.call(add_silence, self.get_argument("rule", ""), self.get_argument("host", "").strip() or None,
                        seconds, f"web:{self.user}", reason[:400])
        self.redirect("/incidents", status=303)


class SilenceExpire(Page):
    async def post(self, silence_id: str):
        from ..health.service import expire_silence

        await self.call(expire_silence, int(silence_id), f"web:{self.user}")
        self.redirect("/incidents", status=303)


class Queries(Page):
    """The worst query classes of a window, or the window's query time grouped by client user,
    host, schema or a tag (``by``); ``user``, ``host``, ``schema``, ``tag`` (NAME=VALUE) narrow
    either to what those clients sent."""

    async def get(self):
        from urllib.parse import urlencode

        from ..queries.service import SORTS, attributed, check_by, parse_tag_filters, stored

        sort = self.get_argument("sort", "total")
        window = self.get_argument("window", "24h")
        if window not in WINDOWS:
            raise InputError(f"window {window!r}: use one of {', '.join(WINDOWS)}")
        by = self.get_argument("by", "") or None
        if by:
            check_by(by)
        filters = {k: self.get_argument(k, "") or None for k in ("user", "host", "schema")}
        raw_tags = self.get_arguments("tag")
        tags = parse_tag_filters(raw_tags)
        state = {"window": window, "sort": sort, "by": by, **filters, "tag": raw_tags}

        def link(**change) -> str:
            """This page's address with ``change`` made (None drops a parameter)."""
            merged = {**state, **change}
            pairs = [(k, v) for k, v in merged.items() if v and k != "tag"] + [("tag", t) for t in merged["tag"] or ()]
            return "/queries?" + urlencode(pairs)

        if by:
            rows = await self.call(attributed, by, WINDOWS[window], sort if sort != "p95" else "total", 100,
                                   tags=tags, **filters)
        else:
            rows = await self.call(stored, WINDOWS[window], sort, tags=tags, **filters)
        self.page("queries.html.j2", rows=rows, sorts=SORTS, sort=sort, windows=WINDOWS, window=window, by=by,
                  bys=("user", "host", "schema", "tag:route"), filters=filters, tags=raw_tags, link=link)


class Query(Page):
    async def get(self, query_id: str):
        from ..queries.service import digest_history

        self.page("query.html.j2", q=await self.call(digest_history, query_id))


class Indexes(Page):
    async def get(self):
        from ..indexes.service import changes, full_plan

        try:
            plan, problem = await self.call(full_plan), None
        except Exception as exc:  # an app DB that does not answer: the changes still show
            from ..lib.errors import one_line

            plan, problem = None, one_line(exc, self.settings_.secrets())
        self.page("indexes.html.j2", plan=plan, problem=problem, changes=await self.call(changes))


class Jobs(Page):
    async def get(self):
        from ..jobs.service import dead_letters_of, overview, queue_depths, recent_runs
        from ..runtime.app import EXTERNAL_EFFECTS

        data = await self.call(overview, offline=True)
        looked = 200
        failures = [r for r in await self.call(recent_runs, None, looked) if r["state"] == "FAILURE"][:20]
        queues, broker_error, dead = {}, None, None
        try:
            queues = await self.call(queue_depths)
            dead = await self.call(dead_letters_of)  # not a second overview: its job table is read above
        except Exception as exc:  # the broker is down: the page still shows what the ops DB holds
            from ..lib.errors import one_line

            queues, broker_error = None, one_line(exc, self.settings_.secrets())
        self.page("jobs.html.j2", jobs=data["jobs"], failures=failures, looked=looked, queues=queues,
                  broker_error=broker_error, dead=dead, effects=EXTERNAL_EFFECTS,
                  sent=self.get_argument("sent", None), sent_job=self.get_argument("job", ""))


def _job_named(settings, name: str):
    from ..runtime.app import load_jobs

    job = next((j for j in load_jobs(settings, deep=False) if j.name == name), None)
    if job is None:
        raise NotFound(f"no job {name!r:.80} in beat.yaml")
    return job


class Job(Page):
    async def get(self, name: str):
        from ..jobs.service import recent_runs
        from ..lib.svgchart import line_chart
        from ..runtime.app import EXTERNAL_EFFECTS

        job = await self.call(_job_named, name)
        before = self.get_argument("before", None)
        if before is not None and not before.isdigit():
            raise InputError("parameter before must be a run id")
        page_size = 50
        runs = await self.call(recent_runs, name, page_size + 1, int(before) if before else None, job.task)
        now = utcnow()
        week = [r for r in await self.call(recent_runs, name, 5000, None, job.task)
                if r["started_at"] and r["duration_s"] is not None and r["started_at"] >= now - dt.timedelta(days=7)]
        chart = Markup(line_chart(sorted((r["started_at"], r["duration_s"]) for r in week),
                                  now - dt.timedelta(days=7), now, f"{name}: run duration, 7 days", unit="s"))
        self.page("job.html.j2", job=job, runs=runs[:page_size], chart=chart, effect=EXTERNAL_EFFECTS.get(job.task),
                  next_page=runs[page_size - 1]["id"] if len(runs) > page_size else None,
                  sent=self.get_argument("sent", None))


class JobRun(Page):
    """Run now: a job with effects outside pelbiot-jobs (DDL, ANALYZE, cache writes, e-mail, deletes)
    first asks, naming the effect; the confirmation must name it back."""

    async def post(self, name: str):
        from ..jobs.service import start
        from ..runtime.app import EXTERNAL_EFFECTS

        job = await self.call(_job_named, name)
        effect = EXTERNAL_EFFECTS.get(job.task)
        if effect and self.get_argument("confirm", "") != effect:
            self.page("confirm.html.j2", job=name, effect=effect)
            return
        sent = await self.call(start, name, None, "web")
        log.info("web: %s started %s [%s]", self.user, name, sent["task_id"])
        self.redirect(f"/jobs/{name}?sent={sent['task_id']}", status=303)


class Reports(Page):
    async def get(self):
        from ..reports.service import list_reports

        self.page("reports.html.j2", reports=await self.call(list_reports))


class ReportFile(Page):
    async def get(self, report_id: str, name: str):
        from ..reports.service import report_file

        path = await self.call(report_file, int(report_id), name)
        kind = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8",
                ".txt": "text/plain; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
        self.set_header("Content-Type", kind.get(path.suffix, "application/octet-stream"))
        if path.suffix != ".html":
            self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
        else:  # the report's own HTML: inline SVG charts and styles, no script
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                                       "img-src data:; frame-ancestors 'none'")
        self.finish(path.read_bytes())


class PrometheusMetrics(Page):
    async def get(self):
        from prometheus_client import CONTENT_TYPE_LATEST

        from ..jobs.exported import figures
        from .prometheus import exposition

        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(exposition(await self.call(figures)))


NAV = [("/", "Overview"), ("/samples", "Metrics"), ("/incidents", "Incidents"), ("/queries", "Queries"),
       ("/indexes", "Indexes"), ("/jobs", "Jobs"), ("/reports", "Reports")]


def make_app(settings, credentials: tuple[str, str] | None, cookie_secret: str) -> tornado.web.Application:
    kw = {"settings": settings, "credentials": credentials}
    routes = [
        (r"/", Overview), (r"/samples", Metrics), (r"/incidents", Incidents),
        (r"/incidents/(\d{1,18})/(ack|resolve)", IncidentAction), (r"/silences", Silences),
        (r"/silences/(\d{1,18})/expire", SilenceExpire), (r"/rules/toggle", RuleToggle), (r"/queries", Queries),
        (r"/queries/([0-9A-Fa-f]{1,32})", Query), (r"/indexes", Indexes), (r"/reports", Reports),
        (r"/reports/(\d{1,18})/([A-Za-z0-9_.-]{1,200})", ReportFile), (r"/jobs", Jobs),
        (r"/jobs/([A-Za-z0-9][A-Za-z0-9_.:-]{0,99})", Job), (r"/jobs/([A-Za-z0-9][A-Za-z0-9_.:-]{0,99})/run", JobRun), (r"/metrics", PrometheusMetrics),
        (r"/healthz", Healthz), (r"/favicon.ico", Favicon),
    ]
    from .api import routes as api_routes

    return tornado.web.Application(
        api_routes(kw) + [(pattern, handler, kw) for pattern, handler in routes], default_handler_class=NoSuchPage,
        default_handler_args=kw, xsrf_cookies=True, cookie_secret=cookie_secret,
        compress_response=True,
        log_function=log_request)


#: The tab's icon: a bolt, served so that browsers do not ask for a page that is not there.
ICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
        b'fill="#1f4e79"/><path d="M9 1 3 9h4l-1 6 6-8H8z" fill="#ffd54a"/></svg>')


class Favicon(tornado.web.RequestHandler):
    def initialize(self, **_):
        pass

    def get(self):
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "max-age=86400")
        self.finish(ICON)


access_log = logging.getLogger("tornado.access")


def log_request(handler) -> None:
    """The access log: an ordinary miss (404, 401, 400) is not a warning; a refused form (403) is,
    and a server error is an error."""
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.WARNING if status == 403 else logging.INFO
    from ..lib.textsafe import plain

    access_log.log(level, "%d %s %.2fms", status, plain(handler._request_summary()[:500]),
                   1000.0 * handler.request.request_time())


class Healthz(tornado.web.RequestHandler):
    """For container health checks: answers without a login and says nothing but "ok"."""

    def initialize(self, **_):
        pass

    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.finish("ok\n")


class NoSuchPage(Page):
    def prepare(self):
        super().prepare()
        if not self._finished:
            raise tornado.web.HTTPError(404, "no such page")


def listen(settings, address: str, port: int, credentials: tuple[str, str] | None):
    """Serve the web view on address:port from this thread's event loop (the caller runs it)."""
    import secrets

    try:
        server = make_app(settings, credentials, secrets.token_hex(32)).listen(port, address=address)
    except OSError as exc:  # taken since `up` checked, or not an address of this host
        from ..lib.errors import ConfigError

        raise ConfigError(f"the web view cannot listen on {address}:{port} ({exc.strerror}): set PELBIOT_WEB_PORT "
                          "(or PELBIOT_WEB_ADDRESS)") from None
    log.info("web view on http://%s:%s (%s)", address, port,
             "authenticated" if credentials else "unauthenticated, local only")
    return server


def serve(settings, address: str, port: int, credentials: tuple[str, str] | None) -> None:
    """Listen on address:port until interrupted (SIGINT/SIGTERM end the process)."""
    async def main():
        server = listen(settings, address, port, credentials)
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()

    asyncio.run(main())
