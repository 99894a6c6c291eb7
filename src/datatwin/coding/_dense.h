/* fixedmath.softmax_rows compiled (included by _series.c): a one-layer softmax's rows in one
 * fixed order of IEEE-754 float64 operations, so a coder gets the same bits on every CPU
 * (BLAS's products and numpy's sums take CPU-dependent orders).
 *
 *     l_j = b_j + h_0 w_0j + h_1 w_1j + ...   (k in order; wT is w transposed, (H, V))
 *     q_j = exp(l_j - max_seen l)  for seen j, else 0        (fixedmath's exp)
 *     s   = q_0 + q_1 + ...                                   (j in order)
 *     out_j = (1 - eps) (q_j / s) + eps prior_j
 */

/* args: h (n, H), wT (H, V), b (V), seen (V: 1.0 or 0.0), prior (V), eps, out (n, V) */
static PyObject *softmax_rows(PyObject *self, PyObject *args) {
    PyObject *objs[6];
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOOdO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &eps, &objs[5]))
        return NULL;
    if (!PIECES) {
        PyErr_SetString(PyExc_RuntimeError, "_series: the normal table was not set");
        return NULL;
    }
    Py_buffer b[6];
    int got = get_buffers(objs, b, 6);
    Py_ssize_t V = got == 6 ? b[2].len / 8 : 0, H = V ? b[1].len / 8 / V : 0;
    Py_ssize_t n = H ? b[0].len / 8 / H : 0;
    int ok = got == 6 && V >= 1 && H >= 1 && b[1].len == H * V * 8 && b[0].len == n * H * 8 &&
             b[3].len == V * 8 && b[4].len == V * 8 && b[5].len == n * V * 8;
    double *acc = ok ? PyMem_Malloc((size_t)V * sizeof(double)) : NULL;
    if (got == 6 && !ok) PyErr_SetString(PyExc_ValueError, "_series.softmax_rows: bad arrays");
    if (ok && !acc) PyErr_NoMemory();
    if (acc) {
        const double *h = b[0].buf, *wT = b[1].buf, *bias = b[2].buf, *seen = b[3].buf;
        const double *prior = b[4].buf;
        double *out = b[5].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < n; r++) {
            memcpy(acc, bias, (size_t)V * sizeof(double));
            for (Py_ssize_t k = 0; k < H; k++) add_scaled(acc, wT + k * V, V, h[r * H + k]);
            double m = -INFINITY, s = 0.0, *o = out + r * V;
            for (Py_ssize_t j = 0; j < V; j++)
                if (seen[j] != 0.0 && acc[j] > m) m = acc[j];
            for (Py_ssize_t j = 0; j < V; j++) {
                o[j] = seen[j] != 0.0 ? fx_exp(acc[j] - m) : 0.0;
                s = s + o[j];
            }
            for (Py_ssize_t j = 0; j < V; j++) o[j] = (1.0 - eps) * (o[j] / s) + eps * prior[j];
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(acc);
    release_buffers(b, got);
    return acc ? Py_NewRef(Py_None) : NULL;
}
