/* The slow-log digest's hot loop in C: records of MariaDB's and MySQL's usual layouts are read and
 * added to their query classes here; every other record goes to the Python parser, which stays the
 * reference (pelbiot_jobs/queries/slowlog.py).
 *
 * What this file accepts is exactly what slowlog._fast and slowlog._fast_mysql accept, read the same
 * way; a record that differs from those layouts in any byte this code does not expect is handed to
 * Python whole, with the records after it up to one that ends every look-ahead (see process()).
 * tests/unit/test_scan.py digests logs both ways, mutated at random, and requires equal results.
 *
 * Every slow log is written by an attacker: all reads are bounded by the record's length (no fixed
 * buffers, no pointer past `end`), numbers are parsed only from spans of digits and dots, and the
 * fingerprint of a query this code has not seen is computed by the Python function.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define N_NUM 6
#define MAX_EPOCH 253402300799.0
#define RUN_CAP 256  /* records waiting for the Python parser at most */
#define MAX_NUMBER 1e20  /* slowlog.MAX_NUMBER: a larger value is left to Python, which leaves it out */
#define N_FLAG 7
static const char *NUM_NAMES[N_NUM] = {"Query_time", "Lock_time", "Rows_sent", "Rows_examined",
                                       "Rows_affected", "Bytes_sent"};
static const char *FLAG_NAMES[N_FLAG] = {"Full_scan", "Full_join", "Filesort", "Filesort_on_disk",
                                         "Tmp_table", "Tmp_table_on_disk", "QC_hit"};
enum { QT, LT, RS, RX, RA, BS };
enum { F_FULL_SCAN, F_FULL_JOIN, F_FILESORT, F_FILESORT_DISK, F_TMP, F_TMP_DISK, F_QC_HIT };
static PyObject *num_names[N_NUM], *flag_names[N_FLAG], *yes_bytes;
static PyObject *s_query, *s_attrs, *s_ts, *s_user, *s_host, *s_db;

/* --- what one record holds ------------------------------------------------------------------ */

typedef struct { Py_ssize_t a, b; } Span;  /* [a, b) in the record; a < 0: absent */

typedef struct {
    Span time, uh, schema, qc, db, ts, fscan, tdisk, fsort;
    double num[N_NUM];
    int has_bs, maria;
    Py_ssize_t query, query_end;
} Fast;

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_d(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_w(unsigned char c) {
    return is_d(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

typedef struct { const char *s; Py_ssize_t n; } Buf;

static int lit(Buf r, Py_ssize_t *i, const char *w) {
    Py_ssize_t n = (Py_ssize_t)strlen(w);
    if (*i + n > r.n || memcmp(r.s + *i, w, (size_t)n) != 0) return 0;
    *i += n;
    return 1;
}
static int is_decimal(unsigned char c) { return is_d(c) || c == '.'; }

/* A run of one or more bytes that ``in`` takes, from *i: its span, and *i past it. */
static int run_of(Buf r, Py_ssize_t *i, Span *sp, int (*in)(unsigned char)) {
    Py_ssize_t j = *i;
    while (j < r.n && in((unsigned char)r.s[j])) j++;
    if (j == *i) return 0;
    sp->a = *i; sp->b = j; *i = j;
    return 1;
}
static int ws1(Buf r, Py_ssize_t *i) { Span sp; return run_of(r, i, &sp, is_ws); }       /* \s+ */
static int digits(Buf r, Py_ssize_t *i, Span *sp) { return run_of(r, i, sp, is_d); }     /* \d+ */
static int word(Buf r, Py_ssize_t *i, Span *sp) { return run_of(r, i, sp, is_w); }       /* \w+ */
static int decimal(Buf r, Py_ssize_t *i, Span *sp) { return run_of(r, i, sp, is_decimal); }  /* [\d.]+ */
static int to_eol(Buf r, Py_ssize_t *i, Span *sp) {  /* [^\n]*\n */
    const char *nl = memchr(r.s + *i, '\n', (size_t)(r.n - *i));
    if (nl == NULL) return 0;
    sp->a = *i; sp->b = nl - r.s; *i = sp->b + 1;
    return 1;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                               1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* float() of a span of digits and at most one dot, as Python reads it; 0 when it is not such a span.
 * Up to 15 significant digits the value is M / 10^k with M and 10^k exact doubles: one correctly
 * rounded division, the same double strtod gives (Clinger's fast path); longer ones go to strtod. */
static int number(Buf r, Span sp, double *out) {
    char tmp[48];
    Py_ssize_t n = sp.b - sp.a, dots = 0, k, frac = -1;
    if (n <= 0 || n >= (Py_ssize_t)sizeof(tmp)) return 0;
    for (k = sp.a; k < sp.b; k++)
        if (r.s[k] == '.') { dots++; frac = sp.b - k - 1; }
    if (dots > 1 || (dots == 1 && n == 1)) return 0;
    if (n - dots <= 15) {
        unsigned long long m = 0;
        for (k = sp.a; k < sp.b; k++)
            if (r.s[k] != '.') m = m * 10 + (unsigned long long)(r.s[k] - '0');
        *out = frac > 0 ? (double)m / POW10[frac] : (double)m;
        return 1;  /* under 10^15 */
    }
    memcpy(tmp, r.s + sp.a, (size_t)n);
    tmp[n] = 0;
    char *end;
    double v = PyOS_string_to_double(tmp, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (end != tmp + n || !(v <= MAX_NUMBER)) return 0;
    *out = v;
    return 1;
}

/* The record's tail after the optional use and SET timestamp lines, as both layouts read it. */
static int tail(Buf r, Py_ssize_t i, Fast *f) {
    if (i + 4 <= r.n && memcmp(r.s + i, "use ", 4) == 0) {
        Py_ssize_t j = i + 4;
        while (j < r.n && r.s[j] != ';' && r.s[j] != '\n') j++;
        if (j + 1 < r.n && r.s[j] == ';' && r.s[j + 1] == '\n') {
            f->db.a = i + 4; f->db.b = j; i = j + 2;
        }
    }
    if (i + 14 <= r.n && memcmp(r.s + i, "SET timestamp=", 14) == 0) {
        Py_ssize_t j = i + 14;
        Span ts;
        if (digits(r, &j, &ts) && j + 1 < r.n && r.s[j] == ';' && r.s[j + 1] == '\n') {
            f->ts = ts; i = j + 2;
        }
    }
    /* (?!\#|use\ |SET\ (?:timestamp|insert_id|last_insert_id)) */
    if (i < r.n && r.s[i] == '#') return 0;
    if (i + 4 <= r.n && memcmp(r.s + i, "use ", 4) == 0) return 0;
    if (i + 4 <= r.n && memcmp(r.s + i, "SET ", 4) == 0) {
        Py_ssize_t j = i + 4;
        if (lit(r, &j, "timestamp") || lit(r, &j, "insert_id") || lit(r, &j, "last_insert_id")) return 0;
    }
    f->query = i;
    f->query_end = r.n;
    for (Py_ssize_t k = i; k < r.n; k++)  /* query.strip() must leave something */
        if (!is_ws((unsigned char)r.s[k])) return 1;
    return 0;
}

/* slowlog._MARIADB, from just after the record's leading "#". */
static int mariadb(Buf r, Py_ssize_t i, Fast *f) {
    Span skip;
    if (!lit(r, &i, " ")) return 0;
    if (lit(r, &i, "Time: ")) {
        if (!to_eol(r, &i, &f->time)) return 0;
        if (!lit(r, &i, "# ")) return 0;
    }
    if (!lit(r, &i, "User@Host: ") || !to_eol(r, &i, &f->uh)) return 0;
    if (!lit(r, &i, "# Thread_id: ") || !digits(r, &i, &skip) || !ws1(r, &i) || !lit(r, &i, "Schema: ")) return 0;
    f->schema.a = i;
    while (i < r.n && !is_ws((unsigned char)r.s[i]) && r.s[i] != ':') i++;
    f->schema.b = i;
    if (!ws1(r, &i) || !lit(r, &i, "QC_hit: ") || !word(r, &i, &f->qc) || !lit(r, &i, "\n")) return 0;
    Span qt, lt, rs, rx, ra, bs;
    if (!lit(r, &i, "# Query_time: ") || !decimal(r, &i, &qt) || !ws1(r, &i) || !lit(r, &i, "Lock_time: ")
        || !decimal(r, &i, &lt) || !ws1(r, &i) || !lit(r, &i, "Rows_sent: ") || !digits(r, &i, &rs)
        || !ws1(r, &i) || !lit(r, &i, "Rows_examined: ") || !digits(r, &i, &rx) || !lit(r, &i, "\n"))
        return 0;
    if (!lit(r, &i, "# Rows_affected: ") || !digits(r, &i, &ra) || !ws1(r, &i) || !lit(r, &i, "Bytes_sent: ")
        || !digits(r, &i, &bs) || !lit(r, &i, "\n"))
        return 0;
    {  /* (?:\#\ Tmp_tables:[^\n]*\n)? */
        Py_ssize_t j = i;
        if (lit(r, &j, "# Tmp_tables:") && to_eol(r, &j, &skip)) i = j;
    }
    {  /* (?:\# Full_scan: ... \n\# Filesort: ...\n)? */
        Py_ssize_t j = i;
        Span fscan, tdisk, fsort;
        if (lit(r, &j, "# Full_scan: ") && word(r, &j, &fscan) && ws1(r, &j) && lit(r, &j, "Full_join: ")
            && word(r, &j, &skip) && ws1(r, &j) && lit(r, &j, "Tmp_table: ") && word(r, &j, &skip) && ws1(r, &j)
            && lit(r, &j, "Tmp_table_on_disk: ") && word(r, &j, &tdisk) && lit(r, &j, "\n")
            && lit(r, &j, "# Filesort: ") && word(r, &j, &fsort) && to_eol(r, &j, &skip)) {
            f->fscan = fscan; f->tdisk = tdisk; f->fsort = fsort;
            i = j;
        }
    }
    while (i < r.n && r.s[i] == '#')  /* (?:\#[^\n]*\n)* */
        if (!to_eol(r, &i, &skip)) return 0;
    if (!tail(r, i, f)) return 0;
    if (!number(r, qt, &f->num[QT]) || !number(r, lt, &f->num[LT])) return 0;  /* number()'s fallback: Python's */
    if (!number(r, rs, &f->num[RS]) || !number(r, rx, &f->num[RX]) || !number(r, ra, &f->num[RA])
        || !number(r, bs, &f->num[BS]))
        return 0;
    f->has_bs = f->maria = 1;
    return 1;
}

static int contains(Buf r, Span sp, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(sp.b - sp.a) < n) return 0;
    for (Py_ssize_t k = sp.a; k + (Py_ssize_t)n <= sp.b; k++)
        if (r.s[k] == w[0] && memcmp(r.s + k, w, n) == 0) return 1;
    return 0;
}

/* slowlog._MYSQL (and _fast_mysql's reading of log_slow_extra's Bytes_sent). */
static int mysql(Buf r, Py_ssize_t i, Fast *f) {
    Span qt, lt, rs, rx, extra;
    if (!lit(r, &i, " Time: ") || !to_eol(r, &i, &f->time)) return 0;
    if (!lit(r, &i, "# User@Host: ") || !to_eol(r, &i, &f->uh)) return 0;
    if (!lit(r, &i, "# Query_time: ") || !decimal(r, &i, &qt) || !ws1(r, &i) || !lit(r, &i, "Lock_time: ")
        || !decimal(r, &i, &lt) || !ws1(r, &i) || !lit(r, &i, "Rows_sent: ") || !digits(r, &i, &rs)
        || !ws1(r, &i) || !lit(r, &i, "Rows_examined: ") || !digits(r, &i, &rx) || !to_eol(r, &i, &extra))
        return 0;
    if (!tail(r, i, f)) return 0;
    if (!number(r, qt, &f->num[QT]) || !number(r, lt, &f->num[LT]) || !number(r, rs, &f->num[RS])
        || !number(r, rx, &f->num[RX]))
        return 0;
    static const char *not_in_extra[] = {"Rows_affected:", "Schema:", "Full_scan:", "Filesort:",
                                         "Tmp_table_on_disk:", "QC_hit:"};
    for (size_t k = 0; k < sizeof(not_in_extra) / sizeof(*not_in_extra); k++)
        if (contains(r, extra, not_in_extra[k])) return 0;
    for (Py_ssize_t k = extra.a; k + 12 <= extra.b; k++) {
        if (memcmp(r.s + k, "Bytes_sent: ", 12) != 0) continue;
        Py_ssize_t j = k + 12;
        while (j < extra.b && is_ws((unsigned char)r.s[j])) j++;
        Span tok = {j, j};
        while (tok.b < extra.b && !is_ws((unsigned char)r.s[tok.b])) tok.b++;
        if (tok.b > tok.a) {
            for (Py_ssize_t q = tok.a; q < tok.b; q++)
                if (!is_d((unsigned char)r.s[q])) return 0;  /* number()'s other readings: Python's */
            if (!number(r, tok, &f->num[BS])) return 0;
            f->has_bs = 1;
        }
        break;
    }
    return 1;
}

static int ends(Buf r, const char *w) {
    size_t n = strlen(w);
    return (size_t)r.n >= n && memcmp(r.s + r.n - n, w, n) == 0;
}

/* A record (the bytes between two separators) in one of the two layouts; 0 when it is not. */
static int parse_fast(Buf rec, Fast *f) {
    Span none = {-1, -1};
    f->time = f->uh = f->schema = f->qc = f->db = f->ts = f->fscan = f->tdisk = f->fsort = none;
    f->has_bs = f->maria = 0;
    if (rec.n < 16) return 0;
    Py_ssize_t start = rec.s[0] == '#' ? 1 : 0;  /* parse_record puts back the "#" the separator took */
    Buf r = rec;
    /* _end_stripped: the ";\n" before the separator (or the file's end) */
    if (ends(r, ";\n")) r.n -= 2;
    else if (ends(r, ";\n\n") || ends(r, ";\n#\n")) return 0;  /* a line end the slice would not keep: Python's */
    else if (ends(r, ";\n#")) r.n -= 3;
    if (r.n - start < 16) return 0;
    int is_time = r.n - start >= 7 && memcmp(r.s + start, " Time:", 6) == 0;
    int is_uh = r.n - start >= 12 && memcmp(r.s + start, " User@Host:", 11) == 0;
    if (!is_time && !is_uh) return 0;
    if (mariadb(r, start, f)) return 1;
    f->time = f->uh = f->schema = f->qc = f->db = f->ts = f->fscan = f->tdisk = f->fsort = none;
    f->has_bs = f->maria = 0;
    return is_time && mysql(r, start, f);
}

/* --- the fingerprint cache's key (fingerprint.FingerprintCache) ------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int in_word(unsigned char c) {  /* fingerprint._WORD, on lower-cased text */
    return (c >= 'a' && c <= 'z') || is_d(c) || c == '_' || c == 0;
}
static int in_list_inner(unsigned char c) { return c == 0 || c == '?' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Digits as one marker byte each, IN lists of numbers collapsed (queries over 200 bytes), runs of
 * markers as one: fingerprint.FingerprintCache's key. Returns a new bytes object. */
static PyObject *cache_key(const char *q, Py_ssize_t n) {
    char *k = PyMem_Malloc((size_t)(n > 0 ? n : 1));
    if (k == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) k[i] = is_d((unsigned char)q[i]) ? 0 : q[i];
    Py_ssize_t len = n;
    if (len > 200) {  /* _collapse_in_lists, in place (it only ever shortens) */
        Py_ssize_t out = 0, pos = 0, at = 0;
        int changed = 0;
        for (;;) {
            while (at + 1 < len && !(lower(k[at]) == 'i' && lower(k[at + 1]) == 'n')) at++;
            if (at + 1 >= len) break;
            if (at == 0 || !in_word((unsigned char)lower(k[at - 1]))) {
                Py_ssize_t i = at + 2;
                while (i < len && (k[i] == ' ' || k[i] == '\t' || k[i] == '\n' || k[i] == '\r' || k[i] == ',')) i++;
                if (i < len && k[i] == '(') {
                    const char *close = memchr(k + i, ')', (size_t)(len - i));
                    Py_ssize_t c = close ? close - k : -1;
                    if (c > i + 2) {
                        Py_ssize_t m = i + 1;
                        while (m < c && in_list_inner((unsigned char)k[m])) m++;
                        if (m == c) {
                            memmove(k + out, k + pos, (size_t)(i + 1 - pos));
                            out += i + 1 - pos;
                            k[out++] = 0;
                            pos = c;
                            at = c;
                            changed = 1;
                            continue;
                        }
                    }
                }
            }
            at += 2;
        }
        if (changed) {
            memmove(k + out, k + pos, (size_t)(len - pos));
            len = out + len - pos;
        }
    }
    Py_ssize_t w = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        if (!(k[i] == 0 && w > 0 && k[w - 1] == 0)) k[w++] = k[i];
    PyObject *key = PyBytes_FromStringAndSize(k, w);
    PyMem_Free(k);
    return key;
}

/* Whether the query goes through the Python fingerprint path: comments (tags, pt-table-checksum's),
 * multi-row INSERTs keyed by their first row, CALL names and administrator commands kept, NUL bytes. */
static int needs_python(const char *q, Py_ssize_t n, Py_ssize_t max_query) {
    if (n > max_query) return 1;
    if (memchr(q, 0, (size_t)n) != NULL) return 1;  /* a NUL would read as a digit's marker: never keyed */
    if (n >= 2) {
        const char *p = q;
        while ((p = memchr(p, '/', (size_t)(q + n - 1 - p))) != NULL) {
            if (p[1] == '*') return 1;
            p++;
        }
    }
    char head[8];
    Py_ssize_t h = n < 7 ? n : 7;
    for (Py_ssize_t i = 0; i < h; i++) head[i] = (char)lower((unsigned char)q[i]);
    if ((h >= 6 && memcmp(head, "insert", 6) == 0) || (h >= 7 && memcmp(head, "replace", 7) == 0)) return 1;
    Py_ssize_t i = 0, lim = n < 32 ? n : 32;  /* query[:32].lstrip().lower() */
    while (i < lim && is_ws((unsigned char)q[i])) i++;
    char w[13];
    Py_ssize_t m = 0;
    while (m < 13 && i + m < lim) { w[m] = (char)lower((unsigned char)q[i + m]); m++; }
    if (m >= 4 && memcmp(w, "call", 4) == 0) return 1;
    if (m >= 13 && memcmp(w, "administrator", 13) == 0) return 1;
    return 0;
}

/* --- classes ------------------------------------------------------------------------------- */

typedef struct { double *v; Py_ssize_t n, cap; } DVec;

static int dvec_push(DVec *d, double x) {
    if (d->n == d->cap) {
        Py_ssize_t cap = d->cap ? d->cap * 2 : 16;
        double *v = PyMem_Realloc(d->v, (size_t)cap * sizeof(double));
        if (v == NULL) { PyErr_NoMemory(); return -1; }
        d->v = v; d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

/* A counter of bytes values (a dict: value -> count) that holds the run of one value before it counts it:
 * the values of a class rarely change from one event to the next. Values enter the dict in the order
 * they were first seen, as a collections.Counter's. */
typedef struct { PyObject *dict, *last; Py_ssize_t pending; } Tally;

static int tally_flush(Tally *t) {
    if (t->last == NULL) return 0;
    PyObject *n = PyDict_GetItemWithError(t->dict, t->last);
    if (n == NULL && PyErr_Occurred()) return -1;
    PyObject *m = PyLong_FromSsize_t((n ? PyLong_AsSsize_t(n) : 0) + t->pending);
    if (m == NULL) return -1;
    int rc = PyDict_SetItem(t->dict, t->last, m);
    Py_DECREF(m);
    Py_CLEAR(t->last);
    t->pending = 0;
    return rc;
}

static int tally_add(Tally *t, PyObject *value) {
    if (t->last != value) {
        if (t->last != NULL && PyBytes_GET_SIZE(t->last) == PyBytes_GET_SIZE(value)
            && memcmp(PyBytes_AS_STRING(t->last), PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value)) == 0) {
            t->pending++;
            return 0;
        }
        if (tally_flush(t) < 0) return -1;
        t->last = Py_NewRef(value);
    }
    t->pending++;
    return 0;
}

static void tally_clear(Tally *t) { Py_CLEAR(t->dict); Py_CLEAR(t->last); t->pending = 0; }

typedef struct {
    PyObject *fp;
    Py_ssize_t count;
    DVec vals[N_NUM];
    Py_ssize_t flags[N_FLAG];
    double ts_min, ts_max;
    int has_ts;
    Tally dbs, users, hosts;
    PyObject *example;  /* bytes: the query of the event with the highest Query_time (the first of equals) */
    double example_time, example_ts;
    int example_has_ts;
} Cls;

typedef struct {
    PyObject_HEAD
    PyObject *since;  /* float or None */
    double since_v;
    PyObject *fp_of, *fingerprint, *time_of, *who_of, *general;
    PyObject *keys;  /* cache key -> fingerprint */
    Py_ssize_t keys_max, keys_bytes, keys_bytes_max, max_query;
    PyObject *index;  /* fingerprint -> index in cls */
    Cls *cls;
    Py_ssize_t ncls, capcls;
    PyObject *run;  /* records waiting for the Python parser */
    int python_open;  /* the Python parser still looks ahead: the next records go to it */
    PyObject *hours;  /* hour -> (events, Query_time summed), but for the hour being counted: */
    long long hour;
    int hour_set;
    Py_ssize_t hour_calls;
    double hour_time;
    PyObject *times;  /* "# Time:" values read -> their time (or None) */
    PyObject *last_fp;  /* the fingerprint of the last event, and its class's index */
    Py_ssize_t last_cls;
    Py_ssize_t events, skipped, filtered, taken_at, handed;  /* handed: records read by the Python parser */
    /* the last values read, and what they gave */
    PyObject *last_time_raw, *last_time, *last_uh_raw, *last_who, *last_db;
} Scanner;

static void cls_clear(Cls *c) {
    Py_CLEAR(c->fp); tally_clear(&c->dbs); tally_clear(&c->users); tally_clear(&c->hosts); Py_CLEAR(c->example);
    for (int k = 0; k < N_NUM; k++) { PyMem_Free(c->vals[k].v); c->vals[k].v = NULL; c->vals[k].n = c->vals[k].cap = 0; }
}

static void classes_clear(Scanner *s) {
    for (Py_ssize_t i = 0; i < s->ncls; i++) cls_clear(&s->cls[i]);
    s->ncls = 0;
    Py_CLEAR(s->last_fp);
    if (s->index) PyDict_Clear(s->index);
}

static Cls *class_of(Scanner *s, PyObject *fp) {
    if (fp == s->last_fp && s->last_cls < s->ncls) return &s->cls[s->last_cls];
    PyObject *at = PyDict_GetItemWithError(s->index, fp);
    if (at != NULL) {
        Py_XSETREF(s->last_fp, Py_NewRef(fp));
        s->last_cls = PyLong_AsSsize_t(at);
        return &s->cls[s->last_cls];
    }
    if (PyErr_Occurred()) return NULL;
    if (s->ncls == s->capcls) {
        Py_ssize_t cap = s->capcls ? s->capcls * 2 : 64;
        Cls *cls = PyMem_Realloc(s->cls, (size_t)cap * sizeof(Cls));
        if (cls == NULL) { PyErr_NoMemory(); return NULL; }
        s->cls = cls; s->capcls = cap;
    }
    PyObject *i = PyLong_FromSsize_t(s->ncls);
    if (i == NULL || PyDict_SetItem(s->index, fp, i) < 0) { Py_XDECREF(i); return NULL; }
    Py_DECREF(i);
    Py_XSETREF(s->last_fp, Py_NewRef(fp));
    s->last_cls = s->ncls;
    Cls *c = &s->cls[s->ncls++];
    memset(c, 0, sizeof(*c));
    Py_INCREF(fp);
    c->fp = fp;
    c->example_time = -1.0;
    c->dbs.dict = PyDict_New(); c->users.dict = PyDict_New(); c->hosts.dict = PyDict_New();
    if (!c->dbs.dict || !c->users.dict || !c->hosts.dict) return NULL;
    return c;
}

/* Store the hour being counted (events, Query_time summed) in s->hours. */
static int hours_flush(Scanner *s) {
    if (!s->hour_set) return 0;
    PyObject *h = PyLong_FromLongLong(s->hour), *v = Py_BuildValue("(nd)", s->hour_calls, s->hour_time);
    int rc = h && v ? PyDict_SetItem(s->hours, h, v) : -1;
    Py_XDECREF(h);
    Py_XDECREF(v);
    s->hour_set = 0;
    return rc;
}

/* One event's common part: the class's count, times, who and where, example and hour. */
static int add_common(Scanner *s, Cls *c, int has_ts, double ts, PyObject *db, PyObject *user, PyObject *host,
                      double qt, PyObject *query, const char *q, Py_ssize_t n) {
    c->count++;
    if (has_ts) {
        if (!c->has_ts || ts < c->ts_min) c->ts_min = ts;
        if (!c->has_ts || ts > c->ts_max) c->ts_max = ts;
        c->has_ts = 1;
    }
    /* db, user, host: bytes (a Python event's may be anything: counted when true, as Counter counts them) */
    if (db && PyBytes_Check(db) && PyBytes_GET_SIZE(db) && tally_add(&c->dbs, db) < 0) return -1;
    if (user && PyBytes_Check(user) && PyBytes_GET_SIZE(user) && tally_add(&c->users, user) < 0) return -1;
    if (host && PyBytes_Check(host) && PyBytes_GET_SIZE(host) && tally_add(&c->hosts, host) < 0) return -1;
    if (qt > c->example_time) {
        PyObject *ex;
        if (query != NULL && n <= s->max_query) ex = Py_NewRef(query);
        else if ((ex = PyBytes_FromStringAndSize(q, n > s->max_query ? s->max_query : n)) == NULL) return -1;
        Py_XSETREF(c->example, ex);
        c->example_time = qt;
        c->example_ts = ts;
        c->example_has_ts = has_ts;
    }
    s->events++;
    if (has_ts) {  /* int(ts) // 3600; ts is within years 1970-9999 (slowlog.epoch) */
        long long sec = (long long)ts, hour = sec / 3600;
        if (sec % 3600 && sec < 0) hour--;
        if (!s->hour_set || hour != s->hour) {
            if (hours_flush(s) < 0) return -1;
            PyObject *h = PyLong_FromLongLong(hour);
            if (h == NULL) return -1;
            PyObject *slot = PyDict_GetItemWithError(s->hours, h);
            Py_DECREF(h);
            if (slot == NULL && PyErr_Occurred()) return -1;
            s->hour = hour;
            s->hour_set = 1;
            s->hour_calls = slot ? PyLong_AsSsize_t(PyTuple_GET_ITEM(slot, 0)) : 0;
            s->hour_time = slot ? PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(slot, 1)) : 0.0;
        }
        s->hour_calls++;
        s->hour_time += qt;  /* one addition per event, in order: the Python reader's sum */
    }
    return 0;
}

/* The fingerprint of a query: from the key cache, else from Python (and kept, within the budget). */
static PyObject *fingerprint_of(Scanner *s, const char *q, Py_ssize_t n) {
    if (needs_python(q, n, s->max_query)) {
        PyObject *query = PyBytes_FromStringAndSize(q, n);
        if (query == NULL) return NULL;
        PyObject *fp = PyObject_CallOneArg(s->fp_of, query);
        Py_DECREF(query);
        return fp;
    }
    PyObject *key = cache_key(q, n);
    if (key == NULL) return NULL;
    PyObject *fp = PyDict_GetItemWithError(s->keys, key);
    if (fp != NULL) {
        Py_INCREF(fp);
        Py_DECREF(key);
        return fp;
    }
    if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
    PyObject *query = PyBytes_FromStringAndSize(q, n);
    if (query == NULL) { Py_DECREF(key); return NULL; }
    fp = PyObject_CallOneArg(s->fingerprint, query);
    Py_DECREF(query);
    if (fp != NULL && PyBytes_Check(fp) && PyDict_GET_SIZE(s->keys) < s->keys_max
        && s->keys_bytes < s->keys_bytes_max) {
        if (PyDict_SetItem(s->keys, key, fp) < 0) { Py_DECREF(fp); fp = NULL; }
        else s->keys_bytes += PyBytes_GET_SIZE(key) + PyBytes_GET_SIZE(fp);
    }
    Py_DECREF(key);
    return fp;
}

static PyObject *span_bytes(Buf r, Span sp) { return PyBytes_FromStringAndSize(r.s + sp.a, sp.b - sp.a); }

static int same(PyObject *raw, Buf r, Span sp) {
    return raw != NULL && PyBytes_GET_SIZE(raw) == sp.b - sp.a
           && memcmp(PyBytes_AS_STRING(raw), r.s + sp.a, (size_t)(sp.b - sp.a)) == 0;
}

static int span_is(Buf r, Span sp, const char *w) {
    size_t n = strlen(w);
    return sp.a >= 0 && (size_t)(sp.b - sp.a) == n && memcmp(r.s + sp.a, w, n) == 0;
}

/* Add a record read by parse_fast. */
static int add_fast(Scanner *s, Buf r, Fast *f) {
    int has_ts = 0;
    double ts = 0.0;
    if (f->ts.a >= 0) {
        /* slowlog.epoch: a time from year 1970 to 9999, else none (a digit run too long for the reader is past it) */
        has_ts = number(r, f->ts, &ts) && ts >= 0.0 && ts <= MAX_EPOCH;
    } else if (f->time.a >= 0 && f->time.b > f->time.a) {
        if (!same(s->last_time_raw, r, f->time)) {
            PyObject *raw = span_bytes(r, f->time);
            if (raw == NULL) return -1;
            PyObject *v = PyDict_GetItemWithError(s->times, raw);
            if (v != NULL) Py_INCREF(v);
            else if (PyErr_Occurred() || (v = PyObject_CallOneArg(s->time_of, raw)) == NULL) { Py_DECREF(raw); return -1; }
            else if (PyDict_GET_SIZE(s->times) < 100000 && PyDict_SetItem(s->times, raw, v) < 0) {
                Py_DECREF(raw); Py_DECREF(v); return -1;
            }
            Py_XSETREF(s->last_time_raw, raw);
            Py_XSETREF(s->last_time, v);
        }
        if (s->last_time != Py_None) {
            ts = PyFloat_AsDouble(s->last_time);
            if (ts == -1.0 && PyErr_Occurred()) return -1;
            has_ts = 1;
        }
    }
    if (s->since != Py_None && has_ts && ts < s->since_v) {
        s->filtered++;
        return 0;
    }
    PyObject *fp = fingerprint_of(s, r.s + f->query, f->query_end - f->query);
    if (fp == NULL) return -1;
    Cls *c = class_of(s, fp);
    Py_DECREF(fp);
    if (c == NULL) return -1;
    for (int k = 0; k < N_NUM; k++)
        if ((k <= RX || f->maria || (k == BS && f->has_bs)) && dvec_push(&c->vals[k], f->num[k]) < 0)
            return -1;
    if (span_is(r, f->qc, "Yes")) c->flags[F_QC_HIT]++;
    if (span_is(r, f->fscan, "Yes")) c->flags[F_FULL_SCAN]++;
    if (span_is(r, f->tdisk, "Yes")) c->flags[F_TMP_DISK]++;
    if (span_is(r, f->fsort, "Yes")) c->flags[F_FILESORT]++;
    if (!same(s->last_uh_raw, r, f->uh)) {
        PyObject *raw = span_bytes(r, f->uh);
        if (raw == NULL) return -1;
        PyObject *who = PyObject_CallOneArg(s->who_of, raw);
        if (who == NULL) { Py_DECREF(raw); return -1; }
        if (!PyTuple_Check(who) || PyTuple_GET_SIZE(who) != 2) {
            Py_DECREF(raw); Py_DECREF(who);
            PyErr_SetString(PyExc_TypeError, "who_of must return (user, host)");
            return -1;
        }
        Py_XSETREF(s->last_uh_raw, raw);
        Py_XSETREF(s->last_who, who);
    }
    /* db or schema or None */
    Span dbs = f->db.a >= 0 && f->db.b > f->db.a ? f->db : f->schema;
    PyObject *db = NULL;
    if (dbs.a >= 0 && dbs.b > dbs.a) {
        if (s->last_db == NULL || !same(s->last_db, r, dbs)) {
            PyObject *v = span_bytes(r, dbs);
            if (v == NULL) return -1;
            Py_XSETREF(s->last_db, v);
        }
        db = s->last_db;
    }
    return add_common(s, c, has_ts, ts, db, PyTuple_GET_ITEM(s->last_who, 0), PyTuple_GET_ITEM(s->last_who, 1),
                      f->num[QT], NULL, r.s + f->query, f->query_end - f->query);
}

static int name_index(PyObject *name, PyObject **names, int n) {
    for (int k = 0; k < n; k++)
        if (name == names[k]) return k;
    for (int k = 0; k < n; k++) {
        int eq = PyObject_RichCompareBool(name, names[k], Py_EQ);
        if (eq < 0) return -2;
        if (eq) return k;
    }
    return -1;
}

/* Add an event the Python parser read: (fingerprint, slowlog.Event). */
static int add_event(Scanner *s, PyObject *item) {
    if (item == Py_None) { s->skipped++; return 0; }
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "general() must give None or (fingerprint, event)");
        return -1;
    }
    PyObject *fp = PyTuple_GET_ITEM(item, 0), *e = PyTuple_GET_ITEM(item, 1);
    int rc = -1, has_ts = 0;
    double ts = 0.0, qt = 0.0;
    PyObject *tso = PyObject_GetAttr(e, s_ts), *attrs = PyObject_GetAttr(e, s_attrs), *query = PyObject_GetAttr(e, s_query);
    PyObject *db = PyObject_GetAttr(e, s_db), *user = PyObject_GetAttr(e, s_user), *host = PyObject_GetAttr(e, s_host);
    if (!tso || !attrs || !query || !db || !user || !host) goto done;
    if (!PyDict_Check(attrs) || !PyBytes_Check(query)) {
        PyErr_SetString(PyExc_TypeError, "an event's attrs must be a dict and its query bytes");
        goto done;
    }
    if (tso != Py_None) {
        ts = PyFloat_AsDouble(tso);
        if (ts == -1.0 && PyErr_Occurred()) goto done;
        has_ts = 1;
    }
    if (s->since != Py_None && has_ts && ts < s->since_v) { s->filtered++; rc = 0; goto done; }
    Cls *c = class_of(s, fp);
    if (c == NULL) goto done;
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(attrs, &pos, &name, &value)) {
        if (PyFloat_CheckExact(value)) {
            int k = name_index(name, num_names, N_NUM);
            if (k == -2) goto done;
            if (k < 0) { PyErr_Format(PyExc_ValueError, "unknown numeric attribute %R", name); goto done; }
            if (dvec_push(&c->vals[k], PyFloat_AS_DOUBLE(value)) < 0) goto done;
            if (k == QT) qt = PyFloat_AS_DOUBLE(value);
        } else {
            int yes = PyObject_RichCompareBool(value, yes_bytes, Py_EQ);
            if (yes < 0) goto done;
            if (yes) {
                int k = name_index(name, flag_names, N_FLAG);
                if (k == -2) goto done;
                if (k >= 0) c->flags[k]++;
            }
        }
    }
    rc = add_common(s, c, has_ts, ts, db == Py_None ? NULL : db, user == Py_None ? NULL : user,
                    host == Py_None ? NULL : host, qt, query, PyBytes_AS_STRING(query), PyBytes_GET_SIZE(query));
done:
    Py_XDECREF(tso); Py_XDECREF(attrs); Py_XDECREF(query); Py_XDECREF(db); Py_XDECREF(user); Py_XDECREF(host);
    return rc;
}

/* Hand the waiting records to the Python parser and add the events it read. It may keep the last of
 * them, still looking ahead: then the records that follow go to it too (python_open), up to one that
 * ends the look-ahead. Records are never held in a growing list: at most RUN_CAP wait at a time. */
static int flush_run(Scanner *s, int final) {
    if (PyList_GET_SIZE(s->run) == 0 && !s->python_open) return 0;
    PyObject *out = PyObject_CallFunctionObjArgs(s->general, s->run, final ? Py_True : Py_False, NULL);
    if (out == NULL) return -1;
    if (!PyTuple_Check(out) || PyTuple_GET_SIZE(out) != 2) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "general() must give (events, still_looking_ahead)");
        return -1;
    }
    int open = PyObject_IsTrue(PyTuple_GET_ITEM(out, 1));
    PyObject *seq = open < 0 ? NULL : PySequence_Fast(PyTuple_GET_ITEM(out, 0), "general() must give a list");
    Py_DECREF(out);
    if (seq == NULL) return -1;
    s->handed += PyList_GET_SIZE(s->run);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++)
        if (add_event(s, PySequence_Fast_GET_ITEM(seq, i)) < 0) { Py_DECREF(seq); return -1; }
    Py_DECREF(seq);
    Py_SETREF(s->run, PyList_New(0));
    if (s->run == NULL) return -1;
    s->python_open = open && !final;
    return 0;
}

static int has_semicolon_line(Buf r) {  /* b";\n" in record: ends the look-ahead of a record before it */
    const char *p = r.s, *end = r.s + r.n;
    while (p < end - 1 && (p = memchr(p, ';', (size_t)(end - 1 - p))) != NULL) {
        if (p[1] == '\n') return 1;
        p++;
    }
    return 0;
}

/* One record: read here when it is of the usual layouts and no records wait for Python, else queued
 * for Python (``rec``: the record as bytes when the caller has it, else made from ``r``). */
static int process(Scanner *s, Buf r, PyObject *rec) {
    Fast f;
    int fast = parse_fast(r, &f);
    if (fast && PyList_GET_SIZE(s->run) == 0 && !s->python_open) return add_fast(s, r, &f);
    PyObject *item = rec ? Py_NewRef(rec) : PyBytes_FromStringAndSize(r.s, r.n);
    if (item == NULL) return -1;
    int rc = PyList_Append(s->run, item);
    Py_DECREF(item);
    if (rc < 0) return -1;
    /* After records for Python, a record of the usual layout that holds ";\n" ends every look-ahead
     * (slowlog.parse_records reads it as itself): it goes with them, and they are handed over (so are
     * RUN_CAP waiting records). The Python parser says whether it still looks ahead after them. */
    if ((PyList_GET_SIZE(s->run) > 1 || s->python_open) && ((fast && has_semicolon_line(r))
                                                             || PyList_GET_SIZE(s->run) >= RUN_CAP))
        if (flush_run(s, 0) < 0) return -1;
    return 0;
}

static PyObject *Scanner_feed(Scanner *s, PyObject *records) {
    if (!PyList_Check(records)) { PyErr_SetString(PyExc_TypeError, "records must be a list of bytes"); return NULL; }
    Py_INCREF(records);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *rec = PyList_GET_ITEM(records, i);
        if (!PyBytes_Check(rec)) { PyErr_SetString(PyExc_TypeError, "records must be bytes"); goto fail; }
        Buf r = {PyBytes_AS_STRING(rec), PyBytes_GET_SIZE(rec)};
        if (process(s, r, rec) < 0) goto fail;
    }
    Py_DECREF(records);
    Py_RETURN_NONE;
fail:
    Py_DECREF(records);
    return NULL;
}

/* The ";\n#" separator at or after p, or NULL. */
static const char *separator(const char *p, const char *end) {
    while (p + 3 <= end && (p = memchr(p, ';', (size_t)(end - 2 - p))) != NULL) {
        if (p[1] == '\n' && p[2] == '#') return p;
        p++;
    }
    return NULL;
}

/* feed(buffer[start:end].split(b";\n#")) without making the records: read in place. */
static PyObject *Scanner_feed_block(Scanner *s, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &start, &end)) return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start and end must lie within the buffer");
        return NULL;
    }
    const char *p = (const char *)view.buf + start, *stop = (const char *)view.buf + end;
    for (;;) {
        const char *sep = separator(p, stop);
        Buf r = {p, (sep ? sep : stop) - p};
        if (process(s, r, NULL) < 0) { PyBuffer_Release(&view); return NULL; }
        if (sep == NULL) break;
        p = sep + 3;
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *Scanner_finish(Scanner *s, PyObject *unused) {
    (void)unused;
    if (flush_run(s, 1) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *dvec_bytes(DVec *d) { return PyBytes_FromStringAndSize((const char *)d->v, d->n * (Py_ssize_t)sizeof(double)); }

/* The classes read since the last take, as tuples (see digest._from_scanner); the scanner keeps none. */
static PyObject *Scanner_take(Scanner *s, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(s->ncls);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < s->ncls; i++) {
        Cls *c = &s->cls[i];
        PyObject *vals = PyDict_New(), *flags = PyDict_New();
        if (!vals || !flags) goto fail_item;
        for (int k = 0; k < N_NUM; k++) {
            if (!c->vals[k].n) continue;
            PyObject *b = dvec_bytes(&c->vals[k]);
            if (b == NULL || PyDict_SetItem(vals, num_names[k], b) < 0) { Py_XDECREF(b); goto fail_item; }
            Py_DECREF(b);
        }
        for (int k = 0; k < N_FLAG; k++) {
            if (!c->flags[k]) continue;
            PyObject *n = PyLong_FromSsize_t(c->flags[k]);
            if (n == NULL || PyDict_SetItem(flags, flag_names[k], n) < 0) { Py_XDECREF(n); goto fail_item; }
            Py_DECREF(n);
        }
        PyObject *example = c->example ? Py_NewRef(c->example) : PyBytes_FromStringAndSize("", 0);
        if (example == NULL) goto fail_item;
        PyObject *tsmin = c->has_ts ? PyFloat_FromDouble(c->ts_min) : Py_NewRef(Py_None);
        PyObject *tsmax = c->has_ts ? PyFloat_FromDouble(c->ts_max) : Py_NewRef(Py_None);
        PyObject *exts = c->example_has_ts ? PyFloat_FromDouble(c->example_ts) : Py_NewRef(Py_None);
        if (tally_flush(&c->dbs) < 0 || tally_flush(&c->users) < 0 || tally_flush(&c->hosts) < 0) goto fail_item;
        PyObject *t = Py_BuildValue("(OnNNNNOOONdN)", c->fp, c->count, vals, flags, tsmin, tsmax, c->dbs.dict,
                                    c->users.dict, c->hosts.dict, example, c->example_time, exts);
        if (t == NULL) goto fail;
        PyList_SET_ITEM(out, i, t);
        continue;
    fail_item:
        Py_XDECREF(vals); Py_XDECREF(flags);
        goto fail;
    }
    classes_clear(s);
    s->taken_at = s->events;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *Scanner_counts(Scanner *s, PyObject *unused) {
    (void)unused;
    return Py_BuildValue("{snsnsnsnsn}", "events", s->events, "skipped", s->skipped, "filtered", s->filtered,
                         "since_take", s->events - s->taken_at, "python_records", s->handed);
}

static PyObject *Scanner_hours(Scanner *s, PyObject *unused) {
    (void)unused;
    if (hours_flush(s) < 0) return NULL;
    return Py_NewRef(s->hours);
}

static int Scanner_init(Scanner *s, PyObject *args, PyObject *kw) {
    static char *names[] = {"since", "fp_of", "fingerprint", "time_of", "who_of", "general", "cache_size",
                            "cache_bytes", "max_query", NULL};
    PyObject *since, *fp_of, *fingerprint, *time_of, *who_of, *general;
    Py_ssize_t cache_size, cache_bytes, max_query;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOnnn", names, &since, &fp_of, &fingerprint, &time_of, &who_of,
                                     &general, &cache_size, &cache_bytes, &max_query))
        return -1;
    if (since != Py_None) {
        s->since_v = PyFloat_AsDouble(since);
        if (s->since_v == -1.0 && PyErr_Occurred()) return -1;
    }
    Py_INCREF(since); Py_XSETREF(s->since, since);
    Py_INCREF(fp_of); Py_XSETREF(s->fp_of, fp_of);
    Py_INCREF(fingerprint); Py_XSETREF(s->fingerprint, fingerprint);
    Py_INCREF(time_of); Py_XSETREF(s->time_of, time_of);
    Py_INCREF(who_of); Py_XSETREF(s->who_of, who_of);
    Py_INCREF(general); Py_XSETREF(s->general, general);
    s->keys_max = cache_size; s->keys_bytes_max = cache_bytes; s->max_query = max_query;
    Py_XSETREF(s->keys, PyDict_New());
    Py_XSETREF(s->index, PyDict_New());
    Py_XSETREF(s->run, PyList_New(0));
    Py_XSETREF(s->hours, PyDict_New());
    Py_XSETREF(s->times, PyDict_New());
    s->python_open = 0;
    if (!s->keys || !s->index || !s->run || !s->hours || !s->times) return -1;
    return 0;
}

static int Scanner_traverse(Scanner *s, visitproc visit, void *arg) {
    Py_VISIT(s->since); Py_VISIT(s->fp_of); Py_VISIT(s->fingerprint); Py_VISIT(s->time_of); Py_VISIT(s->who_of);
    Py_VISIT(s->general); Py_VISIT(s->keys); Py_VISIT(s->index); Py_VISIT(s->run); Py_VISIT(s->hours);
    Py_VISIT(s->times);
    return 0;
}

static int Scanner_clear(Scanner *s) {
    if (s->cls) { classes_clear(s); PyMem_Free(s->cls); s->cls = NULL; s->capcls = 0; }
    Py_CLEAR(s->since); Py_CLEAR(s->fp_of); Py_CLEAR(s->fingerprint); Py_CLEAR(s->time_of); Py_CLEAR(s->who_of);
    Py_CLEAR(s->general); Py_CLEAR(s->keys); Py_CLEAR(s->index); Py_CLEAR(s->run); Py_CLEAR(s->hours);
    Py_CLEAR(s->times); Py_CLEAR(s->last_fp);
    Py_CLEAR(s->last_time_raw); Py_CLEAR(s->last_time); Py_CLEAR(s->last_uh_raw); Py_CLEAR(s->last_who);
    Py_CLEAR(s->last_db);
    return 0;
}

static void Scanner_dealloc(Scanner *s) {
    PyObject_GC_UnTrack(s);
    if (s->index && s->cls) classes_clear(s);
    PyMem_Free(s->cls);
    s->cls = NULL;
    Scanner_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Scanner_methods[] = {
    {"feed", (PyCFunction)Scanner_feed, METH_O, "Read a list of records (bytes between separators)."},
    {"feed_block", (PyCFunction)Scanner_feed_block, METH_VARARGS,
     "feed_block(buffer, start, end): the records of buffer[start:end], read in place."},
    {"finish", (PyCFunction)Scanner_finish, METH_NOARGS, "The records still waiting: read as the stream's end."},
    {"take", (PyCFunction)Scanner_take, METH_NOARGS, "The classes read since the last take (and forget them)."},
    {"counts", (PyCFunction)Scanner_counts, METH_NOARGS, "events, skipped, filtered, since_take"},
    {"hours", (PyCFunction)Scanner_hours, METH_NOARGS, "hour -> [events, Query_time summed]"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pelbiot_jobs.queries._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Slow-log records of the usual layouts read into query classes (see digest.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_traverse = (traverseproc)Scanner_traverse,
    .tp_clear = (inquiry)Scanner_clear,
    .tp_methods = Scanner_methods,
};

/* Whether buffer[start:end] may hold a server start-up banner line: one pass for the four literal hints
 * slowlog.without_banners searches (", Version", "Command", "port:", "Port:"), by what each holds. */
static PyObject *py_banner_hint(PyObject *m, PyObject *args) {
    (void)m;
    Py_buffer view;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &start, &end)) return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start and end must lie within the buffer");
        return NULL;
    }
    const char *b = (const char *)view.buf, *stop = b + end;
    int found = 0;
    for (const char *p = b + start; !found && (p = memchr(p, 'V', (size_t)(stop - p))) != NULL; p++)
        found = stop - p >= 4 && memcmp(p, "Vers", 4) == 0;
    for (const char *p = b + start; !found && (p = memchr(p, 'C', (size_t)(stop - p))) != NULL; p++)
        found = stop - p >= 4 && memcmp(p, "Comm", 4) == 0;
    for (const char *p = b + start; !found && (p = memchr(p, ':', (size_t)(stop - p))) != NULL; p++)
        found = p - (b + start) >= 4 && (p[-4] == 'p' || p[-4] == 'P') && memcmp(p - 3, "ort", 3) == 0;
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

/* digest.Folded's bucket of each value of a buffer of doubles, counted: {bucket: count}, with the
 * Python rule 0 if v <= floor else 1 + int(log(v / floor) * scale) (the same libm log). */
static PyObject *py_bucket_counts(PyObject *m, PyObject *args) {
    (void)m;
    Py_buffer view;
    double floor_, scale;
    if (!PyArg_ParseTuple(args, "y*dd", &view, &floor_, &scale)) return NULL;
    if (view.len % (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a buffer of doubles expected");
        return NULL;
    }
    const double *v = (const double *)view.buf;
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(double);
    /* buckets of finite doubles above a floor of 1e-6 at 5 % stay under 15,000: counted in an array */
    enum { MAXB = 16384 };
    Py_ssize_t *count = PyMem_Calloc(MAXB, sizeof(Py_ssize_t));
    PyObject *out = count ? PyDict_New() : PyErr_NoMemory();
    for (Py_ssize_t i = 0; out && i < n; i++) {
        double x = v[i];
        long b = 0;
        if (!(x <= floor_)) {
            double l = log(x / floor_) * scale;
            if (!(l >= 0 && l < MAXB - 1)) {  /* inf, nan, or a floor and scale not digest.Folded's */
                PyErr_SetString(PyExc_OverflowError, "a value outside the buckets (infinite or NaN)");
                Py_CLEAR(out);
                break;
            }
            b = 1 + (long)l;
        }
        count[b]++;
    }
    for (long b = 0; out && b < MAXB; b++) {
        if (!count[b]) continue;
        PyObject *k = PyLong_FromLong(b), *c = PyLong_FromSsize_t(count[b]);
        if (k == NULL || c == NULL || PyDict_SetItem(out, k, c) < 0) Py_CLEAR(out);
        Py_XDECREF(k);
        Py_XDECREF(c);
    }
    PyMem_Free(count);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *py_cache_key(PyObject *m, PyObject *q) {
    (void)m;
    if (!PyBytes_Check(q)) { PyErr_SetString(PyExc_TypeError, "bytes expected"); return NULL; }
    return cache_key(PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q));
}

static PyObject *py_needs_python(PyObject *m, PyObject *q) {
    (void)m;
    if (!PyBytes_Check(q)) { PyErr_SetString(PyExc_TypeError, "bytes expected"); return NULL; }
    return PyBool_FromLong(needs_python(PyBytes_AS_STRING(q), PyBytes_GET_SIZE(q), PY_SSIZE_T_MAX));
}

static PyObject *py_is_fast(PyObject *m, PyObject *rec) {
    (void)m;
    if (!PyBytes_Check(rec)) { PyErr_SetString(PyExc_TypeError, "bytes expected"); return NULL; }
    Buf r = {PyBytes_AS_STRING(rec), PyBytes_GET_SIZE(rec)};
    Fast f;
    return PyBool_FromLong(parse_fast(r, &f));
}

static PyMethodDef module_methods[] = {
    {"bucket_counts", py_bucket_counts, METH_VARARGS, "bucket_counts(doubles, floor, scale) -> {bucket: count}"},
    {"banner_hint", py_banner_hint, METH_VARARGS, "Whether buffer[start:end] may hold a start-up banner line."},
    {"cache_key", py_cache_key, METH_O, "fingerprint.FingerprintCache's key of a query (for tests)."},
    {"needs_python", py_needs_python, METH_O, "Whether a query takes the Python fingerprint path (for tests)."},
    {"is_fast", py_is_fast, METH_O, "Whether a record is of a layout read here (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_scan", .m_size = -1, .m_methods = module_methods};

PyMODINIT_FUNC PyInit__scan(void) {
    for (int k = 0; k < N_NUM; k++)
        if (!(num_names[k] = PyBytes_FromString(NUM_NAMES[k]))) return NULL;
    for (int k = 0; k < N_FLAG; k++)
        if (!(flag_names[k] = PyBytes_FromString(FLAG_NAMES[k]))) return NULL;
    yes_bytes = PyBytes_FromString("Yes");
    s_query = PyUnicode_InternFromString("query");
    s_attrs = PyUnicode_InternFromString("attrs");
    s_ts = PyUnicode_InternFromString("ts");
    s_user = PyUnicode_InternFromString("user");
    s_host = PyUnicode_InternFromString("host");
    s_db = PyUnicode_InternFromString("db");
    if (!yes_bytes || !s_query || !s_attrs || !s_ts || !s_user || !s_host || !s_db) return NULL;
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) { Py_DECREF(&ScannerType); Py_DECREF(m); return NULL; }
    return m;
}
