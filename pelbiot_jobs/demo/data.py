"""A demo PELBIOT database with realistic shapes and volumes.

Loads follow a working-day curve (low at night, a morning ramp, an afternoon peak), weekends run
at about 70 %, device sizes differ, and a small share of readings are anomalies (spikes and
drop-outs, flagged in sensor_data.is_anomaly). Generation is seeded, so two runs with the same
arguments and clock produce the same rows.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import Engine, func, insert, select

from ..db.app_models import app_metadata

#: Defaults of ``pelbiot-jobs demo-data``.
DEFAULT_DEVICES = 200
DEFAULT_DAYS = 30
#: Days of per-minute sensor readings (the big time series); 1 day x 200 devices = 288,000 rows.
DEFAULT_SENSOR_DAYS = 1
#: Share of readings that are anomalies.
ANOMALY_RATE = 0.004
#: Rows per INSERT batch.
BATCH = 10_000

DEVICE_TYPES = (("panel", 0.45), ("transformer", 0.15), ("meter", 0.30), ("generator", 0.10))
LOCATIONS = ("Gedung A", "Gedung B", "Gedung C", "Gardu Induk 1", "Gardu Induk 2", "Workshop", "Data Center")
WEATHER = ("clear", "cloudy", "rain", "storm", "haze")


def load_shape(hour: int) -> float:
    """Relative load of an hour of a working day (0.25 at night to 1.0 at the afternoon peak)."""
    morning = math.exp(-((hour - 10) ** 2) / 8)
    afternoon = math.exp(-((hour - 15) ** 2) / 6)
    evening = 0.6 * math.exp(-((hour - 19.5) ** 2) / 4)
    return 0.25 + 0.75 * max(morning * 0.85, afternoon, evening)


def weekday_factor(day: dt.date) -> float:
    return 0.7 if day.weekday() >= 5 else 1.0


@dataclass(frozen=True)
class DemoPlan:
    devices: int = DEFAULT_DEVICES
    days: int = DEFAULT_DAYS
    sensor_days: int = DEFAULT_SENSOR_DAYS
    seed: int = 42

    def row_counts(self) -> dict[str, int]:
        """Approximate rows per table, for the progress bar."""
        return {"load_profiles": self.devices * self.days * 24, "trends": self.devices * self.days,
                "sensor_data": self.devices * min(self.sensor_days, self.days) * 1440}


def _round(x: float, n: int = 2) -> float:
    return round(x, n)


def generate(plan: DemoPlan, now: dt.datetime) -> Iterator[tuple[str, list[dict]]]:
    """Yield (table name, batch of rows) in foreign-key order. Pure: no database."""
    rnd = random.Random(plan.seed)
    # The last day is today, up to the current hour: "the last 24 hours" has data.
    end_day = now.date()
    start = dt.datetime.combine(end_day - dt.timedelta(days=plan.days - 1), dt.time())

    yield "users", [
        {"id": i + 1, "username": name, "email": f"{name}@pelbiot.example", "role": role,
         # A fixed bcrypt-shaped placeholder: demo users cannot log in anywhere.
         "password": "$2b$10$" + "demo" * 13 + "de", "first_name": name.title(), "last_name": "Demo",
         "is_active": True, "created_at": start}
        for i, (name, role) in enumerate([("admin", "super_admin"), ("ops", "operator"), ("dba", "admin"),
                                          ("viewer", "user"), ("night", "operator")])
    ]

    devices, types = [], []
    weights = [w for _, w in DEVICE_TYPES]
    for i in range(1, plan.devices + 1):
        kind = rnd.choices([t for t, _ in DEVICE_TYPES], weights)[0]
        roll = rnd.random()
        status = "online" if roll < 0.9 else ("offline" if roll < 0.97 else "error")
        devices.append({"id": i, "name": f"{kind.title()} {LOCATIONS[i % len(LOCATIONS)][:1]}-{i:03d}",
                        "type": kind, "status": status, "location": LOCATIONS[i % len(LOCATIONS)],
                        "ip_address": f"10.{i // 250}.{i % 250}.{10 + i % 200}", "created_at": start})
        types.append(kind)
    yield "devices", devices

    # Base load per device in watts: transformers and generators are big, meters small.
    scale = {"panel": 8_000, "transformer": 60_000, "meter": 2_500, "generator": 30_000}
    base = [scale[t] * rnd.uniform(0.5, 1.5) for t in types]

    yield "sensors", [
        {"id": i + 1, "name": f"PWR-{i + 1:04d}", "protocol": rnd.choice(("mqtt", "modbus-tcp", "rest")),
         "device_id": i + 1, "register_address": 40001 + i, "min_value": 0, "max_value": _round(base[i] * 3),
         "unit": "W", "status": "active", "location": devices[i]["location"], "created_at": start}
        for i in range(plan.devices)
    ]
    yield "device_sensor_mapping", [
        {"device_id": i + 1, "sensor_id": i + 1, "position": "Input", "priority": 1}
        for i in range(plan.devices)]

    yield "panels", [
        {"device_id": i + 1, "panel_number": n, "voltage": _round(rnd.gauss(230, 3)),
         "ampere": _round(base[i] / 230 / 2), "power": _round(base[i] / 2), "status": "online"}
        for i, t in enumerate(types) if t == "panel" for n in (1, 2)]
    yield "transformers", [
        {"device_id": i + 1, "name": f"TR-{i + 1:03d}", "primary_voltage": 20000, "secondary_voltage": 400,
         "efficiency": _round(rnd.uniform(96, 99.2)), "temperature": _round(rnd.uniform(45, 75)), "status": "online"}
        for i, t in enumerate(types) if t == "transformer"]

    # Hourly load profiles and daily trends.
    profiles, trends = [], []
    for d in range(plan.days):
        day = (start + dt.timedelta(days=d)).date()
        wf = weekday_factor(day)
        for i in range(plan.devices):
            energy = peak_of_day = 0.0
            hours = 24 if day < end_day else now.hour + 1
            for hour in range(hours):
                load = base[i] * load_shape(hour) * wf * rnd.uniform(0.9, 1.1)
                if rnd.random() < ANOMALY_RATE:
                    load *= rnd.choice((0.05, 2.8))
                peak = load * rnd.uniform(1.08, 1.3)
                energy += load / 1000
                peak_of_day = max(peak_of_day, peak)
                profiles.append({"device_id": i + 1, "hour": hour, "load": _round(load), "peak": _round(peak),
                                 "average": _round(load * rnd.uniform(0.86, 0.96)),
                                 "created_at": dt.datetime.combine(day, dt.time(hour))})
            trends.append({"device_id": i + 1, "date": day, "power": _round(energy / hours),
                           "energy": _round(energy), "temperature": _round(rnd.gauss(31, 2.5)),
                           "load": _round(min(99.99, 100 * energy / hours / (base[i] * 1.2 / 1000))),
                           "created_at": dt.datetime.combine(day, dt.time(23, 59))})
        if len(profiles) >= BATCH:
            yield "load_profiles", profiles
            profiles = []
    if profiles:
        yield "load_profiles", profiles
    yield "trends", trends

    yield "weather", [
        {"device_id": 1 + (k * 7) % plan.devices, "temperature": _round(rnd.gauss(30, 3)),
         "humidity": _round(rnd.uniform(55, 95)), "pressure": _round(rnd.gauss(1010, 4)),
         "wind_speed": _round(rnd.uniform(0, 12)), "condition": rnd.choice(WEATHER),
         "created_at": start + dt.timedelta(hours=3 * k)}
        for k in range(plan.days * 8)]

    alerts = []
    messages = {"critical": "Overload: load above 120 % of rating", "warning": "Voltage drop below 210 V",
                "info": "Device reconnected"}
    for i in range(plan.devices):
        for _ in range(rnd.randint(0, 5)):
            severity = rnd.choices(("info", "warning", "critical"), (5, 3, 1))[0]
            at = start + dt.timedelta(minutes=rnd.randint(0, plan.days * 1440 - 1))
            recent = (now - at).days < 2
            status = rnd.choice(("open", "acknowledged")) if recent else "resolved"
            alerts.append({"device_id": i + 1, "severity": severity, "message": messages[severity],
                           "status": status, "created_at": at, "updated_at": at})
    yield "alerts", alerts

    yield "alert_rules", [
        {"device_id": i + 1, "name": f"Overload {devices[i]['name']}", "severity": "critical",
         "metric": "load", "comparison_operator": ">", "threshold_value": _round(base[i] * 1.2),
         "duration_seconds": 300, "created_by": 1}
        for i in range(0, plan.devices, 10)]
    yield "system_settings", [
        {"setting_key": k, "setting_value": v, "setting_type": t}
        for k, v, t in (("cache_ttl_seconds", "300", "number"), ("report_retention_days", "30", "number"),
                        ("timezone", "Asia/Jakarta", "string"))]
    yield "master_data", [{"type": "device_type", "name": t, "value": t} for t, _ in DEVICE_TYPES]

    # Per-minute readings of each device's power sensor, for the last sensor_days days.
    minutes = min(plan.sensor_days, plan.days) * 1440
    first = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes)
    batch = []
    for i in range(plan.devices):
        sid = i + 1
        for m in range(minutes):
            at = first + dt.timedelta(minutes=m)
            value = base[i] * load_shape(at.hour) * weekday_factor(at.date()) * rnd.uniform(0.93, 1.07)
            anomaly = rnd.random() < ANOMALY_RATE
            if anomaly:
                value *= rnd.choice((0.0, 3.2))
            batch.append({"sensor_id": sid, "value": _round(value, 3), "unit": "W",
                          "quality_score": 40 if anomaly else 95 + (m % 6), "is_anomaly": anomaly,
                          "timestamp": at})
            if len(batch) >= BATCH:
                yield "sensor_data", batch
                batch = []
    if batch:
        yield "sensor_data", batch


def create_schema(engine: Engine) -> None:
    """Create the PELBIOT tables that are missing (existing tables are left as they are)."""
    app_metadata(engine).create_all(engine, checkfirst=True)


def device_count(engine: Engine) -> int:
    """Devices in the app DB; 0 when the table does not exist yet."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table("devices"):
        return 0
    md = app_metadata(engine)
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(md.tables["devices"])).scalar_one()


def seed(engine: Engine, plan: DemoPlan, now: dt.datetime | None = None,
         progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Create the schema and fill an empty app DB; return rows written per table."""
    from ..lib.errors import InputError

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    create_schema(engine)
    existing = device_count(engine)
    if existing:
        raise InputError(f"the app database already has {existing} devices; demo-data only fills an empty one")
    md = app_metadata(engine)
    written: dict[str, int] = {}
    with engine.begin() as conn:
        for name, rows in generate(plan, now):
            if rows:
                conn.execute(insert(md.tables[name]), rows)
            written[name] = written.get(name, 0) + len(rows)
            if progress:
                progress(name, len(rows))
    return written
