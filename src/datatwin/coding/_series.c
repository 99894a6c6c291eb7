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
 * `decode(Categorical(row, perfect=False))` called on the range decoder), its z, and the scatter of its terms into the steps it feeds.
 * Rare events call back into Python (`rare(kind, column)`): 0 a value outside the support,
 * 1 / 2 the distance below / above the level-0 window, 3 a calendar column's other cell,
 * 4 / 5 a damaged file (raises).
 *
 * Also exported: the vectorised exp, log and ndtr of fixedmath.py, and the bisection rows of
 * many values at once (`level_rows`), for the encoder.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define W 32
#define ROW (W + 2)
#define MAX_PIECES 512
#define MAX_DEGREE 10
#define MAX_WINDOWS 8
#define MISSING INT64_MIN
#define MAX_COLUMNS 256 /* series_compiled.MAX_COLUMNS */

/* ------------------------------------------------------------------------- fixed math */

static double LN2_HI, LN2_LO, INV_LN2, SQRT1_2, EXP_MIN, EXP_MAX;
static double EXP_TERMS[7], LOG_TERMS[12], EXP2[64];
static double TABLE[MAX_PIECES][MAX_DEGREE + 1];
static int PIECES = 0, PER_UNIT = 1;
static double T_LIMIT = 0.0; /* PIECES / PER_UNIT */

/* ldexp(p, k) for 0.5 <= p < 2: a product by 2^k built from its bits while the result stays
 * normal (exact, so equal to ldexp); ldexp itself below that. */
static double times_pow2(double p, int64_t k) {
    if (k < -1021 || k > 1022) return ldexp(p, (int)k);
    union {
        uint64_t u;
        double d;
    } s = {.u = (uint64_t)(k + 1023) << 52};
    return p * s.d;
}

static double fx_exp(double x) {
    if (!(x >= EXP_MIN && x <= EXP_MAX)) return x > EXP_MAX ? INFINITY : (x < EXP_MIN ? 0.0 : x);
    double n = nearbyint(x * (64.0 * INV_LN2));
    double r = (x - n * (LN2_HI / 64.0)) - n * (LN2_LO / 64.0);
    const double *c = EXP_TERMS; /* Estrin's scheme, as fixedmath._exp_poly */
    double r2 = r * r, r4 = r2 * r2;
    double s0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2;
    double s1 = (c[4] + c[5] * r) + c[6] * r2;
    double p = s0 + s1 * r4;
    int64_t ni = (int64_t)n, j = ni & 63;
    return times_pow2(EXP2[j] * p, (ni - j) >> 6);
}

static double fx_log(double x) {
    if (!(x > 0 && x < INFINITY)) return x == 0 ? -INFINITY : (x == INFINITY ? INFINITY : NAN);
    int e;
    double m = frexp(x, &e);
    if (m < SQRT1_2) {
        m = m * 2.0;
        e -= 1;
    }
    double ed = (double)e, f = m - 1.0, s = f / (2.0 + f), s2 = s * s;
    double p = LOG_TERMS[11];
    for (int i = 10; i >= 0; i--) p = p * s2 + LOG_TERMS[i];
    return ed * LN2_HI + (ed * LN2_LO + s * p);
}

static double fx_lower_tail(double t) {
    if (!(t < T_LIMIT)) return t != t ? t : 0.0;
    double i = floor(t * PER_UNIT), x = 2.0 * (t * PER_UNIT - i) - 1.0;
    const double *c = TABLE[(int)i]; /* degree 10 by Estrin's scheme, as fixedmath._q_poly */
    double x2 = x * x, x4 = x2 * x2, x8 = x4 * x4;
    double q0 = (c[0] + c[1] * x) + (c[2] + c[3] * x) * x2;
    double q1 = (c[4] + c[5] * x) + (c[6] + c[7] * x) * x2;
    double q2 = (c[8] + c[9] * x) + c[10] * x2;
    return fx_exp(-(t * t) * 0.5) * ((q0 + q1 * x4) + q2 * x8);
}

static double fx_ndtr(double x) {
    double tail = fx_lower_tail(fabs(x));
    return x > 0 ? 1.0 - tail : tail;
}

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
static void *attr_buffer(Views *v, PyObject *obj, const char *name, Py_ssize_t count, int writable) {
    PyObject *a = PyObject_GetAttrString(obj, name);
    if (!a) return NULL;
    Py_buffer *b = &v->views[v->n];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    int rc = PyObject_GetBuffer(a, b, flags);
    Py_DECREF(a);
    if (rc < 0) return NULL;
    v->n++;
    if (b->itemsize != 8 || b->len / 8 < count) {
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
    const int64_t *order, *offs, *offs_at, *windows, *col_i, *cal_nv, *cal_cells;
    double *P;
    const double *coefs, *S, *theta, *heps, *Zh, *col_f, *comp, *flag_rows;
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
    PyObject *decode, *model, *kwnames, *row_obj, *rare;
    double *rowbuf;
} Plan;

static int plan_read(Plan *p, Views *v, PyObject *spec) {
    if (attr_long(spec, "n", &p->n) || attr_long(spec, "d", &p->d) || attr_long(spec, "m", &p->m) ||
        attr_long(spec, "h0", &p->h0) || attr_long(spec, "stride", &p->stride) ||
        attr_long(spec, "max_lag", &p->max_lag) || attr_long(spec, "k", &p->k) ||
        attr_long(spec, "n_windows", &p->n_windows) || attr_long(spec, "n_cal", &p->n_cal) ||
        attr_long(spec, "cal_width", &p->cal_width))
        return -1;
    int64_t n = p->n, d = p->d, m = p->m, nc = p->n_cal;
    if (d < 1 || d > MAX_COLUMNS || n < 0 || m < 0 || p->h0 < 0 || p->h0 > m || p->n_windows > MAX_WINDOWS ||
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
        !(p->offs_at = attr_buffer(v, spec, "offs_at", d + 1, 0)) ||
        !(p->offs = attr_buffer(v, spec, "offs", p->offs_at[d], 0)) ||
        !(p->coefs = attr_buffer(v, spec, "coefs", p->offs_at[d], 0)) ||
        !(p->P = attr_buffer(v, spec, "P", (m + n + p->max_lag + 1) * p->stride, 1)) ||
        !(p->S = attr_buffer(v, spec, "S", n * d, 0)) ||
        !(p->windows = attr_buffer(v, spec, "windows", p->n_windows, 0)) ||
        !(p->theta = attr_buffer(v, spec, "theta", d * (1 + p->n_windows), 0)) ||
        !(p->heps = attr_buffer(v, spec, "heps", d, 0)) ||
        !(p->Zh = attr_buffer(v, spec, "Zh", m * d, 0)) ||
        !(p->col_f = attr_buffer(v, spec, "col_f", d * NF, 0)) ||
        !(p->col_i = attr_buffer(v, spec, "col_i", d * NI, 0)) ||
        !(p->flag_rows = attr_buffer(v, spec, "flag_rows", d * 2 * ROW, 0)) ||
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
            PyErr_SetString(PyExc_ValueError, "series plan: a column's description is out of range");
            return -1;
        }
    }
    for (int64_t c = 0; c < nc; c++)
        if (p->cal_nv[c] < 1 || p->cal_nv[c] + 2 > ROW || p->cal_nv[c] > p->cal_width) {
            PyErr_SetString(PyExc_ValueError, "series plan: a calendar column is out of range");
            return -1;
        }
    for (int64_t i = 0; i < p->offs_at[d]; i++)
        if (p->offs[i] < 0 || p->offs[i] > p->max_lag * p->stride + p->stride - 1) {
            PyErr_SetString(PyExc_ValueError, "series plan: a term's offset is out of range");
            return -1;
        }
    return 0;
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
        PyErr_SetString(PyExc_IndexError, "series plan: a regime window reaches before the history");
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

static void push(Plan *p, int64_t j, double z) {
    p->Z[p->row * p->d + j] = z;
    double *at = p->P + p->row * p->stride;
    for (int64_t i = p->offs_at[j]; i < p->offs_at[j + 1]; i++)
        at[p->offs[i]] = at[p->offs[i]] + p->coefs[i] * z;
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

typedef struct {
    int transform; /* 0 none, 1 sqrt, 2 log */
    int has_lo, has_hi;
    int64_t lo_k, hi_k;
    double delta, center, scale, half, log_floor;
    int n_comp;
    const double *comp; /* (n_comp, 3): w, mu, sd */
} Col;

static Col column(const Plan *p, int64_t j) {
    const double *f = p->col_f + j * NF;
    const int64_t *i = p->col_i + j * NI;
    Col c = {(int)i[I_TRANSFORM], (int)i[I_HAS_LO], (int)i[I_HAS_HI], i[I_LO], i[I_HI],
             f[F_DELTA], f[F_CENTER], f[F_SCALE], f[F_HALF], f[F_LOG_FLOOR], (int)i[I_NCOMP],
             p->comp + 3 * i[I_COMP_AT]};
    return c;
}

static int64_t clip_k(const Col *c, int64_t k) {
    if (c->has_lo && k < c->lo_k) k = c->lo_k;
    if (c->has_hi && k > c->hi_k) k = c->hi_k;
    return k;
}

/* ColumnCode.z_of of one cell */
static double z_of(const Col *c, int64_t k) {
    double x = (double)clip_k(c, k) * c->delta, f = x;
    if (c->transform == 1) f = sqrt(x > 0.0 ? x : 0.0);
    if (c->transform == 2) f = fx_log(x);
    double z = (f - c->center) / c->scale;
    if (c->transform == 2 && !isfinite(z)) z = c->log_floor;
    return z;
}

static double inverse(const Col *c, double z) {
    if (c->transform == 1) return z > 0 ? z * z : 0.0;
    if (c->transform == 2) return fx_exp(z < 700.0 || z != z ? z : 700.0);
    return z;
}

static int64_t to_cell(double x) {
    double k = fmin(fmax(x, -1152921504606846976.0), 1152921504606846976.0); /* +-2^60 */
    return (int64_t)k;
}

/* ColumnCode.window: the level-0 window [lo, hi] around mean. */
static void window(const Col *c, double mean, double s, int64_t *lo, int64_t *hi) {
    double a = s * c->half;
    double zl = (mean + a * -1.0) * c->scale + c->center;
    double zh = (mean + a * 1.0) * c->scale + c->center;
    int64_t kl = clip_k(c, to_cell(floor(inverse(c, zl) / c->delta)));
    int64_t kh = clip_k(c, to_cell(ceil(inverse(c, zh) / c->delta)));
    *lo = kl;
    *hi = kh > kl ? kh : kl;
}

/* split_one: W + 1 edges cutting [lo, hi] into min(W, cells) parts. */
static void split(int64_t lo, int64_t hi, int64_t *e) {
    int64_t n = hi - lo + 1, b = n < W ? n : W, q = n / b, r = n % b;
    for (int64_t i = 0; i <= W; i++) {
        int64_t ii = i < b ? i : b;
        e[i] = lo + ii * q + (ii * r) / b;
    }
}

/* ColumnCode.edges_z of one edge */
static double edge_z(const Col *c, int64_t e) {
    double x = ((double)e - 0.5) * c->delta, f = x;
    if (c->transform == 1) f = sqrt(x > 0.0 ? x : 0.0);
    if (c->transform == 2) f = fx_log(x);
    double z = (f - c->center) / c->scale;
    if (c->has_lo && e <= c->lo_k) z = -INFINITY;
    if (c->has_hi && e > c->hi_k) z = INFINITY;
    if (c->transform == 2 && z != z) z = -INFINITY;
    return z;
}

/* The mixture's lower (upper = 0) or upper (upper = 1) CDF at v, summed in component order. */
static double cdf(const Col *c, double v, int upper) {
    double acc = 0.0;
    for (int k = 0; k < c->n_comp; k++) {
        const double *q = c->comp + 3 * k;
        double u = (v - q[1]) / q[2];
        double t = q[0] * fx_ndtr(upper ? -u : u);
        acc = k ? acc + t : t;
    }
    return acc;
}

/* The lower (upper = 0) or upper CDF at edge i, computed once per edge (and once for a run
 * of equal edges: a range narrower than W parts repeats its last edge). */
static double cdf_at(const Col *c, const double *v, int i, int upper, double *C, unsigned char *has) {
    if (!has[i]) {
        C[i] = (i > 0 && has[i - 1] && v[i] == v[i - 1]) ? C[i - 1] : cdf(c, v[i], upper);
        has[i] = 1;
    }
    return C[i];
}

/* ColumnCode.masses of consecutive edges z[0..E-1] into out[0..E-2]: each part on the side
 * of its smaller tail. Only the CDFs a part uses are computed. */
static void masses(const Col *c, const double *z, int E, double mean, double s, double *out) {
    double v[W + 3], F[W + 3], G[W + 3];
    unsigned char hasF[W + 3] = {0}, hasG[W + 3] = {0};
    for (int i = 0; i < E; i++) v[i] = (z[i] - mean) / s;
    for (int i = 0; i + 1 < E; i++) {
        double m;
        if (v[i] > 0)
            m = cdf_at(c, v, i, 1, G, hasG) - cdf_at(c, v, i + 1, 1, G, hasG);
        else
            m = cdf_at(c, v, i + 1, 0, F, hasF) - cdf_at(c, v, i, 0, F, hasF);
        out[i] = (m != m) ? m : (m > 0 ? m : 0.0); /* np.maximum(m, 0) */
    }
}

/* cells._fallback: a row whose masses all underflow (or hold a nan) becomes uniform over its
 * real symbols. */
static void fallback(double *row, const int64_t *e, int outer) {
    int dead = 0;
    double mx = row[0];
    for (int i = 0; i < ROW; i++) {
        if (row[i] != row[i]) dead = 1;
        if (row[i] > mx) mx = row[i];
    }
    if (!(mx > 0)) dead = 1;
    if (!dead) return;
    int parts = 0;
    for (int i = 0; i < W; i++) parts += e[i + 1] > e[i];
    for (int i = 0; i < ROW; i++)
        row[i] = (outer ? (i <= parts || i == ROW - 1) : (i < parts)) ? 1.0 : 0.0;
}

/* One decoded symbol under the row in p->rowbuf: `decode(model(row, perfect=False))`, the
 * categorical built from the row as the family builds it from a row of a batch (-1 with an
 * exception set). */
static int64_t decode(Plan *p) {
    PyObject *args[3] = {NULL, p->row_obj, Py_False};
    PyObject *model =
        PyObject_Vectorcall(p->model, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, p->kwnames);
    if (!model) return -1;
    PyObject *res = PyObject_CallOneArg(p->decode, model);
    Py_DECREF(model);
    if (!res) return -1;
    int64_t sym = PyLong_AsLongLong(res);
    Py_DECREF(res);
    if (sym < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "the range decoder returned a negative symbol");
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

/* A flag row's symbol (0/1), -1 on error. */
static int64_t flag(Plan *p, int64_t j, int which) {
    memcpy(p->rowbuf, p->flag_rows + (j * 2 + which) * ROW, ROW * sizeof(double));
    return decode(p);
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
    PyObject *spec, *decode_fn, *model, *row_obj, *rare_fn;
    if (!PyArg_ParseTuple(args, "OOOOO", &spec, &decode_fn, &model, &row_obj, &rare_fn))
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
    p.kwnames = Py_BuildValue("(s)", "perfect");
    if (!p.kwnames) return NULL;
    p.row_obj = row_obj;
    p.rare = rare_fn;
    PyObject *result = NULL;
    Py_buffer rb;
    if (PyObject_GetBuffer(row_obj, &rb, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(p.kwnames);
        return NULL;
    }
    if (rb.len != ROW * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "_series: the row buffer must hold ROW float64");
        goto done;
    }
    p.rowbuf = rb.buf;
    if (plan_read(&p, &v, spec) < 0) goto done;
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
    Py_DECREF(p.kwnames);
    return result;
}

/* ------------------------------------------------------------------------- encoder rows */

/* cells.level0 (outer = 1) or cells.level (outer = 0) for n values at once: the rows over the
 * edges e (n, W + 1) under mean + s e, into out (n, ROW); the column as series_compiled lays
 * it out (col_f, col_i, comp). The encoder's rows, equal to the decoder's bit for bit. */
static PyObject *level_rows(PyObject *self, PyObject *args) {
    PyObject *objs[7];
    int outer;
    if (!PyArg_ParseTuple(args, "OOOOOOOp", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &objs[5], &objs[6], &outer))
        return NULL;
    if (!PIECES) {
        PyErr_SetString(PyExc_RuntimeError, "_series: the normal table was not set");
        return NULL;
    }
    Py_buffer b[7];
    int got = 0, ok = 1;
    for (; got < 7; got++) {
        int flags = PyBUF_C_CONTIGUOUS | (got == 6 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &b[got], flags) < 0) break;
    }
    if (got < 7) ok = 0;
    Py_ssize_t n = ok ? b[4].len / 8 : 0;
    const int64_t *ci = ok ? b[1].buf : NULL;
    if (ok && (b[0].len != NF * 8 || b[1].len != NI * 8 || b[3].len != n * (W + 1) * 8 ||
               b[5].len != n * 8 || b[6].len != n * ROW * 8 || ci[I_NCOMP] < 1 ||
               ci[I_COMP_AT] != 0 || b[2].len != ci[I_NCOMP] * 3 * 8 || ci[I_TRANSFORM] < 0 ||
               ci[I_TRANSFORM] > 2)) {
        PyErr_SetString(PyExc_ValueError, "_series.level_rows: arrays of the wrong size");
        ok = 0;
    }
    if (ok) {
        const double *f = b[0].buf, *mean = b[4].buf, *s = b[5].buf;
        const int64_t *e = b[3].buf;
        double *out = b[6].buf, z[W + 3];
        Col c = {(int)ci[I_TRANSFORM], (int)ci[I_HAS_LO], (int)ci[I_HAS_HI], ci[I_LO], ci[I_HI],
                 f[F_DELTA], f[F_CENTER], f[F_SCALE], f[F_HALF], f[F_LOG_FLOOR],
                 (int)ci[I_NCOMP], b[2].buf};
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const int64_t *ei = e + i * (W + 1);
            double *row = out + i * ROW;
            if (outer) {
                z[0] = -INFINITY;
                for (int k = 0; k <= W; k++) z[k + 1] = edge_z(&c, ei[k]);
                z[W + 2] = INFINITY;
                masses(&c, z, W + 3, mean[i], s[i], row);
            } else {
                for (int k = 0; k <= W; k++) z[k] = edge_z(&c, ei[k]);
                masses(&c, z, W + 1, mean[i], s[i], row);
                row[W] = row[W + 1] = 0.0;
            }
            fallback(row, ei, outer);
        }
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return ok ? Py_NewRef(Py_None) : NULL;
}

/* ------------------------------------------------------------------------- module */

static PyObject *set_constants(PyObject *self, PyObject *args) {
    PyObject *consts, *table, *exp2;
    int pieces, degree, per_unit;
    if (!PyArg_ParseTuple(args, "OOOiii", &consts, &table, &exp2, &pieces, &degree, &per_unit))
        return NULL;
    if (pieces < 1 || pieces > MAX_PIECES || degree != 10 || per_unit < 1) {
        PyErr_SetString(PyExc_ValueError, "_series: table size out of range");
        return NULL;
    }
    Py_buffer cb, tb, eb;
    if (PyObject_GetBuffer(consts, &cb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(table, &tb, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&cb);
        return NULL;
    }
    if (PyObject_GetBuffer(exp2, &eb, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&cb);
        PyBuffer_Release(&tb);
        return NULL;
    }
    int ok = cb.len == (6 + 7 + 12) * 8 && tb.len == (Py_ssize_t)pieces * (degree + 1) * 8 &&
             eb.len == 64 * 8;
    if (ok) {
        const double *c = cb.buf, *t = tb.buf;
        LN2_HI = c[0], LN2_LO = c[1], INV_LN2 = c[2], SQRT1_2 = c[3], EXP_MIN = c[4], EXP_MAX = c[5];
        memcpy(EXP_TERMS, c + 6, sizeof(EXP_TERMS));
        memcpy(LOG_TERMS, c + 13, sizeof(LOG_TERMS));
        memcpy(EXP2, eb.buf, sizeof(EXP2));
        for (int i = 0; i < pieces; i++)
            memcpy(TABLE[i], t + i * (degree + 1), (size_t)(degree + 1) * sizeof(double));
        PIECES = pieces;
        PER_UNIT = per_unit;
        T_LIMIT = (double)pieces / per_unit;
    } else
        PyErr_SetString(PyExc_ValueError, "_series: constants of the wrong size");
    PyBuffer_Release(&cb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&eb);
    return ok ? Py_NewRef(Py_None) : NULL;
}

/* f elementwise from the float64 buffer x into the float64 buffer out (same length); the
 * loop is written out per function so that it is inlined. */
#define ELEMENTWISE(NAME, F)                                                                      \
    static PyObject *NAME(PyObject *self, PyObject *args) {                                       \
        PyObject *x, *out;                                                                        \
        Py_buffer xb, ob;                                                                         \
        if (!PyArg_ParseTuple(args, "OO", &x, &out)) return NULL;                                \
        if (buffers_in_out(x, out, &xb, &ob) < 0) return NULL;                                   \
        const double *xs = xb.buf;                                                                \
        double *os = ob.buf;                                                                      \
        Py_ssize_t n = xb.len / 8;                                                                \
        Py_BEGIN_ALLOW_THREADS for (Py_ssize_t i = 0; i < n; i++) os[i] = F(xs[i]);               \
        Py_END_ALLOW_THREADS PyBuffer_Release(&xb);                                               \
        PyBuffer_Release(&ob);                                                                    \
        return Py_NewRef(Py_None);                                                                \
    }

static int buffers_in_out(PyObject *x, PyObject *out, Py_buffer *xb, Py_buffer *ob) {
    if (!PIECES) {
        PyErr_SetString(PyExc_RuntimeError, "_series: the normal table was not set");
        return -1;
    }
    if (PyObject_GetBuffer(x, xb, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(out, ob, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(xb);
        return -1;
    }
    if (xb->len != ob->len || xb->len % 8) {
        PyErr_SetString(PyExc_ValueError, "_series: buffers of float64 of the same length");
        PyBuffer_Release(xb);
        PyBuffer_Release(ob);
        return -1;
    }
    return 0;
}

ELEMENTWISE(py_exp, fx_exp)
ELEMENTWISE(py_log, fx_log)
ELEMENTWISE(py_ndtr, fx_ndtr)
ELEMENTWISE(py_lower_tail, fx_lower_tail)

static PyMethodDef methods[] = {
    {"set_constants", set_constants, METH_VARARGS, "set_constants(consts, table, pieces, degree)"},
    {"exp", py_exp, METH_VARARGS, "exp(x, out): fixedmath.exp elementwise"},
    {"log", py_log, METH_VARARGS, "log(x, out): fixedmath.log elementwise"},
    {"ndtr", py_ndtr, METH_VARARGS, "ndtr(x, out): fixedmath.ndtr elementwise"},
    {"lower_tail", py_lower_tail, METH_VARARGS, "lower_tail(t, out): fixedmath.lower_tail"},
    {"level_rows", level_rows, METH_VARARGS,
     "level_rows(col_f, col_i, comp, e, mean, s, out, outer): cells.level0 / level rows"},
    {"decode_steps", decode_steps, METH_VARARGS,
     "decode_steps(plan, decode, model, row, rare): a series' cells (see series_compiled)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_series", NULL, -1, methods};

PyMODINIT_FUNC PyInit__series(void) { return PyModule_Create(&module); }
