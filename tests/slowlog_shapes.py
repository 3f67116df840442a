"""Slow logs of every shape real servers write, and text that is not a slow log, made up here.

Each shape is a function of a seeded ``random.Random`` returning bytes; ``shapes()`` gives them
all by name. The parity test digests each with pt-query-digest (the oracle) and with
pelbiot-jobs, whole and cut into parts and blocks, and wants the same classes with the same
counts. Shapes come from what MySQL 5.7/8.0, MariaDB 10.x and Percona Server write (their layouts
are documented with the slow query log), and from the ways logs break: a server restart's banner
mid-file, a header with no query, a timer that wrapped, a file cut mid-event.
"""

from __future__ import annotations

import random

BANNER = (b"/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-0+deb12u1-log (Debian 12). started with:\n"
          b"Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\n"
          b"Time                Id Command  Argument\n")

TABLES = ("devices", "load_profiles", "sensor_data", "alerts", "trends", "activity_logs")


def _query(r: random.Random) -> bytes:
    t = r.choice(TABLES)
    pick = r.randrange(14)
    if pick == 0:
        return f"SELECT * FROM {t} WHERE id = {r.randint(1, 999)}".encode()
    if pick == 1:
        return f"select max(peak) from load_profiles where date(created_at) = '2026-11-{r.randint(1, 28):02d}'".encode()
    if pick == 2:
        return (f"INSERT INTO {t} (a, b) VALUES " + ", ".join(f"({r.randint(0, 9)}, 'x{r.random():.4f}')"
                                                               for _ in range(r.randint(1, 4)))).encode()
    if pick == 3:
        return f"CALL refresh_trends({r.randint(1, 40)}, '2026-11-28')".encode()
    if pick == 4:  # multi-line, indented, a comment
        return (f"SELECT d.name,\n       AVG(l.`load`)\n  FROM devices d\n  JOIN load_profiles l ON l.device_id = d.id\n"
                f" WHERE d.id IN ({', '.join(str(r.randint(1, 40)) for _ in range(r.randint(1, 6)))}) -- hot\n"
                f" GROUP BY d.name ORDER BY d.name ASC").encode()
    if pick == 5:  # binary-ish literal bytes
        blob = bytes(r.randrange(1, 256) for _ in range(r.randint(4, 40))).replace(b"'", b"").replace(b"\\", b"")
        blob = blob.replace(b";\n#", b"").replace(b"\n", b" ")
        return b"UPDATE devices SET firmware = '" + blob + b"' WHERE id = " + str(r.randint(1, 40)).encode()
    if pick == 6:
        return f"UPDATE devices SET status = '{r.choice(['online', 'offline'])}' WHERE id = {r.randint(1, 40)}".encode()
    if pick == 7:  # a long query
        return ("SELECT id FROM sensor_data WHERE sensor_id IN ("
                + ", ".join(str(r.randint(1, 10 ** 6)) for _ in range(r.randint(200, 3000))) + ")").encode()
    if pick == 8:
        return f"select * from {t} where name = \"dq {r.randint(1, 9)}\" and flag = true limit {r.randint(1, 50)}".encode()
    if pick == 9:
        return f"SELECT 1 UNION SELECT {r.randint(2, 9)} UNION ALL SELECT {r.randint(2, 9)}".encode()
    if pick == 10:
        return f"DELETE FROM activity_logs WHERE created_at < NOW() - INTERVAL {r.randint(1, 90)} DAY".encode()
    if pick == 11:  # a multi-statement packet, as the server logs it
        return f"SELECT {r.randint(1, 9)}; SELECT * FROM devices WHERE id = {r.randint(1, 9)}".encode()
    if pick == 12:
        return f"/* api:{r.choice(['devices', 'alerts'])} */ SELECT COUNT(*) FROM {t}".encode()
    return f"SELECT * FROM {t} ORDER BY created_at DESC, id ASC LIMIT {r.randint(0, 9)}, {r.randint(10, 99)}".encode()


def _ts(r: random.Random, i: int) -> int:
    return 1795000000 + i * r.randint(0, 3)


def mariadb_event(r: random.Random, i: int, query: bytes | None = None, db: bool = False) -> bytes:
    ts = _ts(r, i)
    head = (f"# Time: 261128 {i // 3600 % 24:2d}:{i // 60 % 60:02d}:{i % 60:02d}\n" if r.random() < 0.3 else "")
    head += (f"# User@Host: app[app] @ localhost [127.0.0.1]\n# Thread_id: {r.randint(1, 99)}  Schema: pelbiot  "
             f"QC_hit: No\n# Query_time: {r.random() * 3:.6f}  Lock_time: {r.random() / 100:.6f}  Rows_sent: "
             f"{r.randint(0, 99)}  Rows_examined: {r.randint(0, 99999)}\n# Rows_affected: 0  Bytes_sent: "
             f"{r.randint(0, 9999)}\n")
    if r.random() < 0.4:
        head += ("# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No\n"
                 "# Filesort: No  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No\n")
    if r.random() < 0.2:
        head += "#\n# explain: id\tselect_type\ttable\ttype\n# explain: 1\tSIMPLE\tdevices\tALL\n#\n"
    if db:
        head += "use pelbiot;\n"
    return head.encode() + f"SET timestamp={ts};\n".encode() + (_query(r) if query is None else query) + b";\n"


def mysql8_event(r: random.Random, i: int, query: bytes | None = None) -> bytes:
    start = f"2026-11-28T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{r.randint(0, 999999):06d}Z"
    return (f"# Time: {start}\n# User@Host: app[app] @ localhost [127.0.0.1]  Id:    {r.randint(8, 99)}\n"
            f"# Query_time: {r.random():.6f}  Lock_time: 0.000003 Rows_sent: {r.randint(0, 9)}  Rows_examined: "
            f"{r.randint(0, 9999)} Thread_id: 8 Errno: 0 Killed: 0 Bytes_received: 0 Bytes_sent: 56 Read_first: 0 "
            f"Read_last: 0 Read_key: 1 Read_next: 0 Read_prev: 0 Read_rnd: 0 Read_rnd_next: 0 Sort_merge_passes: 0 "
            f"Sort_range_count: 0 Sort_rows: 0 Sort_scan_count: 0 Created_tmp_disk_tables: 0 Created_tmp_tables: 0 "
            f"Start: {start} End: {start}\n"
            f"SET timestamp={_ts(r, i)};\n").encode() + (_query(r) if query is None else query) + b";\n"


def old_event(r: random.Random, i: int, query: bytes | None = None) -> bytes:
    """MySQL 5.0/5.1 layout: whole-second times, no SET timestamp."""
    return (f"# Time: 071015 21:{i // 60 % 60:02d}:{i % 60:02d}\n# User@Host: root[root] @ localhost []\n"
            f"# Query_time: {r.randint(0, 9)}  Lock_time: 0  Rows_sent: 1  Rows_examined: {r.randint(0, 9)}\n"
            ).encode() + (_query(r) if query is None else query) + b";\n"


def no_query(r: random.Random, i: int) -> bytes:
    """A header and SET timestamp with no statement after it."""
    return (f"# User@Host: app[app] @ localhost [127.0.0.1]\n# Query_time: {r.random():.6f}  Lock_time: 0.000000  "
            f"Rows_sent: 0  Rows_examined: 0\nSET timestamp={_ts(r, i)};\n").encode()


def admin(r: random.Random, i: int) -> bytes:
    kind = r.randrange(3)
    head = (f"# User@Host: app[app] @ localhost [127.0.0.1]\n# Query_time: {r.random():.6f}  Lock_time: 0.000000  "
            f"Rows_sent: 0  Rows_examined: 0\nSET timestamp={_ts(r, i)};\n").encode()
    if kind == 0:  # MySQL: the command on its own comment line
        return head + b"# administrator command: Quit;\n"
    if kind == 1:
        return head + b"# administrator command: Prepare;\n"
    return head + b"use pelbiot;\n# administrator command: Init DB;\n"


def _mix(r: random.Random, n: int, make) -> bytes:
    return b"".join(make(r, i) for i in range(n))


def shapes(scale: int = 1) -> dict[str, bytes]:
    """name -> log. ``scale`` multiplies the events of the mixed shapes (1: tests; more: benches)."""
    r = random.Random(20261204)
    out: dict[str, bytes] = {}
    out["mariadb"] = _mix(r, 400 * scale, lambda r, i: mariadb_event(r, i, db=r.random() < 0.1))
    out["mysql8-log-slow-extra"] = _mix(r, 400 * scale, mysql8_event)
    out["mysql5-no-set-timestamp"] = _mix(r, 300 * scale, old_event)

    def with_holes(r, i):
        pick = r.random()
        if pick < 0.08:
            return no_query(r, i)
        if pick < 0.14:
            return admin(r, i)
        return mariadb_event(r, i)
    out["no-query-and-admin-events"] = _mix(r, 600 * scale, with_holes)
    out["no-query-first-and-last"] = no_query(r, 0) + _mix(r, 20, mariadb_event) + no_query(r, 99)
    out["no-query-twice-in-a-row"] = (_mix(r, 5, mariadb_event) + no_query(r, 6) + no_query(r, 7)
                                      + _mix(r, 5, mariadb_event))
    out["no-query-before-mysql5-event"] = _mix(r, 3, old_event) + no_query(r, 4) + _mix(r, 3, old_event)
    out["restart-banner-mid-file"] = (BANNER + _mix(r, 50, mariadb_event) + BANNER + _mix(r, 50, mariadb_event)
                                      + BANNER)
    out["trailing-blank-line"] = _mix(r, 10, mariadb_event) + old_event(r, 11, b"select foo") + b"\n"
    out["trailing-blank-lines-and-space"] = _mix(r, 10, mariadb_event) + b"\n \n\n"
    out["cut-mid-event"] = _mix(r, 30, mariadb_event)[:-137]
    out["cut-mid-header"] = _mix(r, 30, mariadb_event) + b"# User@Host: app[app] @ localhost [127.0.0.1]\n# Query_t"
    broken = mariadb_event(r, 5, b"SELECT * FROM devices WHERE id = 3").replace(
        b"# Query_time: ", b"# Query_time: 18446744073708.796870.000036 Was: ", 1)
    out["wrapped-query-time"] = _mix(r, 5, mariadb_event) + broken + _mix(r, 5, mariadb_event)
    out["empty-schema"] = _mix(r, 20, mariadb_event).replace(b"Schema: pelbiot  QC_hit", b"Schema:   QC_hit")
    out["comment-lines-inside-a-query"] = _mix(r, 10, lambda r, i: mariadb_event(
        r, i, b"SELECT 1;\n# not a header, a comment line of a multi-statement packet\nSELECT " + str(i).encode()))
    out["crlf-line-ends"] = _mix(r, 20, old_event).replace(b"\n", b"\r\n")
    out["general-log"] = (b"/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-log (Debian 12). started with:\n"
                          b"Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\nTime\t\t    Id Command\tArgument\n"
                          + b"".join(f"261128 10:00:{i % 60:02d}\t    {i} Query\tSELECT * FROM devices WHERE id = {i}\n"
                                     .encode() for i in range(200)) + b"\t    7 Quit\t\n")
    out["session-dump"] = (b"mysql> SELECT * FROM devices;\n+----+------+\n| id | name |\n+----+------+\n"
                           + b"".join(f"| {i:2d} | P{i:03d} |\n".encode() for i in range(50))
                           + b"+----+------+\n50 rows in set (0.00 sec)\n\nmysql> exit;\nBye\n")
    out["empty"] = b""
    out["only-a-banner"] = BANNER
    return out


def with_time_lines(log: bytes) -> bytes:
    """The same log with a ``# Time:`` line starting every event that has none (MariaDB writes one
    only when the second changes; MySQL 5.7+ on every event). Nothing about the events changes,
    but pt-query-digest then reads an event with no query as it means to: its look-ahead tells a
    ``Time:`` line as the next event's start, and not a ``User@Host:`` line (see
    pelbiot_jobs.queries.slowlog.parse_records). The oracle for logs where that matters."""
    out, previous = [], b""
    for line in log.split(b"\n"):
        if line.startswith(b"# User@Host:") and not previous.startswith(b"# Time:"):
            out.append(b"# Time: 261128 10:00:00")
        out.append(line)
        previous = line
    return b"\n".join(out)


def _name(r: random.Random, n: int) -> str:
    """One of ``n`` names with no digit in them (the fingerprint turns digits into ``?``)."""
    k = r.randrange(n)
    return "c_" + "".join(chr(97 + (k // 26 ** j) % 26) for j in range(3))


def bench_shapes(size_mb: int) -> dict[str, bytes]:
    """Logs of about ``size_mb`` MB each, for bench/slowlog.py: the layouts of MariaDB, MySQL 8 and
    MySQL 5, few classes and many, short queries and long ones."""
    r = random.Random(7)
    target = size_mb << 20

    def grow(make) -> bytes:
        parts, size, i = [], 0, 0
        while size < target:
            event = make(r, i)
            parts.append(event)
            size += len(event)
            i += 1
        return b"".join(parts)

    short = [b"SELECT * FROM devices WHERE id = 7", b"UPDATE devices SET status = 'online' WHERE id = 3",
             b"SELECT hour, AVG(`load`) FROM load_profiles WHERE hour >= 3 GROUP BY hour"]
    return {
        "mariadb-few-classes-short": grow(lambda r, i: mariadb_event(
            r, i, short[i % 3].replace(b"7", str(r.randint(1, 99)).encode()))),
        "mariadb-mixed": grow(mariadb_event),
        "mariadb-many-classes": grow(lambda r, i: mariadb_event(
            r, i, f"SELECT {_name(r, 5)} FROM {_name(r, 200)} WHERE {_name(r, 2)} = {i}".encode())),
        "mysql8-mixed": grow(mysql8_event),
        "mysql5-long-queries": grow(lambda r, i: old_event(r, i, b"SELECT id FROM sensor_data WHERE sensor_id IN ("
                                                            + b", ".join(str(r.randint(1, 10 ** 6)).encode()
                                                                         for _ in range(r.randint(300, 1500))) + b")")),
    }
