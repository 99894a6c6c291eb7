/* Decoding a series twin's cells step by step, compiled (optional accelerator).
 *
 * The same model and the same float operations as the Python decoder (series_steps.py's
 * `_decode_cells`, series_moments.py's `Stepper`, cells.py, series_calendar.py's
 * `first_rows`), and fixedmath.py's exp, log and normal CDF, so every row handed to the range
 * decoder equals the encoder's bit for bit (compiled with -ffp-contract=off: every product and
 * sum is one IEEE-754 operation, in the Python order). The tests decode the same files both ways.
 *
 * Per step: the regime indicators and volatility factors (from earlier steps); then per column
 * in chain order its mean and scale, the missing and escape flags, the cell by bisection (each
 * level's row written into `row`, a (ROW,) float64 numpy array, then
 * `decode(Categorical(row, perfect=False))` called on the range decoder; a flag's model is
 * built once), its z, and the scatter of its terms into the steps it feeds.
 * Rare events call back into Python (`rare(kind, column)`): 0 a value outside the support,
 * 1 / 2 the distance below / above the level-0 window, 3 a calendar column's other cell,
 * 4 / 5 a damaged file (raises).
 *
 * Also exported: the vectorised exp, log and ndtr of fixedmath.py, and for the encoder
 * (_encoder.h) the bisection rows of many values at once and the means' term sums.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_fixedmath.h"
#include "_cells.h"

#define MAX_WINDOWS 8
#define MISSING INT64_MIN
#define MAX_COLUMNS 256 /* series_compiled.MAX_COLUMNS */

/* ------------------------------------------------------------------------- buffers */

typedef struct {
    Py_buffer views[40];
    int n;
} Views;

static void views_release(Views *v) {
    for (int i = 0; i < v->n; i++) PyBuffer_Release(&v->views[i]);
    v->n = 0;
}

/* The buffer of obj.name (float64 or int64 by itemsize) with at least `count` items. */
static void *attr_buffer(Views *v, PyObject *obj, const char *name, Py_ssize_t count,
                         int writable) {
    PyObject *a = PyObject_GetAttrString(obj, name);
    if (!a) return NULL;
    Py_buffer *b = &v->views[v->n];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    int rc = PyObject_GetBuffer(a, b, flags);
    Py_DECREF(a);
    if (rc < 0) return NULL;
    v->n++;
    if (count < 0 || b->itemsize != 8 || b->len / 8 < count) {
        PyErr_Format(PyExc_ValueError, "series plan: %s has the wrong type or size", name);
        return NULL;
    }
    return b->buf;
}

static int attr_long(PyObject *obj, const char *name, int64_t *out) {
    PyObject *a = PyObject_GetAttrString(obj, name);
    if (!a) return -1;
    *out = PyLong_AsLongLong(a);
    Py_DECREF(a);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* ------------------------------------------------------------------------- the plan */

enum { F_DELTA, F_CENTER, F_SCALE, F_HALF, F_LOG_FLOOR, NF };
enum { I_TRANSFORM, I_HAS_LO, I_LO, I_HAS_HI, I_HI, I_NCOMP, I_COMP_AT, I_MISS, I_ESC, I_CAL, NI };
enum { C_REST, C_ETA, C_CENTER, C_SCALE, C_DELTA, NC };

typedef struct {
    int64_t n, d, m, h0, stride, max_lag, k, n_windows, n_cal, cal_width;
    const int64_t *order, *offs, *run_at, *run_start, *run_len, *windows, *col_i;
    const int64_t *cal_nv, *cal_cells;
    double *P;
    const double *coefs, *S, *theta, *heps, *Zh, *col_f, *comp;
    const double *cal_f, *cal_nmass, *cal_grid, *cal_K, *cal_lam;
    double log_cap;
    int64_t *out;
    /* state */
    double *Z;    /* (m + n, d) z of every row so far */
    double *cs;   /* (m + n - h0 + 1, d) running residual sums */
    double *last; /* (d,) last non-missing z */
    double mean[MAX_COLUMNS], h[MAX_COLUMNS];
    int up[MAX_COLUMNS];
    int64_t row;
    /* coding */
    PyObject *decode, *model, *flags, *row_obj, *rare;
    double *rowbuf;
} Plan;

/* The terms of the runs (-1 when run_at does not start at 0 and rise, or a run is empty). */
static int64_t n_terms(const int64_t *run_at, const int64_t *run_len, int64_t d) {
    int64_t total = 0;
    if (run_at[0] != 0) return -1;
    for (int64_t j = 0; j < d; j++) {
        if (run_at[j + 1] < run_at[j]) return -1;
        for (int64_t r = run_at[j]; r < run_at[j + 1]; r++) {
            if (run_len[r] < 1) return -1;
            total += run_len[r];
        }
    }
    return total;
}

/* Every run: its terms in order, their offsets consecutive and inside a row's reach. */
static int check_runs(const Plan *p) {
    int64_t next = 0, top = p->max_lag * p->stride + p->stride - 1;
    for (int64_t r = 0; r < p->run_at[p->d]; r++) {
        int64_t a = p->run_start[r], len = p->run_len[r];
        int bad = a != next || len < 1 || p->offs[a] < 0 || p->offs[a] + len - 1 > top;
        for (int64_t i = 1; !bad && i < len; i++) bad = p->offs[a + i] != p->offs[a] + i;
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "series plan: a run of terms is out of range");
            return -1;
        }
        next = a + len;
    }
    return 0;
}

static int plan_read(Plan *p, Views *v, PyObject *spec) {
    if (attr_long(spec, "n", &p->n) || attr_long(spec, "d", &p->d) || attr_long(spec, "m", &p->m) ||
        attr_long(spec, "h0", &p->h0) || attr_long(spec, "stride", &p->stride) ||
        attr_long(spec, "max_lag", &p->max_lag) || attr_long(spec, "k", &p->k) ||
        attr_long(spec, "n_windows", &p->n_windows) || attr_long(spec, "n_cal", &p->n_cal) ||
        attr_long(spec, "cal_width", &p->cal_width))
        return -1;
    int64_t n = p->n, d = p->d, m = p->m, nc = p->n_cal;
    if (d < 1 || d > MAX_COLUMNS || n < 0 || m < 0 || p->h0 < 0 || p->h0 > m ||
        p->n_windows > MAX_WINDOWS ||
        (p->stride != d && p->stride != 2 * d)) {
        PyErr_SetString(PyExc_ValueError, "series plan: sizes out of range");
        return -1;
    }
    PyObject *cap = PyObject_GetAttrString(spec, "log_cap");
    if (!cap) return -1;
    p->log_cap = PyFloat_AsDouble(cap);
    Py_DECREF(cap);
    if (PyErr_Occurred()) return -1;
    if (!(p->order = attr_buffer(v, spec, "order", d, 0)) ||
        !(p->run_at = attr_buffer(v, spec, "run_at", d + 1, 0)) ||
        !(p->run_start = attr_buffer(v, spec, "run_start", p->run_at[d], 0)) ||
        !(p->run_len = attr_buffer(v, spec, "run_len", p->run_at[d], 0)) ||
        !(p->offs = attr_buffer(v, spec, "offs", n_terms(p->run_at, p->run_len, d), 0)) ||
        !(p->coefs = attr_buffer(v, spec, "coefs", n_terms(p->run_at, p->run_len, d), 0)) ||
        !(p->P = attr_buffer(v, spec, "P", (m + n + p->max_lag + 1) * p->stride, 1)) ||
        !(p->S = attr_buffer(v, spec, "S", n * d, 0)) ||
        !(p->windows = attr_buffer(v, spec, "windows", p->n_windows, 0)) ||
        !(p->theta = attr_buffer(v, spec, "theta", d * (1 + p->n_windows), 0)) ||
        !(p->heps = attr_buffer(v, spec, "heps", d, 0)) ||
        !(p->Zh = attr_buffer(v, spec, "Zh", m * d, 0)) ||
        !(p->col_f = attr_buffer(v, spec, "col_f", d * NF, 0)) ||
        !(p->col_i = attr_buffer(v, spec, "col_i", d * NI, 0)) ||
        !(p->cal_f = attr_buffer(v, spec, "cal_f", nc * NC, 0)) ||
        !(p->cal_nv = attr_buffer(v, spec, "cal_nv", nc, 0)) ||
        !(p->cal_cells = attr_buffer(v, spec, "cal_cells", nc * ROW, 0)) ||
        !(p->cal_nmass = attr_buffer(v, spec, "cal_nmass", nc * ROW, 0)) ||
        !(p->cal_grid = attr_buffer(v, spec, "cal_grid", nc * ROW, 0)) ||
        !(p->cal_K = attr_buffer(v, spec, "cal_K", nc * n * p->cal_width, 0)) ||
        !(p->cal_lam = attr_buffer(v, spec, "cal_lam", nc * n, 0)) ||
        !(p->out = attr_buffer(v, spec, "out", n * d, 1)))
        return -1;
    if (!(p->comp = attr_buffer(v, spec, "comp", 0, 0))) return -1;
    Py_ssize_t n_comp = v->views[v->n - 1].len / 8;
    for (int64_t j = 0; j < d; j++) {
        const int64_t *ci = p->col_i + j * NI;
        if (p->order[j] < 0 || p->order[j] >= d || ci[I_NCOMP] < 1 || ci[I_COMP_AT] < 0 ||
            3 * (ci[I_COMP_AT] + ci[I_NCOMP]) > n_comp || ci[I_CAL] >= nc || ci[I_TRANSFORM] < 0 ||
            ci[I_TRANSFORM] > 2) {
            PyErr_SetString(PyExc_ValueError, "series plan: a column is out of range");
            return -1;
        }
    }
    for (int64_t c = 0; c < nc; c++)
        if (p->cal_nv[c] < 1 || p->cal_nv[c] + 2 > ROW || p->cal_nv[c] > p->cal_width) {
            PyErr_SetString(PyExc_ValueError, "series plan: a calendar column is out of range");
            return -1;
        }
    return check_runs(p);
}

/* ------------------------------------------------------------------------- moments */

static double volatility(const Plan *p, int64_t j, const double *sums) {
    const double *th = p->theta + j * (1 + p->n_windows);
    double x = th[0], eps = p->heps[j];
    for (int64_t w = 0; w < p->n_windows; w++)
        x = x + th[1 + w] * fx_log(sums[w] / (double)p->windows[w] + eps);
    return fx_exp(x < -p->log_cap ? -p->log_cap : (x > p->log_cap ? p->log_cap : x));
}

/* z[r - lag] of column j as the Python list `z[j]` (r items so far) indexes it. */
static int z_at(const Plan *p, int64_t j, int64_t r, int64_t lag, double *out) {
    int64_t i = r - lag;
    if (i < 0) i += r;
    if (i < 0) {
        PyErr_SetString(PyExc_IndexError, "series plan: a regime window is too long");
        return -1;
    }
    *out = p->Z[i * p->d + j];
    return 0;
}

static int step_begin(Plan *p) {
    int64_t r = p->row, d = p->d;
    if (p->k) {
        for (int64_t j = 0; j < d; j++) {
            double recent, before, z;
            if (z_at(p, j, r, 1, &recent)) return -1;
            for (int64_t lag = 2; lag <= p->k; lag++) {
                if (z_at(p, j, r, lag, &z)) return -1;
                recent += z;
            }
            if (z_at(p, j, r, p->k + 1, &before)) return -1;
            for (int64_t lag = p->k + 2; lag <= 2 * p->k; lag++) {
                if (z_at(p, j, r, lag, &z)) return -1;
                before += z;
            }
            p->up[j] = recent > before;
        }
    }
    if (p->n_windows && r >= p->m) {
        int64_t x = r - p->h0;
        double sums[MAX_WINDOWS];
        for (int64_t j = 0; j < d; j++) {
            for (int64_t w = 0; w < p->n_windows; w++) {
                int64_t back = x - p->windows[w];
                if (back < 0) back += x + 1; /* the Python list's negative index */
                if (back < 0 || back > x) {
                    PyErr_SetString(PyExc_IndexError, "series plan: a window is too long");
                    return -1;
                }
                sums[w] = p->cs[x * d + j] - p->cs[back * d + j];
            }
            p->h[j] = volatility(p, j, sums);
        }
    }
    return 0;
}

static void moment(const Plan *p, int64_t j, double *mean, double *s) {
    int64_t r = p->row, base = r * p->stride;
    *mean = p->P[base + j];
    if (p->stride == 2 * p->d && p->up[j]) *mean = *mean + p->P[base + p->d + j];
    *s = 1.0;
    if (r >= p->m) {
        *s = p->S[(r - p->m) * p->d + j];
        if (p->n_windows) *s = *s * p->h[j];
    }
}

/* dst += c z, element by element (a vector loop: each element is one IEEE add of a product) */
static void add_scaled(double *restrict dst, const double *restrict c, int64_t n, double z) {
    for (int64_t i = 0; i < n; i++) dst[i] = dst[i] + c[i] * z;
}

/* Stepper.push: a value's terms added to the later rows' sums, run by run. */
static void push(Plan *p, int64_t j, double z) {
    p->Z[p->row * p->d + j] = z;
    double *at = p->P + p->row * p->stride;
    for (int64_t r = p->run_at[j]; r < p->run_at[j + 1]; r++) {
        int64_t a = p->run_start[r];
        add_scaled(at + p->offs[a], p->coefs + a, p->run_len[r], z);
    }
}

static void step_end(Plan *p) {
    int64_t d = p->d, r = p->row;
    if (p->n_windows && r >= p->h0) {
        int64_t x = r - p->h0;
        for (int64_t j = 0; j < d; j++)
            p->cs[(x + 1) * d + j] = p->cs[x * d + j] + fabs(p->Z[r * d + j] - p->mean[j]);
    }
    p->row++;
}

/* ------------------------------------------------------------------------- cells */

static Col column(const Plan *p, int64_t j) {
    const double *f = p->col_f + j * NF;
    const int64_t *i = p->col_i + j * NI;
    Col c = {(int)i[I_TRANSFORM], (int)i[I_HAS_LO], (int)i[I_HAS_HI], i[I_LO], i[I_HI],
             f[F_DELTA], f[F_CENTER], f[F_SCALE], f[F_HALF], f[F_LOG_FLOOR], (int)i[I_NCOMP],
             p->comp + 3 * i[I_COMP_AT]};
    return c;
}

/* The symbol the range decoder reads under `model` (-1 with an exception set). */
static int64_t decode_model(Plan *p, PyObject *model) {
    PyObject *res = PyObject_CallOneArg(p->decode, model);
    if (!res) return -1;
    int64_t sym = PyLong_AsLongLong(res);
    Py_DECREF(res);
    if (sym < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "the range decoder returned a negative symbol");
    return sym;
}

/* One decoded symbol under the row in p->rowbuf: `decode(model(row, None, False))`, i.e.
 * Categorical(row, lazy=None, perfect=False), the categorical built from the row as the family
 * builds it from a row of a batch (positional: keywords cost a third of the call). */
static int64_t decode(Plan *p) {
    PyObject *args[4] = {NULL, p->row_obj, Py_None, Py_False};
    PyObject *model = PyObject_Vectorcall(p->model, args + 1, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                          NULL);
    if (!model) return -1;
    int64_t sym = decode_model(p, model);
    Py_DECREF(model);
    return sym;
}

/* The Python callback for a rare event: its integer result (error: an exception, ok = 0). */
static int64_t rare(Plan *p, int kind, int64_t j, int *ok) {
    PyObject *res = PyObject_CallFunction(p->rare, "iL", kind, (long long)j);
    *ok = 0;
    if (!res) return 0;
    int64_t out = PyLong_AsLongLong(res);
    Py_DECREF(res);
    if (out == -1 && PyErr_Occurred()) return 0;
    *ok = 1;
    return out;
}

/* A flag's symbol (0/1) under its model, built once (-1 on error). */
static int64_t flag(Plan *p, int64_t j, int which) {
    return decode_model(p, PyTuple_GET_ITEM(p->flags, j * 2 + which));
}

/* series_steps._decode_cell: the cell under mean + s e, by bisection (ok = 0 on error). */
static int64_t decode_cell(Plan *p, int64_t j, double mean, double s, int *ok) {
    Col c = column(p, j);
    int64_t lo, hi, e[W + 1];
    double z[W + 3];
    *ok = 0;
    window(&c, mean, s, &lo, &hi);
    split(lo, hi, e);
    z[0] = -INFINITY;
    for (int i = 0; i <= W; i++) z[i + 1] = edge_z(&c, e[i]);
    z[W + 2] = INFINITY;
    masses(&c, z, W + 3, mean, s, p->rowbuf);
    fallback(p->rowbuf, e, 1);
    int64_t sym = decode(p);
    if (sym < 0) return 0;
    if (sym == 0) {
        if (c.has_lo && lo <= c.lo_k) return rare(p, 4, j, ok);
        int64_t g = rare(p, 1, j, ok);
        return lo - g;
    }
    if (sym == ROW - 1) {
        int64_t g = rare(p, 2, j, ok);
        return hi + g;
    }
    lo = e[sym - 1];
    hi = e[sym] - 1;
    while (hi > lo) {
        split(lo, hi, e);
        for (int i = 0; i <= W; i++) z[i] = edge_z(&c, e[i]);
        masses(&c, z, W + 1, mean, s, p->rowbuf);
        p->rowbuf[W] = p->rowbuf[W + 1] = 0.0;
        fallback(p->rowbuf, e, 0);
        sym = decode(p);
        if (sym < 0) return 0;
        if (sym >= W) sym = W - 1; /* never for a row whose last entries are 0 */
        lo = e[sym];
        hi = e[sym + 1] - 1;
    }
    *ok = 1;
    return lo;
}

/* ------------------------------------------------------------------------- calendar */

/* series_calendar.first_rows for step t, given the column's z before it, into p->rowbuf. */
static void calendar_row(Plan *p, int64_t c, int64_t t, double z_prev) {
    const double *f = p->cal_f + c * NC, *grid = p->cal_grid + c * ROW;
    const double *K = p->cal_K + (c * p->n + t) * p->cal_width, *nmass = p->cal_nmass + c * ROW;
    int64_t nv = p->cal_nv[c], prev = -1, pos = 0;
    double kk = nearbyint((f[C_CENTER] + f[C_SCALE] * z_prev) / f[C_DELTA]);
    while (pos < nv && grid[pos] < kk) pos++;
    if (pos == nv) pos = nv - 1;
    if (grid[pos] == kk) prev = pos;
    double lam = p->cal_lam[c * p->n + t], eta = f[C_ETA], q[ROW];
    for (int64_t v = 0; v < nv; v++) q[v] = (1.0 - lam) * K[v];
    if (prev >= 0) q[prev] += lam;
    memset(p->rowbuf, 0, ROW * sizeof(double));
    for (int64_t v = 0; v < nv; v++) p->rowbuf[v] = (1.0 - eta) * q[v] + eta * nmass[v];
    p->rowbuf[nv] = eta * f[C_REST];
    p->rowbuf[nv + 1] = prev >= 0 ? 0.0 : (1.0 - eta) * lam;
}

/* ------------------------------------------------------------------------- the loop */

/* One value of column j at step t: flags, then its cell (or a calendar value). */
static int64_t decode_value(Plan *p, int64_t j, int64_t t, double mean, double s, int *ok) {
    const int64_t *ci = p->col_i + j * NI;
    *ok = 0;
    if (ci[I_MISS]) {
        int64_t f = flag(p, j, 0);
        if (f < 0) return 0;
        if (f) {
            *ok = 1;
            return MISSING;
        }
    }
    if (ci[I_ESC]) {
        int64_t f = flag(p, j, 1);
        if (f < 0) return 0;
        if (f) return rare(p, 0, j, ok);
    }
    int64_t c = ci[I_CAL];
    if (c < 0) return decode_cell(p, j, mean, s, ok);
    calendar_row(p, c, t, p->last[j]);
    int64_t sym = decode(p), nv = p->cal_nv[c];
    if (sym < 0) return 0;
    if (sym < nv) {
        *ok = 1;
        return p->cal_cells[c * ROW + sym];
    }
    return rare(p, sym > nv ? 5 : 3, j, ok);
}

static int run(Plan *p) {
    int64_t d = p->d, m = p->m;
    for (int64_t r = 0; r < m; r++) { /* the history, as Stepper.__init__ */
        if (r >= p->h0 && step_begin(p)) return -1;
        for (int64_t a = 0; a < d; a++) {
            int64_t i = p->order[a];
            double s;
            moment(p, i, &p->mean[i], &s);
            push(p, i, p->Zh[r * d + i]);
        }
        step_end(p);
    }
    for (int64_t j = 0; j < d; j++) p->last[j] = m ? p->Zh[(m - 1) * d + j] : 0.0;
    for (int64_t t = 0; t < p->n; t++) {
        if (step_begin(p)) return -1;
        for (int64_t a = 0; a < d; a++) {
            int64_t i = p->order[a];
            double mean, s, z;
            int ok;
            moment(p, i, &mean, &s);
            p->mean[i] = mean;
            int64_t k = decode_value(p, i, t, mean, s, &ok);
            if (!ok) return -1;
            if (k == MISSING)
                z = p->last[i];
            else {
                Col c = column(p, i);
                z = z_of(&c, k);
                p->last[i] = z;
            }
            p->out[t * d + i] = k;
            push(p, i, z);
        }
        step_end(p);
    }
    return 0;
}

static PyObject *decode_steps(PyObject *self, PyObject *args) {
    PyObject *spec, *decode_fn, *model, *flags, *row_obj, *rare_fn;
    if (!PyArg_ParseTuple(args, "OOOO!OO", &spec, &decode_fn, &model, &PyTuple_Type, &flags,
                          &row_obj, &rare_fn))
        return NULL;
    if (!PIECES) {
        PyErr_SetString(PyExc_RuntimeError, "_series: the normal table was not set");
        return NULL;
    }
    Views v = {.n = 0};
    Plan p;
    memset(&p, 0, sizeof(p));
    p.decode = decode_fn;
    p.model = model;
    p.flags = flags;
    p.row_obj = row_obj;
    p.rare = rare_fn;
    PyObject *result = NULL;
    Py_buffer rb;
    if (PyObject_GetBuffer(row_obj, &rb, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (rb.len != ROW * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "_series: the row buffer must hold ROW float64");
        goto done;
    }
    p.rowbuf = rb.buf;
    if (plan_read(&p, &v, spec) < 0) goto done;
    if (PyTuple_GET_SIZE(flags) != 2 * p.d) {
        PyErr_SetString(PyExc_ValueError, "_series: one flag model per column and flag");
        goto done;
    }
    p.Z = PyMem_Calloc((size_t)((p.m + p.n) * p.d + 1), sizeof(double));
    p.cs = PyMem_Calloc((size_t)((p.m + p.n - p.h0 + 2) * p.d), sizeof(double));
    p.last = PyMem_Calloc((size_t)p.d, sizeof(double));
    if (!p.Z || !p.cs || !p.last) {
        PyErr_NoMemory();
        goto done;
    }
    for (int64_t j = 0; j < p.d; j++) p.h[j] = 1.0;
    if (run(&p) == 0) result = Py_NewRef(Py_None);
done:
    PyMem_Free(p.Z);
    PyMem_Free(p.cs);
    PyMem_Free(p.last);
    views_release(&v);
    PyBuffer_Release(&rb);
    return result;
}

#include "_encoder.h"
#include "_dense.h"

/* ------------------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"set_constants", set_constants, METH_VARARGS, "set_constants(consts, table, pieces, degree)"},
    {"exp", py_exp, METH_VARARGS, "exp(x, out): fixedmath.exp elementwise"},
    {"log", py_log, METH_VARARGS, "log(x, out): fixedmath.log elementwise"},
    {"ndtr", py_ndtr, METH_VARARGS, "ndtr(x, out): fixedmath.ndtr elementwise"},
    {"lower_tail", py_lower_tail, METH_VARARGS, "lower_tail(t, out): fixedmath.lower_tail"},
    {"level_rows", level_rows, METH_VARARGS,
     "level_rows(col_f, col_i, comp, e, mean, s, out, outer): cells.level0 / level rows"},
    {"softmax_rows", softmax_rows, METH_VARARGS,
     "softmax_rows(h, wT, b, seen, prior, eps, out): fixedmath.softmax_rows"},
    {"pull_terms", pull_terms, METH_VARARGS,
     "pull_terms(C, Zt, lag, src, coef, term_at, r0, out): series_moments._pull's sums"},
    {"decode_steps", decode_steps, METH_VARARGS,
     "decode_steps(plan, decode, model, row, rare): a series' cells (see series_compiled)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_series", NULL, -1, methods};

PyMODINIT_FUNC PyInit__series(void) { return PyModule_Create(&module); }
