/* The document cache of a text or events twin, one symbol at a time (optional accelerator).
 *
 * The same model and the same float operations as `Steps._walk_cached` (steps.py): per cache
 * level L, the counts of the symbols that followed each context (the last L symbols) earlier
 * in the block. For the next symbol, the levels whose context occurred before (a prefix of the
 * levels, shortest first) map the static row p to
 *     q = f p + sum_k g_k c_k,
 * with, from the longest found level down, e = a + b distinct, scale = cap / total,
 * d = total + e (scale >= 1) or scale total + e, g_k = f (1 / d) or f (scale / d), f = f (e / d)
 * (f starts at 1). Each product and sum is one IEEE-754 double operation in that order
 * (compiled with -ffp-contract=off: no fused multiply-add), so the rows equal the Python
 * walk's and the encoder's (`text_rows.mix`) bit for bit; the tests compare them.
 *
 * Storage: the block's symbols so far (BOS first); per level an open-addressing table from a
 * 63-bit hash of the context's L symbols to its entries (a hit is confirmed by comparing the
 * symbols, so two contexts never share counts, whatever the vocabulary's size); per entry its
 * total, its number of distinct successors, where in the block its context ends and a singly
 * linked list of (symbol, count) nodes; one table (entry, symbol) -> node for the count
 * updates. Memory grows with the block, like the Python dictionaries it replaces (about 48
 * bytes per new context and 40 per new successor).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_LEVELS 32

static int64_t pow2_at_least(int64_t n) {
    int64_t p = 1024;
    while (p < n) p *= 2;
    return p;
}

typedef struct {
    uint64_t *keys; /* key + 1 (0 = empty) */
    int64_t *vals;
    int64_t cap, n; /* cap: a power of two */
} Table;

typedef struct {
    PyObject_HEAD
    /* the n-gram model's state machine (Steps._StateTable's arrays, held as buffers) */
    Py_buffer bufs[5];
    int n_bufs;
    const int64_t *meta; /* (states, 4): suffix state, lo, hi, seen */
    const double *gamma; /* per state */
    const int64_t *sym, *child; /* per entry: symbol, state after it */
    const double *alpha;
    int64_t n_states, n_entries_trie, state, start;
    double uniform; /* the root's base row: 1 / outcomes, 0 at BOS */
    /* memoised static rows: state -> slot of `rows` (all forgotten when full) */
    Table memo;
    double *rows;
    int64_t memo_cap, memo_n;
    int64_t *chain, depth; /* suffix chains: at most depth states */
    /* the document cache (n_levels = 0: none) */
    int64_t base, bos, n_levels, n; /* n: symbols in the block so far (BOS counts) */
    int64_t orders[MAX_LEVELS];
    int64_t *doc, doc_cap; /* the block's symbols, BOS first (n of them) */
    uint64_t hk[MAX_LEVELS]; /* the hashes of the current contexts, per level */
    double cap;
    double *es; /* es[k] = a + b k, k = 0..base */
    Table levels[MAX_LEVELS];
    Table nodes_of; /* entry * base + symbol -> node */
    int64_t *total, *distinct, *head, *ekey, *elevel, *epos; /* per context entry */
    int64_t n_entries, entries_cap;
    int64_t *sym_of, *count, *next; /* per successor node */
    int64_t n_nodes, nodes_cap;
    int64_t found[MAX_LEVELS];
    int64_t n_found;
} Walker;

static uint64_t hash64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static int table_init(Table *t, int64_t cap) {
    t->keys = PyMem_Calloc((size_t)cap, sizeof(uint64_t));
    t->vals = PyMem_Malloc((size_t)cap * sizeof(int64_t));
    t->cap = cap;
    t->n = 0;
    if (!t->keys || !t->vals) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void table_free(Table *t) {
    PyMem_Free(t->keys);
    PyMem_Free(t->vals);
    t->keys = NULL;
    t->vals = NULL;
}

/* The slot of `key` (its own or the empty one where it would go). */
static int64_t table_slot(const Table *t, uint64_t key) {
    uint64_t mask = (uint64_t)t->cap - 1, i = hash64(key) & mask, k1 = key + 1;
    while (t->keys[i] && t->keys[i] != k1) i = (i + 1) & mask;
    return (int64_t)i;
}

static int64_t table_get(const Table *t, uint64_t key) {
    int64_t i = table_slot(t, key);
    return t->keys[i] ? t->vals[i] : -1;
}

static int table_grow(Table *t) {
    Table old = *t;
    if (table_init(t, old.cap * 2) < 0) {
        *t = old;
        return -1;
    }
    uint64_t mask = (uint64_t)t->cap - 1;
    for (int64_t i = 0; i < old.cap; i++)
        if (old.keys[i]) { /* at the first empty slot: keys may repeat (context hashes) */
            uint64_t j = hash64(old.keys[i] - 1) & mask;
            while (t->keys[j]) j = (j + 1) & mask;
            t->keys[j] = old.keys[i];
            t->vals[j] = old.vals[i];
            t->n++;
        }
    table_free(&old);
    return 0;
}

/* The slot holding key -> val (both present). */
static int64_t slot_of(const Table *t, uint64_t key, int64_t val) {
    uint64_t mask = (uint64_t)t->cap - 1, i = hash64(key) & mask;
    while (t->keys[i] != key + 1 || t->vals[i] != val) i = (i + 1) & mask;
    return (int64_t)i;
}

/* Insert key -> val at the first empty slot of its probe sequence (after any equal keys). */
static int table_put(Table *t, uint64_t key, int64_t val) {
    if (2 * (t->n + 1) > t->cap && table_grow(t) < 0) return -1;
    uint64_t mask = (uint64_t)t->cap - 1, i = hash64(key) & mask;
    while (t->keys[i]) i = (i + 1) & mask;
    t->keys[i] = key + 1;
    t->vals[i] = val;
    t->n++;
    return 0;
}

static int grow_arrays(int64_t **arrays, int count, int64_t *cap) {
    int64_t want = *cap ? *cap * 2 : 1024;
    for (int i = 0; i < count; i++) {
        int64_t *p = PyMem_Realloc(arrays[i], (size_t)want * sizeof(int64_t));
        if (!p) {
            PyErr_NoMemory();
            return -1;
        }
        arrays[i] = p;
    }
    *cap = want;
    return 0;
}

static int64_t new_entry(Walker *c, int64_t level, uint64_t key) {
    if (c->n_entries == c->entries_cap) {
        int64_t *a[6] = {c->total, c->distinct, c->head, c->ekey, c->elevel, c->epos};
        if (grow_arrays(a, 6, &c->entries_cap) < 0) return -1;
        c->total = a[0], c->distinct = a[1], c->head = a[2];
        c->ekey = a[3], c->elevel = a[4], c->epos = a[5];
    }
    int64_t e = c->n_entries++;
    c->total[e] = 0;
    c->distinct[e] = 0;
    c->head[e] = -1;
    c->ekey[e] = (int64_t)key;
    c->elevel[e] = level;
    c->epos[e] = c->n;
    return e;
}

/* count[e][w] += 1 */
static int count_symbol(Walker *c, int64_t e, int64_t w) {
    uint64_t key = (uint64_t)e * (uint64_t)c->base + (uint64_t)w;
    int64_t node = table_get(&c->nodes_of, key);
    if (node < 0) {
        if (c->n_nodes == c->nodes_cap) {
            int64_t *a[3] = {c->sym_of, c->count, c->next};
            if (grow_arrays(a, 3, &c->nodes_cap) < 0) return -1;
            c->sym_of = a[0], c->count = a[1], c->next = a[2];
        }
        node = c->n_nodes++;
        c->sym_of[node] = w;
        c->count[node] = 0;
        c->next[node] = c->head[e];
        c->head[e] = node;
        c->distinct[e]++;
        if (table_put(&c->nodes_of, key, node) < 0) return -1;
    }
    c->count[node]++;
    c->total[e]++;
    return 0;
}

/* The current contexts' hashes: level k's covers the last orders[k] symbols of the block. */
static void hash_contexts(Walker *c) {
    uint64_t h = 0;
    int64_t k = 0;
    for (int64_t i = 1; i <= c->n && k < c->n_levels; i++) {
        h = hash64(h * 0x9E3779B97F4A7C15ULL + (uint64_t)c->doc[c->n - i] + 1);
        if (i == c->orders[k]) c->hk[k++] = h >> 1;
    }
}

/* The entry of level k's current context, or -1. */
static int64_t level_find(const Walker *c, int64_t k) {
    const Table *t = &c->levels[k];
    int64_t L = c->orders[k];
    uint64_t mask = (uint64_t)t->cap - 1, i = hash64(c->hk[k]) & mask, k1 = c->hk[k] + 1;
    for (; t->keys[i]; i = (i + 1) & mask) {
        int64_t e = t->vals[i];
        if (t->keys[i] == k1 &&
            !memcmp(c->doc + c->epos[e] - L, c->doc + c->n - L, (size_t)L * sizeof(int64_t)))
            return e;
    }
    return -1;
}

static void find_levels(Walker *c) {
    hash_contexts(c);
    c->n_found = 0;
    for (int64_t k = 0; k < c->n_levels && c->orders[k] <= c->n; k++) {
        int64_t e = level_find(c, k);
        if (e < 0) break;
        c->found[c->n_found++] = e;
    }
}

/* ---- the static model --------------------------------------------------------------- */

/* The memoised row of state s, computing it and its suffix states' rows from the longest
 * memoised one down (as Steps.static: times gamma, then plus alpha at each seen child). */
static const double *static_row(Walker *c, int64_t s) {
    int64_t slot = table_get(&c->memo, (uint64_t)s);
    if (slot >= 0) return c->rows + slot * c->base;
    int64_t *chain = c->chain, len = 0;
    const double *p = NULL;
    for (;;) {
        chain[len++] = s;
        if (!s) break;
        s = c->meta[4 * s];
        if ((slot = table_get(&c->memo, (uint64_t)s)) >= 0) {
            p = c->rows + slot * c->base;
            break;
        }
    }
    if (c->memo_n + len > c->memo_cap) { /* forget every row (p too: start at the root) */
        memset(c->memo.keys, 0, (size_t)c->memo.cap * sizeof(uint64_t));
        c->memo.n = 0;
        c->memo_n = 0;
        return static_row(c, chain[0]);
    }
    for (int64_t i = len - 1; i >= 0; i--) {
        int64_t st = chain[i], lo = c->meta[4 * st + 1], hi = c->meta[4 * st + 2];
        double *row = c->rows + c->memo_n * c->base;
        if (p == NULL) {
            for (int64_t x = 0; x < c->base; x++) row[x] = c->uniform;
            row[c->bos] = 0.0;
        } else
            memcpy(row, p, (size_t)c->base * sizeof(double));
        if (c->meta[4 * st + 3]) {
            double g = c->gamma[st];
            for (int64_t x = 0; x < c->base; x++) row[x] = row[x] * g;
            for (int64_t j = lo; j < hi; j++) row[c->sym[j]] = row[c->sym[j]] + c->alpha[j];
        }
        table_put(&c->memo, (uint64_t)st, c->memo_n++);
        p = row;
    }
    return p;
}

/* The state after w (as Steps.next_state): the child w of the state, else the suffix
 * state's transition; none at the root: the root. */
static int64_t next_state(const Walker *c, int64_t s, int64_t w) {
    for (;;) {
        int64_t lo = c->meta[4 * s + 1], hi = c->meta[4 * s + 2];
        while (lo < hi) { /* children sorted by symbol */
            int64_t mid = lo + (hi - lo) / 2;
            if (c->sym[mid] < w)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < c->meta[4 * s + 2] && c->sym[lo] == w) return c->child[lo];
        if (!s) return 0;
        s = c->meta[4 * s];
    }
}

/* out = the next-symbol row: the static row mixed with the found cache levels. */
static void write_row(Walker *c, double *out) {
    const double *p = static_row(c, c->state);
    if (c->n_found == 0) {
        memcpy(out, p, (size_t)c->base * sizeof(double));
        return;
    }
    double g[MAX_LEVELS], f = 1.0;
    for (int64_t k = c->n_found - 1; k >= 0; k--) {
        int64_t e = c->found[k];
        double total = (double)c->total[e], es = c->es[c->distinct[e]];
        double scale = c->cap / total, d;
        if (scale >= 1.0) {
            d = total + es;
            g[k] = f * (1.0 / d);
        } else {
            d = scale * total;
            d = d + es;
            g[k] = f * (scale / d);
        }
        f = f * (es / d);
    }
    for (int64_t i = 0; i < c->base; i++) out[i] = p[i] * f;
    for (int64_t k = 0; k < c->n_found; k++)
        for (int64_t node = c->head[c->found[k]]; node >= 0; node = c->next[node]) {
            double add = g[k] * (double)c->count[node];
            out[c->sym_of[node]] = out[c->sym_of[node]] + add;
        }
}

/* Count w after the block's current contexts and move the cache to the next position. */
static int cache_push(Walker *c, int64_t w) {
    if (!c->n_levels) return 0;
    for (int64_t k = 0; k < c->n_levels && c->orders[k] <= c->n; k++) {
        int64_t e = k < c->n_found ? c->found[k] : level_find(c, k);
        if (e < 0 && ((e = new_entry(c, k, c->hk[k])) < 0 ||
                      table_put(&c->levels[k], c->hk[k], e) < 0))
            return -1;
        if (count_symbol(c, e, w) < 0) return -1;
    }
    if (c->n == c->doc_cap) {
        int64_t *a[1] = {c->doc};
        if (grow_arrays(a, 1, &c->doc_cap) < 0) return -1;
        c->doc = a[0];
    }
    c->doc[c->n++] = w;
    find_levels(c);
    return 0;
}

/* Append symbol w to the block: the n-gram state after it, then the cache's counts. */
static int advance(Walker *c, int64_t w) {
    c->state = next_state(c, c->state, w);
    return cache_push(c, w);
}

/* ---- the Python type ---------------------------------------------------------------- */

static int take_buffer(Walker *c, PyObject *obj, Py_ssize_t itemsize, Py_ssize_t n,
                       const void **out) {
    Py_buffer *b = &c->bufs[c->n_bufs];
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    c->n_bufs++;
    if (b->len != itemsize * n) {
        PyErr_SetString(PyExc_ValueError, "Walker: an array has the wrong size");
        return -1;
    }
    *out = b->buf;
    return 0;
}

/* The state machine's indices are in range and suffix links go to earlier states (so every
 * chain ends at the root); its depth sizes the chain buffer. (A damaged model must not make
 * this code read outside its arrays.) */
static int check_trie(Walker *c) {
    int64_t *depth = PyMem_Calloc((size_t)c->n_states, sizeof(int64_t));
    if (!depth) {
        PyErr_NoMemory();
        return -1;
    }
    int bad = 0;
    c->depth = 1;
    for (int64_t s = 0; s < c->n_states && !bad; s++) {
        const int64_t *m = c->meta + 4 * s;
        bad = m[0] < 0 || (s && m[0] >= s) || m[1] < 0 || m[1] > m[2] || m[2] > c->n_entries_trie;
        depth[s] = s ? depth[m[0]] + 1 : 1;
        if (depth[s] > c->depth) c->depth = depth[s];
    }
    for (int64_t j = 0; j < c->n_entries_trie && !bad; j++)
        bad = c->sym[j] < 0 || c->sym[j] >= c->base || c->child[j] < 0 ||
              c->child[j] >= c->n_states;
    for (int64_t s = 0; s < c->n_states && !bad; s++)
        for (int64_t j = c->meta[4 * s + 1] + 1; j < c->meta[4 * s + 2] && !bad; j++)
            bad = c->sym[j] <= c->sym[j - 1];
    PyMem_Free(depth);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "Walker: the model's state machine is inconsistent");
        return -1;
    }
    c->chain = PyMem_Malloc((size_t)c->depth * sizeof(int64_t));
    if (!c->chain) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int init_cache(Walker *c, PyObject *orders, PyObject *es, double cap) {
    Py_ssize_t nl = PySequence_Size(orders), ne = PySequence_Size(es);
    if (nl < 0 || ne < 0) return -1;
    if (nl > MAX_LEVELS || (nl && ne != c->base + 1)) {
        PyErr_SetString(PyExc_ValueError, "Walker: bad cache orders or escapes");
        return -1;
    }
    c->n_levels = nl;
    c->es = PyMem_Malloc((size_t)(ne + 1) * sizeof(double));
    if (!c->es) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < ne; i++) {
        PyObject *x = PySequence_GetItem(es, i);
        if (!x) return -1;
        c->es[i] = PyFloat_AsDouble(x);
        Py_DECREF(x);
    }
    for (Py_ssize_t k = 0; k < nl; k++) {
        PyObject *x = PySequence_GetItem(orders, k);
        if (!x) return -1;
        c->orders[k] = PyLong_AsLongLong(x);
        Py_DECREF(x);
        if (c->orders[k] < 1 || (k && c->orders[k] <= c->orders[k - 1])) {
            PyErr_SetString(PyExc_ValueError, "Walker: cache orders must increase");
            return -1;
        }
        if (table_init(&c->levels[k], 1024) < 0) return -1;
    }
    if (PyErr_Occurred() || table_init(&c->nodes_of, 4096) < 0) return -1;
    c->cap = cap;
    int64_t *a[1] = {c->doc};
    if (grow_arrays(a, 1, &c->doc_cap) < 0) return -1;
    c->doc = a[0];
    c->doc[0] = c->bos;
    c->n = 1;
    find_levels(c); /* none found yet: the contexts' hashes */
    return 0;
}

static int Walker_init(Walker *c, PyObject *args, PyObject *kw) {
    static char *names[] = {"meta",  "gamma", "sym", "alpha",  "child", "uniform", "bos",
                            "start", "rows",  "orders", "es",    "cap",   NULL};
    PyObject *meta, *gamma, *sym, *alpha, *child, *orders, *es;
    long long bos, start, rows;
    double uniform, cap;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOdLLLOOd", names, &meta, &gamma, &sym,
                                     &alpha, &child, &uniform, &bos, &start, &rows, &orders,
                                     &es, &cap))
        return -1;
    if (c->rows) {
        PyErr_SetString(PyExc_TypeError, "Walker: already initialised");
        return -1;
    }
    Py_ssize_t n_states = PyObject_Length(gamma), n_entries = PyObject_Length(sym);
    if (n_states < 1 || n_entries < 0) return -1;
    if (take_buffer(c, meta, 32, n_states, (const void **)&c->meta) < 0 ||
        take_buffer(c, gamma, 8, n_states, (const void **)&c->gamma) < 0 ||
        take_buffer(c, sym, 8, n_entries, (const void **)&c->sym) < 0 ||
        take_buffer(c, alpha, 8, n_entries, (const void **)&c->alpha) < 0 ||
        take_buffer(c, child, 8, n_entries, (const void **)&c->child) < 0)
        return -1;
    c->n_states = n_states;
    c->n_entries_trie = n_entries;
    c->base = PySequence_Size(es) - 1;
    if (c->base < 1 || bos < 0 || bos >= c->base || start < 0 || start >= n_states) {
        PyErr_SetString(PyExc_ValueError, "Walker: bad base, BOS or start state");
        return -1;
    }
    c->uniform = uniform;
    c->bos = bos;
    c->state = c->start = start;
    if (check_trie(c) < 0) return -1;
    c->memo_cap = rows < 2 * c->depth ? 2 * c->depth : rows;
    c->rows = PyMem_Malloc((size_t)(c->memo_cap * c->base) * sizeof(double));
    if (!c->rows) {
        PyErr_NoMemory();
        return -1;
    }
    if (table_init(&c->memo, pow2_at_least(2 * c->memo_cap)) < 0) return -1;
    return init_cache(c, orders, es, cap);
}

static void Walker_dealloc(Walker *c) {
    for (int i = 0; i < c->n_bufs; i++) PyBuffer_Release(&c->bufs[i]);
    for (int64_t k = 0; k < c->n_levels; k++) table_free(&c->levels[k]);
    table_free(&c->nodes_of);
    table_free(&c->memo);
    void *blocks[] = {c->rows, c->chain,  c->es,   c->total,  c->distinct, c->head, c->ekey,
                      c->elevel, c->epos, c->doc, c->sym_of, c->count,    c->next};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) PyMem_Free(blocks[i]);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* A writable float64 buffer of `base` entries, or NULL with an error set. */
static double *row_buffer(Walker *c, PyObject *obj, Py_buffer *b) {
    if (!c->rows) {
        PyErr_SetString(PyExc_TypeError, "Walker: not initialised");
        return NULL;
    }
    if (PyObject_GetBuffer(obj, b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (b->len != c->base * (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(b);
        PyErr_SetString(PyExc_ValueError, "Walker: the row must be float64 of length base");
        return NULL;
    }
    return b->buf;
}

/* row(out): out = q(. | the block so far) */
static PyObject *Walker_row(Walker *c, PyObject *obj) {
    Py_buffer b;
    double *out = row_buffer(c, obj, &b);
    if (!out) return NULL;
    write_row(c, out);
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

/* step(w, out): append symbol w to the block, then out = the next row */
static PyObject *Walker_step(Walker *c, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "Walker.step(w, out)");
        return NULL;
    }
    long long w = PyLong_AsLongLong(args[0]);
    if (w == -1 && PyErr_Occurred()) return NULL;
    Py_buffer b;
    double *out = row_buffer(c, args[1], &b);
    if (!out) return NULL;
    if (w < 0 || w >= c->base) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "Walker.step: symbol out of range");
        return NULL;
    }
    if (advance(c, w) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    write_row(c, out);
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

/* reset(): a new block from a document start (the cache emptied, in time linear in what it
 * holds; the static rows stay memoised). Every key's slot is found before any is emptied:
 * emptying a slot breaks the probe chains through it. */
static PyObject *Walker_reset(Walker *c, PyObject *unused) {
    (void)unused;
    int64_t n = c->n_entries + c->n_nodes, i = 0;
    int64_t *slots = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!slots) return PyErr_NoMemory();
    for (int64_t e = 0; e < c->n_entries; e++) {
        slots[i++] = slot_of(&c->levels[c->elevel[e]], (uint64_t)c->ekey[e], e);
        for (int64_t node = c->head[e]; node >= 0; node = c->next[node]) {
            uint64_t key = (uint64_t)e * (uint64_t)c->base + (uint64_t)c->sym_of[node];
            slots[i++] = table_slot(&c->nodes_of, key);
        }
    }
    i = 0;
    for (int64_t e = 0; e < c->n_entries; e++) {
        c->levels[c->elevel[e]].keys[slots[i++]] = 0;
        for (int64_t node = c->head[e]; node >= 0; node = c->next[node])
            c->nodes_of.keys[slots[i++]] = 0;
    }
    PyMem_Free(slots);
    for (int64_t k = 0; k < c->n_levels; k++) c->levels[k].n = 0;
    c->nodes_of.n = 0;
    c->n_entries = c->n_nodes = c->n_found = 0;
    c->state = c->start;
    c->n = 1; /* doc[0] is BOS */
    if (c->n_levels) find_levels(c);
    Py_RETURN_NONE;
}

/* rows(ids, out): for each symbol of ids in turn, out[i] = the row before it, then append it
 * (the encoder's rows; `out` holds len(ids) rows) */
static PyObject *Walker_rows(Walker *c, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "Walker.rows(ids, out)");
        return NULL;
    }
    Py_buffer ib, ob;
    if (PyObject_GetBuffer(args[0], &ib, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &ob, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&ib);
        return NULL;
    }
    Py_ssize_t m = ib.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *ids = ib.buf;
    int ok = ib.itemsize == 8 && ob.itemsize == 8 && ob.len == m * c->base * 8 && c->rows;
    for (Py_ssize_t i = 0; ok && i < m; i++) ok = ids[i] >= 0 && ids[i] < c->base;
    for (Py_ssize_t i = 0; ok == 1 && i < m; i++) {
        write_row(c, (double *)ob.buf + i * c->base);
        ok = advance(c, ids[i]) == 0 ? 1 : -1;
    }
    PyBuffer_Release(&ib);
    PyBuffer_Release(&ob);
    if (ok == 0) PyErr_SetString(PyExc_ValueError, "Walker.rows: bad symbols or rows");
    if (ok != 1) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Walker_methods[] = {
    {"reset", (PyCFunction)Walker_reset, METH_NOARGS, "reset(): a new block"},
    {"rows", (PyCFunction)(void (*)(void))Walker_rows, METH_FASTCALL,
     "rows(ids, out): the row before each symbol into out, appending each"},
    {"row", (PyCFunction)Walker_row, METH_O, "row(out): the next-symbol row into out"},
    {"step", (PyCFunction)(void (*)(void))Walker_step, METH_FASTCALL,
     "step(w, out): append w, then the next row into out"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "datatwin.text._walker.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A block's next-symbol rows, one symbol at a time (see steps.Steps.walk)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Walker_init,
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_methods = Walker_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walker", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__walker(void) {
    if (PyType_Ready(&WalkerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&WalkerType);
    if (PyModule_AddObject(m, "Walker", (PyObject *)&WalkerType) < 0) {
        Py_DECREF(&WalkerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
