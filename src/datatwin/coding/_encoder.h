/* The encoder's compiled parts (included by _series.c): the bisection rows of many values at
 * once (cells.level0 / level) and the sums of the means' terms (series_moments._pull), with
 * the decoder's float operations in the same order.
 */

/* C-contiguous buffers of objs[0 .. n-1], the last one writable: how many were got (n, or
 * fewer with an exception set); release them with release_buffers. */
static int get_buffers(PyObject **objs, Py_buffer *b, int n) {
    int got = 0;
    for (; got < n; got++) {
        int flags = PyBUF_C_CONTIGUOUS | (got == n - 1 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[got], &b[got], flags) < 0) break;
    }
    return got;
}

static void release_buffers(Py_buffer *b, int got) {
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
}

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
    int got = get_buffers(objs, b, 7), ok = got == 7;
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
    release_buffers(b, got);
    return ok ? Py_NewRef(Py_None) : NULL;
}

/* series_moments._pull: out[:, j] = C[:, j] + Σ coef · Zt[src, r0 - lag + x] over column j's
 * terms term_at[j] .. term_at[j + 1], in that order, each a product then a sum (as numpy's
 * `mj += c * column`), so the bits are numpy's. */
static PyObject *pull_terms(PyObject *self, PyObject *args) {
    PyObject *objs[7];
    long long r0;
    if (!PyArg_ParseTuple(args, "OOOOOOLO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &objs[5], &r0, &objs[6]))
        return NULL;
    Py_buffer b[7];
    int got = get_buffers(objs, b, 7), ok = got == 7;
    Py_ssize_t d = ok ? b[5].len / 8 - 1 : 0, T = ok ? b[2].len / 8 : 0;
    Py_ssize_t n = d > 0 ? b[0].len / 8 / d : 0, R = d > 0 ? b[1].len / 8 / d : 0;
    const int64_t *lag = ok ? b[2].buf : NULL, *src = ok ? b[3].buf : NULL;
    const int64_t *at = ok ? b[5].buf : NULL;
    ok = ok && d >= 1 && b[0].len == n * d * 8 && b[1].len == R * d * 8 && b[3].len == T * 8 &&
         b[4].len == T * 8 && b[6].len == n * d * 8 && at[0] == 0 && at[d] == T;
    for (Py_ssize_t j = 0; ok && j < d; j++) ok = at[j + 1] >= at[j];
    for (Py_ssize_t t = 0; ok && t < T; t++)
        ok = src[t] >= 0 && src[t] < d && r0 - lag[t] >= 0 && r0 - lag[t] + n <= R;
    double *m = ok ? PyMem_Malloc((size_t)(n ? n : 1) * sizeof(double)) : NULL;
    if (got == 7 && !ok) PyErr_SetString(PyExc_ValueError, "_series.pull_terms: bad arrays");
    if (ok && !m) PyErr_NoMemory();
    if (m) {
        const double *C = b[0].buf, *Zt = b[1].buf, *coef = b[4].buf;
        double *out = b[6].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < d; j++) {
            for (Py_ssize_t x = 0; x < n; x++) m[x] = C[x * d + j];
            for (int64_t t = at[j]; t < at[j + 1]; t++)
                add_scaled(m, Zt + src[t] * R + (r0 - lag[t]), n, coef[t]);
            for (Py_ssize_t x = 0; x < n; x++) out[x * d + j] = m[x];
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(m);
    release_buffers(b, got);
    return m ? Py_NewRef(Py_None) : NULL;
}

