/* One series column's cells: window, bisection edges and mixture masses, compiled (included
 * by _series.c; the same operations as cells.py's ColumnCode, with fixedmath's functions).
 */
#include <math.h>
#include <stdint.h>

#define W 32
#define ROW (W + 2)

typedef struct {
    int transform; /* 0 none, 1 sqrt, 2 log */
    int has_lo, has_hi;
    int64_t lo_k, hi_k;
    double delta, center, scale, half, log_floor;
    int n_comp;
    const double *comp; /* (n_comp, 3): w, mu, sd */
} Col;

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
static double cdf_at(const Col *c, const double *v, int i, int upper, double *C,
                     unsigned char *has) {
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

