/* exp, log and the normal CDF of coding/fixedmath.py, compiled (included by _series.c).
 *
 * The same IEEE-754 operations in the same order as fixedmath.py's numpy functions (the file
 * is compiled with -ffp-contract=off), so both give equal bits; the constants and tables come
 * from Python (`set_constants`), one source for both. Also their Python bindings: the
 * constants' setter and the vectorised functions.
 */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_PIECES 512
#define MAX_DEGREE 10

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
    return times_pow2(EXP2[j] * p, (ni - j) / 64); /* exact: a multiple of 64 */
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

/* ------------------------------------------------------------------------- bindings */

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
        LN2_HI = c[0], LN2_LO = c[1], INV_LN2 = c[2], SQRT1_2 = c[3];
        EXP_MIN = c[4], EXP_MAX = c[5];
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
