/* jinja_value.c: runtime values: accounted allocation, refcounts, strings,
 * lists, insertion-ordered dicts, and the Python semantics templates see
 * (truthiness, ==, ordering, hashing, str(), repr(), json.dumps). Invariant:
 * only namespaces mutate after creation, so values form a DAG but through
 * them, and containers record their depth so frees and prints are bounded. */
#include "jinja.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_HDR offsetof(struct jstr, data)

/* ---- Errors and accounting ---- */

int jfail(struct jctx *c, enum shoal_err err, const char *fmt, ...)
{
    if (!c->failed) {
        c->failed = true;
        c->err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

void jfail_at(struct jctx *c, const struct jnode *n)
{
    if (c->failed && c->err_line == 0 && n) {
        c->err_line = n->line;
        c->err_col = n->col;
    }
}

int jstep(struct jctx *c, uint64_t units)
{
    c->steps += units;
    if (c->steps > c->lim.max_steps)
        return jfail(c, SHOAL_ERR_TOO_BIG,
                     "template did too much work (more than %" PRIu64 " steps)", c->lim.max_steps);
    return 0;
}

int jstep_out(struct jctx *c, uint64_t units, struct jv *out)
{
    if (jstep(c, units) == 0)
        return 0;
    jv_decref(c, *out);
    *out = jv_make(JV_EMPTY);
    return -1;
}

void *jalloc(struct jctx *c, size_t n)
{
    if (n > c->lim.max_memory || c->mem > c->lim.max_memory - n) {
        jfail(c, SHOAL_ERR_TOO_BIG, "template used more than %zu bytes of memory",
              c->lim.max_memory);
        return NULL;
    }
    void *p = malloc(n ? n : 1);
    if (!p) {
        jfail(c, SHOAL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->mem += n;
    return p;
}

void *jrealloc(struct jctx *c, void *p, size_t old, size_t n)
{
    if (n > old && (n - old > c->lim.max_memory || c->mem > c->lim.max_memory - (n - old))) {
        jfail(c, SHOAL_ERR_TOO_BIG, "template used more than %zu bytes of memory",
              c->lim.max_memory);
        return NULL;
    }
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        jfail(c, SHOAL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->mem = c->mem - old + n;
    return q;
}

void jfree(struct jctx *c, void *p, size_t n)
{
    if (p) {
        c->mem -= n;
        free(p);
    }
}

/* ---- Refcounts ---- */

void jv_incref(struct jv v)
{
    if (jv_is_heap(v) && v.u.o->rc != JRC_IMMORTAL)
        v.u.o->rc++;
}

static void free_obj(struct jctx *c, struct jobj *o)
{
    switch (o->type) {
    case JV_LIST: {
        struct jlist *l = (struct jlist *)o;
        for (size_t i = 0; i < l->n; i++)
            jv_decref(c, l->items[i]);
        jfree(c, l->items, l->cap * sizeof(*l->items));
        break;
    }
    case JV_DICT:
    case JV_NS: {
        struct jdict *d = (struct jdict *)o;
        for (size_t i = 0; i < d->n; i++) {
            jv_decref(c, d->e[i].k);
            jv_decref(c, d->e[i].v);
        }
        jfree(c, d->e, d->cap * sizeof(*d->e));
        jfree(c, d->idx, d->idx_cap * sizeof(*d->idx));
        break;
    }
    case JV_MACRO:
        jv_decref(c, ((struct jmacro *)o)->caller);
        break;
    case JV_METHOD:
        jv_decref(c, ((struct jmethod *)o)->self);
        break;
    case JV_LOOP: {
        struct jloop *l = (struct jloop *)o;
        if (l->items)
            jv_decref(c, jv_obj(JV_LIST, l->items));
        jv_decref(c, l->changed_last);
        break;
    }
    case JV_CYCLER: {
        struct jcycler *cy = (struct jcycler *)o;
        if (cy->items)
            jv_decref(c, jv_obj(JV_LIST, cy->items));
        break;
    }
    case JV_JOINER:
        jv_decref(c, ((struct jjoiner *)o)->sep);
        break;
    default:
        break;
    }
    jfree(c, o, o->bytes);
}

void jv_decref(struct jctx *c, struct jv v)
{
    if (!jv_is_heap(v))
        return;
    struct jobj *o = v.u.o;
    if (o->rc == JRC_IMMORTAL)
        return;
    if (--o->rc == 0)
        free_obj(c, o);
}

int jv_check_depth(struct jctx *c, uint16_t *depth, struct jv child)
{
    uint16_t d = 0;
    if (jv_is_heap(child) && child.type != JV_NS)
        d = child.u.o->depth;
    if ((unsigned)d + 1 > JINJA_MAX_VALUE_DEPTH)
        return jfail(c, SHOAL_ERR_TOO_BIG, "values nested more than %u levels deep",
                     JINJA_MAX_VALUE_DEPTH);
    if (d + 1 > *depth)
        *depth = (uint16_t)(d + 1);
    return 0;
}

static void *obj_new(struct jctx *c, size_t size, uint8_t type)
{
    struct jobj *o = jalloc(c, size);
    if (!o)
        return NULL;
    memset(o, 0, size);
    o->rc = 1;
    o->type = type;
    o->bytes = size;
    return o;
}

/* ---- Strings ---- */

static union {
    struct jstr s;
    unsigned char raw[sizeof(struct jstr) + 8];
} empty_str = {.s = {.h = {.rc = JRC_IMMORTAL, .type = JV_STR}, .len = 0, .nchars = 0}};

struct jv jstr_empty(void) { return jv_obj(JV_STR, &empty_str.s); }

static struct jstr *jstr_alloc(struct jctx *c, size_t len)
{
    if (len > c->lim.max_output) {
        jfail(c, SHOAL_ERR_TOO_BIG, "string longer than %zu bytes", c->lim.max_output);
        return NULL;
    }
    struct jstr *s = jalloc(c, STR_HDR + len + 1);
    if (!s)
        return NULL;
    memset(s, 0, STR_HDR);
    s->h.rc = 1;
    s->h.type = JV_STR;
    s->h.bytes = STR_HDR + len + 1;
    s->len = len;
    s->nchars = -1;
    s->data[len] = 0;
    return s;
}

int jstr_new(struct jctx *c, const char *p, size_t n, struct jv *out)
{
    if (n == 0) {
        *out = jstr_empty();
        return 0;
    }
    struct jstr *s = jstr_alloc(c, n);
    if (!s)
        return -1;
    memcpy(s->data, p, n);
    *out = jv_obj(JV_STR, s);
    return jstep_out(c, n / 64, out);
}

int jstr_cat(struct jctx *c, const char *a, size_t na, const char *b, size_t nb, struct jv *out)
{
    if (na > SIZE_MAX / 2 || nb > SIZE_MAX / 2) /* cannot happen below the caps */
        return jfail(c, SHOAL_ERR_TOO_BIG, "string too long");
    if (na + nb == 0) {
        *out = jstr_empty();
        return 0;
    }
    struct jstr *s = jstr_alloc(c, na + nb);
    if (!s)
        return -1;
    if (na)
        memcpy(s->data, a, na);
    if (nb)
        memcpy(s->data + na, b, nb);
    *out = jv_obj(JV_STR, s);
    return jstep_out(c, (na + nb) / 64, out);
}

size_t jstr_nchars(struct jstr *s)
{
    if (s->nchars >= 0)
        return (size_t)s->nchars;
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s->data;
    for (size_t i = 0; i < s->len;) {
        if (p[i] < 0x80) {
            i++;
        } else {
            size_t len;
            jutf8_dec(p + i, s->len - i, &len);
            i += len;
        }
        n++;
    }
    if (s->h.rc != JRC_IMMORTAL && n <= INT32_MAX)
        s->nchars = (int32_t)n;
    return n;
}

/* ---- String builder ---- */

void jsb_init(struct jsb *b, struct jctx *c)
{
    b->c = c;
    b->buf = NULL;
    b->len = b->cap = 0;
}

void jsb_fini(struct jsb *b)
{
    if (b->buf)
        jfree(b->c, b->buf, STR_HDR + b->cap + 1);
    b->buf = NULL;
    b->len = b->cap = 0;
}

static int jsb_grow(struct jsb *b, size_t extra)
{
    struct jctx *c = b->c;
    if (extra > c->lim.max_output || b->len > c->lim.max_output - extra)
        return jfail(c, SHOAL_ERR_TOO_BIG, "output larger than %zu bytes", c->lim.max_output);
    size_t need = b->len + extra;
    if (need <= b->cap && b->buf)
        return 0;
    size_t cap = b->cap ? b->cap : 48;
    while (cap < need)
        cap *= 2;
    if (cap > c->lim.max_output)
        cap = c->lim.max_output;
    char *nb = jrealloc(c, b->buf, b->buf ? STR_HDR + b->cap + 1 : 0, STR_HDR + cap + 1);
    if (!nb)
        return -1;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

int jsb_add(struct jsb *b, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if ((b->cap - b->len < n || !b->buf) && jsb_grow(b, n) != 0)
        return -1;
    memcpy(b->buf + STR_HDR + b->len, p, n);
    b->len += n;
    return 0;
}

int jsb_addc(struct jsb *b, char ch) { return jsb_add(b, &ch, 1); }
int jsb_adds(struct jsb *b, const char *s) { return jsb_add(b, s, strlen(s)); }

int jsb_printf(struct jsb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return jfail(b->c, SHOAL_ERR_INTERNAL, "format error");
    if ((size_t)n < sizeof(tmp))
        return jsb_add(b, tmp, (size_t)n);
    if (jsb_grow(b, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->buf + STR_HDR + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int jsb_finish(struct jsb *b, struct jv *out)
{
    struct jctx *c = b->c;
    if (!b->buf || b->len == 0) {
        jsb_fini(b);
        *out = jstr_empty();
        return 0;
    }
    size_t bytes = STR_HDR + b->cap + 1;
    char *buf = b->buf;
    if (b->cap > b->len + 256) {
        /* give back the slack; keeping it is harmless when realloc refuses */
        char *nb = realloc(buf, STR_HDR + b->len + 1);
        if (nb) {
            c->mem = c->mem - bytes + (STR_HDR + b->len + 1);
            buf = nb;
            bytes = STR_HDR + b->len + 1;
        }
    }
    struct jstr *s = (struct jstr *)buf;
    memset(s, 0, STR_HDR);
    s->h.rc = 1;
    s->h.type = JV_STR;
    s->h.bytes = bytes;
    s->len = b->len;
    s->nchars = -1;
    s->data[b->len] = 0;
    *out = jv_obj(JV_STR, s);
    b->buf = NULL;
    b->len = b->cap = 0;
    return jstep_out(c, s->len / 64, out);
}

/* ---- Lists ---- */

struct jlist *jlist_new(struct jctx *c, size_t cap, enum jlist_kind kind)
{
    if (cap > JINJA_MAX_ITEMS) {
        jfail(c, SHOAL_ERR_TOO_BIG, "list longer than %u items", JINJA_MAX_ITEMS);
        return NULL;
    }
    struct jlist *l = obj_new(c, sizeof(*l), JV_LIST);
    if (!l)
        return NULL;
    l->h.kind = (uint8_t)kind;
    l->gname = "generator";
    if (cap) {
        l->items = jalloc(c, cap * sizeof(*l->items));
        if (!l->items) {
            jfree(c, l, l->h.bytes);
            return NULL;
        }
        l->cap = cap;
    }
    return l;
}

int jlist_push(struct jctx *c, struct jlist *l, struct jv v)
{
    if (jv_check_depth(c, &l->h.depth, v) != 0) {
        jv_decref(c, v);
        return -1;
    }
    if (l->n == l->cap) {
        if (l->cap >= JINJA_MAX_ITEMS) {
            jv_decref(c, v);
            return jfail(c, SHOAL_ERR_TOO_BIG, "list longer than %u items", JINJA_MAX_ITEMS);
        }
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct jv *items = jrealloc(c, l->items, l->cap * sizeof(*items), cap * sizeof(*items));
        if (!items) {
            jv_decref(c, v);
            return -1;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return 0;
}

/* ---- Hashing and equality of keys ---- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

bool jv_hash(struct jv v, uint64_t *h)
{
    switch (v.type) {
    case JV_UNDEF: *h = 0x5555; return true;
    case JV_NONE: *h = 0x1234; return true;
    case JV_BOOL: *h = mix((uint64_t)v.u.b); return true;
    case JV_INT: *h = mix((uint64_t)v.u.i); return true;
    case JV_FLOAT:
        if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18) {
            *h = mix((uint64_t)(int64_t)v.u.f);
        } else {
            uint64_t bits;
            memcpy(&bits, &v.u.f, sizeof(bits));
            *h = mix(bits);
        }
        return true;
    case JV_STR: {
        struct jstr *s = jv_str(v);
        uint64_t x = 1469598103934665603ull;
        for (size_t i = 0; i < s->len; i++)
            x = (x ^ (unsigned char)s->data[i]) * 1099511628211ull;
        *h = x;
        return true;
    }
    case JV_LIST: {
        struct jlist *l = jv_list(v);
        if (l->h.kind != JL_TUPLE) {
            if (l->h.kind == JL_GEN) { /* hashed by identity */
                *h = mix((uint64_t)(uintptr_t)l);
                return true;
            }
            return false;
        }
        uint64_t x = 0x345678;
        for (size_t i = 0; i < l->n; i++) {
            uint64_t e;
            if (!jv_hash(l->items[i], &e))
                return false;
            x = mix(x ^ e) + i;
        }
        *h = x;
        return true;
    }
    case JV_NS:
    case JV_MACRO:
    case JV_LOOP:
    case JV_CYCLER:
    case JV_JOINER:
    case JV_METHOD:
        *h = mix((uint64_t)(uintptr_t)v.u.o);
        return true;
    case JV_FUNC:
        *h = mix((uint64_t)v.u.i + 77);
        return true;
    default:
        return false;
    }
}

static bool num_eq(struct jv a, struct jv b)
{
    if (a.type == JV_FLOAT || b.type == JV_FLOAT) {
        double x = a.type == JV_FLOAT ? a.u.f : a.type == JV_BOOL ? a.u.b : (double)a.u.i;
        double y = b.type == JV_FLOAT ? b.u.f : b.type == JV_BOOL ? b.u.b : (double)b.u.i;
        if (a.type == JV_INT && b.type == JV_FLOAT)
            return x == y && (fabs(y) >= 9.2e18 || (int64_t)y == a.u.i);
        if (b.type == JV_INT && a.type == JV_FLOAT)
            return x == y && (fabs(x) >= 9.2e18 || (int64_t)x == b.u.i);
        return x == y;
    }
    int64_t x = a.type == JV_BOOL ? a.u.b : a.u.i;
    int64_t y = b.type == JV_BOOL ? b.u.b : b.u.i;
    return x == y;
}

/* Equality without a context, for hashable keys (bounded by their depth). */
static bool key_eq(struct jv a, struct jv b)
{
    if (jv_is_num(a) && jv_is_num(b))
        return num_eq(a, b);
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR:
        return jv_str(a)->len == jv_str(b)->len &&
               memcmp(jv_str(a)->data, jv_str(b)->data, jv_str(a)->len) == 0;
    case JV_LIST: {
        struct jlist *x = jv_list(a), *y = jv_list(b);
        if (x == y)
            return true;
        if (x->h.kind != JL_TUPLE || y->h.kind != JL_TUPLE || x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (!key_eq(x->items[i], y->items[i]))
                return false;
        return true;
    }
    case JV_FUNC: return a.u.i == b.u.i;
    default: return a.u.o == b.u.o;
    }
}

/* ---- Dicts ---- */

struct jdict *jdict_new(struct jctx *c, size_t cap)
{
    if (cap > JINJA_MAX_ITEMS) {
        jfail(c, SHOAL_ERR_TOO_BIG, "dict larger than %u items", JINJA_MAX_ITEMS);
        return NULL;
    }
    struct jdict *d = obj_new(c, sizeof(*d), JV_DICT);
    if (!d)
        return NULL;
    if (cap) {
        d->e = jalloc(c, cap * sizeof(*d->e));
        if (!d->e) {
            jfree(c, d, d->h.bytes);
            return NULL;
        }
        d->cap = cap;
    }
    return d;
}

static long dict_find(const struct jdict *d, struct jv k, uint64_t h)
{
    if (d->idx) {
        size_t mask = d->idx_cap - 1;
        for (size_t j = h & mask;; j = (j + 1) & mask) {
            uint32_t e = d->idx[j];
            if (!e)
                return -1;
            if (d->e[e - 1].hash == h && key_eq(d->e[e - 1].k, k))
                return (long)(e - 1);
        }
    }
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].hash == h && key_eq(d->e[i].k, k))
            return (long)i;
    return -1;
}

static int dict_reindex(struct jctx *c, struct jdict *d)
{
    size_t cap = 16;
    while (cap < d->n * 2 + 2)
        cap *= 2;
    uint32_t *idx = jalloc(c, cap * sizeof(*idx));
    if (!idx)
        return -1;
    memset(idx, 0, cap * sizeof(*idx));
    for (size_t i = 0; i < d->n; i++) {
        size_t j = d->e[i].hash & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)i + 1;
    }
    jfree(c, d->idx, d->idx_cap * sizeof(*d->idx));
    d->idx = idx;
    d->idx_cap = cap;
    return 0;
}

int jdict_set(struct jctx *c, struct jdict *d, struct jv k, struct jv v)
{
    uint64_t h;
    if (!jv_hash(k, &h)) {
        jfail(c, SHOAL_ERR_INVALID, "unhashable type: '%s'", jv_type_name(k));
        goto fail;
    }
    if (jv_check_depth(c, &d->h.depth, v) != 0 || jv_check_depth(c, &d->h.depth, k) != 0)
        goto fail;
    long at = dict_find(d, k, h);
    if (at >= 0) {
        /* Python keeps the first key and its position, takes the new value */
        jv_decref(c, k);
        jv_decref(c, d->e[at].v);
        d->e[at].v = v;
        return 0;
    }
    if (d->n == d->cap) {
        if (d->cap >= JINJA_MAX_ITEMS) {
            jfail(c, SHOAL_ERR_TOO_BIG, "dict larger than %u items", JINJA_MAX_ITEMS);
            goto fail;
        }
        size_t cap = d->cap ? d->cap * 2 : 4;
        struct jdict_ent *e = jrealloc(c, d->e, d->cap * sizeof(*e), cap * sizeof(*e));
        if (!e)
            goto fail;
        d->e = e;
        d->cap = cap;
    }
    d->e[d->n].k = k;
    d->e[d->n].v = v;
    d->e[d->n].hash = h;
    d->n++;
    if (d->idx && d->n * 2 < d->idx_cap) {
        size_t j = h & (d->idx_cap - 1);
        while (d->idx[j])
            j = (j + 1) & (d->idx_cap - 1);
        d->idx[j] = (uint32_t)d->n;
        return 0;
    }
    if (d->n > 8)
        return dict_reindex(c, d);
    return 0;
fail:
    jv_decref(c, k);
    jv_decref(c, v);
    return -1;
}

bool jdict_get(const struct jdict *d, struct jv k, struct jv *out)
{
    uint64_t h;
    if (!jv_hash(k, &h))
        return false;
    long at = dict_find(d, k, h);
    if (at < 0)
        return false;
    *out = d->e[at].v;
    return true;
}

bool jdict_get_str(const struct jdict *d, const char *k, size_t n, struct jv *out)
{
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        x = (x ^ (unsigned char)k[i]) * 1099511628211ull;
    if (d->idx) {
        size_t mask = d->idx_cap - 1;
        for (size_t j = x & mask;; j = (j + 1) & mask) {
            uint32_t e = d->idx[j];
            if (!e)
                return false;
            const struct jdict_ent *en = &d->e[e - 1];
            if (en->hash == x && en->k.type == JV_STR && jv_str(en->k)->len == n &&
                memcmp(jv_str(en->k)->data, k, n) == 0) {
                *out = en->v;
                return true;
            }
        }
    }
    for (size_t i = 0; i < d->n; i++) {
        const struct jdict_ent *en = &d->e[i];
        if (en->hash == x && en->k.type == JV_STR && jv_str(en->k)->len == n &&
            memcmp(jv_str(en->k)->data, k, n) == 0) {
            *out = en->v;
            return true;
        }
    }
    return false;
}

int jns_register(struct jctx *c, struct jdict *ns)
{
    if (c->nns == c->nns_cap) {
        size_t cap = c->nns_cap ? c->nns_cap * 2 : 8;
        struct jdict **v = jrealloc(c, c->nss, c->nns_cap * sizeof(*v), cap * sizeof(*v));
        if (!v)
            return -1;
        c->nss = v;
        c->nns_cap = cap;
    }
    ns->h.rc++;
    c->nss[c->nns++] = ns;
    return 0;
}

/* ---- Python semantics ---- */

bool jv_truthy(struct jv v)
{
    switch (v.type) {
    case JV_EMPTY:
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return jv_str(v)->len != 0;
    case JV_LIST:
        return jv_list(v)->h.kind == JL_GEN || jv_list(v)->n != 0;
    case JV_DICT: return jv_dict(v)->n != 0;
    default: return true;
    }
}

const char *jv_type_name(struct jv v)
{
    switch (v.type) {
    case JV_EMPTY:
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return (v.flags & JVF_MARKUP) ? "Markup" : "str";
    case JV_LIST:
        switch (jv_list(v)->h.kind) {
        case JL_TUPLE: return "tuple";
        case JL_GEN:
        case JL_VIEW: return jv_list(v)->gname;
        case JL_RANGE: return "range";
        default: return "list";
        }
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_METHOD: return "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    case JV_CYCLER: return "Cycler";
    case JV_JOINER: return "Joiner";
    default: return "object";
    }
}

const char *jv_object_desc(uint8_t type, uint8_t kind)
{
    switch (type) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return "str object";
    case JV_LIST:
        return kind == JL_TUPLE ? "tuple object" : kind == JL_GEN ? "generator object"
               : kind == JL_RANGE ? "range object" : kind == JL_VIEW ? "dict view object"
                                                                     : "list object";
    case JV_DICT: return "dict object";
    case JV_NS: return "jinja2.utils.Namespace object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    default: return "object";
    }
}

static int enter_value(struct jctx *c)
{
    if (++c->vdepth > JINJA_MAX_VALUE_DEPTH + 8) {
        c->vdepth--;
        return jfail(c, SHOAL_ERR_TOO_BIG, "maximum recursion depth exceeded");
    }
    return 0;
}

int jv_equal(struct jctx *c, struct jv a, struct jv b, bool *eq)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        *eq = num_eq(a, b);
        return 0;
    }
    if (a.type != b.type) {
        *eq = false;
        return 0;
    }
    switch (a.type) {
    case JV_LIST: {
        struct jlist *x = jv_list(a), *y = jv_list(b);
        if (x == y) {
            *eq = true;
            return 0;
        }
        if (x->h.kind != y->h.kind || x->h.kind == JL_GEN || x->n != y->n) {
            *eq = false;
            return 0;
        }
        if (enter_value(c) != 0)
            return -1;
        *eq = true;
        for (size_t i = 0; i < x->n && *eq; i++) {
            if (jv_equal(c, x->items[i], y->items[i], eq) != 0) {
                c->vdepth--;
                return -1;
            }
        }
        c->vdepth--;
        return 0;
    }
    case JV_DICT: {
        struct jdict *x = jv_dict(a), *y = jv_dict(b);
        if (x == y) {
            *eq = true;
            return 0;
        }
        if (x->n != y->n) {
            *eq = false;
            return 0;
        }
        if (enter_value(c) != 0)
            return -1;
        *eq = true;
        for (size_t i = 0; i < x->n && *eq; i++) {
            struct jv other;
            if (!jdict_get(y, x->e[i].k, &other)) {
                *eq = false;
                break;
            }
            if (jv_equal(c, x->e[i].v, other, eq) != 0) {
                c->vdepth--;
                return -1;
            }
        }
        c->vdepth--;
        return 0;
    }
    case JV_METHOD: {
        struct jmethod *x = (struct jmethod *)a.u.o, *y = (struct jmethod *)b.u.o;
        *eq = x == y || (x->id == y->id && x->self.type == y->self.type &&
                         (!jv_is_heap(x->self) || x->self.u.o == y->self.u.o));
        return 0;
    }
    default:
        *eq = key_eq(a, b);
        return 0;
    }
}

int jv_compare(struct jctx *c, struct jv a, struct jv b, const char *op, int *cmp)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) {
            double x = a.type == JV_FLOAT ? a.u.f : a.type == JV_BOOL ? a.u.b : (double)a.u.i;
            double y = b.type == JV_FLOAT ? b.u.f : b.type == JV_BOOL ? b.u.b : (double)b.u.i;
            *cmp = x < y ? -1 : x > y ? 1 : x == y ? 0 : 2; /* 2: unordered (NaN) */
        } else {
            int64_t x = a.type == JV_BOOL ? a.u.b : a.u.i;
            int64_t y = b.type == JV_BOOL ? b.u.b : b.u.i;
            *cmp = x < y ? -1 : x > y;
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        struct jstr *x = jv_str(a), *y = jv_str(b);
        size_t n = x->len < y->len ? x->len : y->len;
        int r = memcmp(x->data, y->data, n);
        *cmp = r < 0 ? -1 : r > 0 ? 1 : x->len < y->len ? -1 : x->len > y->len;
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST && jv_list(a)->h.kind == jv_list(b)->h.kind &&
        (jv_list(a)->h.kind == JL_LIST || jv_list(a)->h.kind == JL_TUPLE)) {
        struct jlist *x = jv_list(a), *y = jv_list(b);
        if (enter_value(c) != 0)
            return -1;
        size_t n = x->n < y->n ? x->n : y->n;
        for (size_t i = 0; i < n; i++) {
            bool eq;
            if (jv_equal(c, x->items[i], y->items[i], &eq) != 0) {
                c->vdepth--;
                return -1;
            }
            if (!eq) {
                int r = jv_compare(c, x->items[i], y->items[i], op, cmp);
                c->vdepth--;
                return r;
            }
        }
        c->vdepth--;
        *cmp = x->n < y->n ? -1 : x->n > y->n;
        return 0;
    }
    if (a.type == JV_UNDEF || b.type == JV_UNDEF) {
        struct jv u = a.type == JV_UNDEF ? a : b;
        if (u.flags & JVF_ATTR)
            return jfail(c, SHOAL_ERR_INVALID, "'%s' has no attribute '%s'",
                         jv_object_desc(u.otype, 0), u.u.hint ? u.u.hint : "?");
        return jfail(c, SHOAL_ERR_INVALID, "'%s' is undefined", u.u.hint ? u.u.hint : "value");
    }
    return jfail(c, SHOAL_ERR_INVALID, "'%s' not supported between instances of '%s' and '%s'", op,
                 jv_type_name(a), jv_type_name(b));
}

/* ---- Printing ---- */

static int json_sorted_order(struct jctx *c, const struct jdict *d, size_t *order);

void jfloat_repr(double f, char out[40])
{
    if (isnan(f)) {
        snprintf(out, 40, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, 40, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(out, 40, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* shortest digits that read back as the same double */
    char buf[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    const char *p = buf;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    int nd = 0;
    while (*p && *p != 'e') {
        if (*p >= '0' && *p <= '9' && nd < 20)
            digits[nd++] = *p;
        p++;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int e10 = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    int decpt = e10 + 1;
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
            for (int i = nd; i < decpt; i++)
                out[o++] = '0';
            out[o++] = '.';
            out[o++] = '0';
        } else {
            for (int i = 0; i < nd; i++) {
                if (i == decpt)
                    out[o++] = '.';
                out[o++] = digits[i];
            }
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, 40 - o, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    }
}

static int write_str_repr(struct jsb *b, const char *s, size_t n)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (jsb_addc(b, q) != 0)
        return -1;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = jutf8_dec(p + i, n - i, &len);
        char esc[16];
        int w = 0;
        if (cp == (uint32_t)q || cp == '\\')
            w = snprintf(esc, sizeof(esc), "\\%c", (char)cp);
        else if (cp == '\n')
            w = snprintf(esc, sizeof(esc), "\\n");
        else if (cp == '\r')
            w = snprintf(esc, sizeof(esc), "\\r");
        else if (cp == '\t')
            w = snprintf(esc, sizeof(esc), "\\t");
        else if (!jpy_isprintable(cp))
            w = cp <= 0xFF ? snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp)
                : cp <= 0xFFFF ? snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp)
                               : snprintf(esc, sizeof(esc), "\\U%08x", (unsigned)cp);
        if (w > 0) {
            if (jsb_add(b, esc, (size_t)w) != 0)
                return -1;
        } else if (jsb_add(b, s + i, len) != 0) {
            return -1;
        }
        i += len;
    }
    return jsb_addc(b, q);
}

int jv_write_str(struct jctx *c, struct jv v, struct jsb *b)
{
    char num[40];
    switch (v.type) {
    case JV_EMPTY:
    case JV_UNDEF: return 0;
    case JV_NONE: return jsb_add(b, "None", 4);
    case JV_BOOL: return v.u.b ? jsb_add(b, "True", 4) : jsb_add(b, "False", 5);
    case JV_INT:
        snprintf(num, sizeof(num), "%" PRId64, v.u.i);
        return jsb_adds(b, num);
    case JV_FLOAT:
        jfloat_repr(v.u.f, num);
        return jsb_adds(b, num);
    case JV_STR: return jsb_add(b, jv_str(v)->data, jv_str(v)->len);
    default: return jv_write_repr(c, v, b);
    }
}

int jv_write_repr(struct jctx *c, struct jv v, struct jsb *b)
{
    int rc = 0;
    switch (v.type) {
    case JV_EMPTY:
    case JV_UNDEF: return jsb_adds(b, "Undefined");
    case JV_STR:
        if (v.flags & JVF_MARKUP) {
            return jsb_adds(b, "Markup(") || write_str_repr(b, jv_str(v)->data, jv_str(v)->len) ||
                           jsb_addc(b, ')')
                       ? -1
                       : 0;
        }
        return write_str_repr(b, jv_str(v)->data, jv_str(v)->len);
    case JV_LIST: {
        struct jlist *l = jv_list(v);
        if (l->h.kind == JL_GEN)
            return jsb_printf(b, "<%s object>", l->gname);
        if (l->h.kind == JL_VIEW) {
            if (enter_value(c) != 0)
                return -1;
            rc = jsb_printf(b, "%s([", l->gname);
            for (size_t i = 0; i < l->n && rc == 0; i++) {
                if (i)
                    rc = jsb_add(b, ", ", 2);
                if (rc == 0)
                    rc = jv_write_repr(c, l->items[i], b);
            }
            if (rc == 0)
                rc = jsb_add(b, "])", 2);
            c->vdepth--;
            return rc;
        }
        if (l->h.kind == JL_RANGE) {
            if (l->step == 1)
                return jsb_printf(b, "range(%" PRId64 ", %" PRId64 ")", l->start, l->stop);
            return jsb_printf(b, "range(%" PRId64 ", %" PRId64 ", %" PRId64 ")", l->start,
                              l->stop, l->step);
        }
        if (enter_value(c) != 0)
            return -1;
        bool tuple = l->h.kind == JL_TUPLE;
        rc = jsb_addc(b, tuple ? '(' : '[');
        for (size_t i = 0; i < l->n && rc == 0; i++) {
            if (i)
                rc = jsb_add(b, ", ", 2);
            if (rc == 0)
                rc = jv_write_repr(c, l->items[i], b);
        }
        if (rc == 0 && tuple && l->n == 1)
            rc = jsb_addc(b, ',');
        if (rc == 0)
            rc = jsb_addc(b, tuple ? ')' : ']');
        c->vdepth--;
        return rc;
    }
    case JV_DICT:
    case JV_NS: {
        struct jdict *d = jv_dict(v);
        if (enter_value(c) != 0)
            return -1;
        if (v.type == JV_NS)
            rc = jsb_adds(b, "<Namespace ");
        if (rc == 0)
            rc = jsb_addc(b, '{');
        size_t *order = NULL;
        /* pprint sorts the keys when they are all strings or all numbers
         * (other mixes keep insertion order here) */
        bool all_str = true, all_num = true;
        for (size_t i = 0; i < d->n; i++) {
            all_str = all_str && d->e[i].k.type == JV_STR;
            all_num = all_num && jv_is_num(d->e[i].k);
        }
        if (c->repr_sorted && d->n > 1 && rc == 0 && (all_str || all_num)) {
            order = jalloc(c, d->n * sizeof(*order));
            rc = order ? json_sorted_order(c, d, order) : -1;
        }
        for (size_t i = 0; i < d->n && rc == 0; i++) {
            const struct jdict_ent *e = &d->e[order ? order[i] : i];
            if (i)
                rc = jsb_add(b, ", ", 2);
            if (rc == 0)
                rc = jv_write_repr(c, e->k, b);
            if (rc == 0)
                rc = jsb_add(b, ": ", 2);
            if (rc == 0)
                rc = jv_write_repr(c, e->v, b);
        }
        if (order)
            jfree(c, order, d->n * sizeof(*order));
        if (rc == 0)
            rc = jsb_addc(b, '}');
        if (rc == 0 && v.type == JV_NS)
            rc = jsb_addc(b, '>');
        c->vdepth--;
        return rc;
    }
    case JV_MACRO: {
        struct jmacro *m = (struct jmacro *)v.u.o;
        return jsb_printf(b, "<Macro '%s'>", m->is_caller ? "caller" : m->def->str);
    }
    case JV_FUNC: return jsb_printf(b, "<function %s>", jfunc_name((int)v.u.i));
    case JV_METHOD: {
        struct jmethod *m = (struct jmethod *)v.u.o;
        return jsb_printf(b, "<built-in method of %s>", jv_object_desc(m->self.type, 0));
    }
    case JV_LOOP: {
        struct jloop *l = (struct jloop *)v.u.o;
        return jsb_printf(b, "<LoopContext %zu/%zu>", l->index0 + 1, l->items ? l->items->n : 0);
    }
    case JV_CYCLER: return jsb_adds(b, "<jinja2.utils.Cycler object>");
    case JV_JOINER: return jsb_adds(b, "<jinja2.utils.Joiner object>");
    default: return jv_write_str(c, v, b);
    }
}

int jv_to_str(struct jctx *c, struct jv v, struct jv *out)
{
    if (v.type == JV_STR) {
        *out = jv_ref(v);
        return 0;
    }
    if (v.type == JV_UNDEF) {
        *out = jstr_empty();
        return 0;
    }
    struct jsb b;
    jsb_init(&b, c);
    if (jv_write_str(c, v, &b) != 0) {
        jsb_fini(&b);
        return -1;
    }
    return jsb_finish(&b, out);
}

/* ---- JSON (Python's json.dumps) ---- */

static int json_str(struct jsb *b, const char *s, size_t n, bool ensure_ascii)
{
    if (jsb_addc(b, '"') != 0)
        return -1;
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes copied verbatim, flushed lazily */
    for (size_t i = 0; i < n;) {
        unsigned char ch = p[i];
        const char *esc = NULL;
        char ebuf[16];
        size_t len = 1;
        if (ch == '"')
            esc = "\\\"";
        else if (ch == '\\')
            esc = "\\\\";
        else if (ch == '\n')
            esc = "\\n";
        else if (ch == '\r')
            esc = "\\r";
        else if (ch == '\t')
            esc = "\\t";
        else if (ch == '\b')
            esc = "\\b";
        else if (ch == '\f')
            esc = "\\f";
        else if (ch < 0x20 || (ensure_ascii && ch == 0x7F)) {
            snprintf(ebuf, sizeof(ebuf), "\\u%04x", ch);
            esc = ebuf;
        } else if (ch >= 0x80 && ensure_ascii) {
            uint32_t cp = jutf8_dec(p + i, n - i, &len);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(ebuf, sizeof(ebuf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                         0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(ebuf, sizeof(ebuf), "\\u%04x", cp);
            }
            esc = ebuf;
        }
        if (esc) {
            if (run && jsb_add(b, s + i - run, run) != 0)
                return -1;
            run = 0;
            if (jsb_adds(b, esc) != 0)
                return -1;
            i += len;
        } else {
            run++;
            i++;
        }
    }
    if (run && jsb_add(b, s + n - run, run) != 0)
        return -1;
    return jsb_addc(b, '"');
}

static int json_float(struct jsb *b, double f)
{
    if (isnan(f))
        return jsb_adds(b, "NaN");
    if (isinf(f))
        return jsb_adds(b, f < 0 ? "-Infinity" : "Infinity");
    char num[40];
    jfloat_repr(f, num);
    return jsb_adds(b, num);
}

static int json_newline(struct jsb *b, const struct jjson_opts *o, unsigned level)
{
    if (jsb_addc(b, '\n') != 0)
        return -1;
    for (unsigned i = 0; i < level; i++)
        if (jsb_add(b, o->indent, o->indent_len) != 0)
            return -1;
    return 0;
}

static int json_key(struct jctx *c, struct jv k, const struct jjson_opts *o, struct jsb *b)
{
    char num[40];
    switch (k.type) {
    case JV_STR: return json_str(b, jv_str(k)->data, jv_str(k)->len, o->ensure_ascii);
    case JV_NONE: return jsb_adds(b, "\"null\"");
    case JV_BOOL: return jsb_adds(b, k.u.b ? "\"true\"" : "\"false\"");
    case JV_INT:
        snprintf(num, sizeof(num), "\"%" PRId64 "\"", k.u.i);
        return jsb_adds(b, num);
    case JV_FLOAT:
        if (jsb_addc(b, '"') != 0 || json_float(b, k.u.f) != 0)
            return -1;
        return jsb_addc(b, '"');
    default:
        return jfail(c, SHOAL_ERR_INVALID, "keys must be str, int, float, bool or None, not %s",
                     jv_type_name(k));
    }
}

static int json_value(struct jctx *c, struct jv v, const struct jjson_opts *o, struct jsb *b,
                      unsigned level);

static int json_sorted_order(struct jctx *c, const struct jdict *d, size_t *order)
{
    for (size_t i = 0; i < d->n; i++)
        order[i] = i;
    /* insertion sort: stable, and dicts in templates are small */
    for (size_t i = 1; i < d->n; i++) {
        size_t x = order[i], j = i;
        while (j > 0) {
            int cmp;
            if (jv_compare(c, d->e[order[j - 1]].k, d->e[x].k, "<", &cmp) != 0)
                return -1;
            if (cmp <= 0)
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    return 0;
}

static int json_value(struct jctx *c, struct jv v, const struct jjson_opts *o, struct jsb *b,
                      unsigned level)
{
    char num[40];
    switch (v.type) {
    case JV_NONE: return jsb_add(b, "null", 4);
    case JV_BOOL: return v.u.b ? jsb_add(b, "true", 4) : jsb_add(b, "false", 5);
    case JV_INT:
        snprintf(num, sizeof(num), "%" PRId64, v.u.i);
        return jsb_adds(b, num);
    case JV_FLOAT: return json_float(b, v.u.f);
    case JV_STR: return json_str(b, jv_str(v)->data, jv_str(v)->len, o->ensure_ascii);
    case JV_LIST: {
        struct jlist *l = jv_list(v);
        if (l->h.kind != JL_LIST && l->h.kind != JL_TUPLE)
            break;
        if (l->n == 0)
            return jsb_add(b, "[]", 2);
        if (enter_value(c) != 0)
            return -1;
        int rc = jsb_addc(b, '[');
        for (size_t i = 0; i < l->n && rc == 0; i++) {
            if (i)
                rc = jsb_add(b, o->item_sep, o->item_sep_len);
            if (rc == 0 && o->has_indent)
                rc = json_newline(b, o, level + 1);
            if (rc == 0)
                rc = json_value(c, l->items[i], o, b, level + 1);
        }
        if (rc == 0 && o->has_indent)
            rc = json_newline(b, o, level);
        if (rc == 0)
            rc = jsb_addc(b, ']');
        c->vdepth--;
        return rc;
    }
    case JV_DICT: {
        struct jdict *d = jv_dict(v);
        if (d->n == 0)
            return jsb_add(b, "{}", 2);
        if (enter_value(c) != 0)
            return -1;
        size_t *order = NULL;
        int rc = 0;
        if (o->sort_keys) {
            order = jalloc(c, d->n * sizeof(*order));
            rc = order ? json_sorted_order(c, d, order) : -1;
        }
        if (rc == 0)
            rc = jsb_addc(b, '{');
        for (size_t i = 0; i < d->n && rc == 0; i++) {
            const struct jdict_ent *e = &d->e[order ? order[i] : i];
            if (i)
                rc = jsb_add(b, o->item_sep, o->item_sep_len);
            if (rc == 0 && o->has_indent)
                rc = json_newline(b, o, level + 1);
            if (rc == 0)
                rc = json_key(c, e->k, o, b);
            if (rc == 0)
                rc = jsb_add(b, o->key_sep, o->key_sep_len);
            if (rc == 0)
                rc = json_value(c, e->v, o, b, level + 1);
        }
        if (rc == 0 && o->has_indent)
            rc = json_newline(b, o, level);
        if (rc == 0)
            rc = jsb_addc(b, '}');
        jfree(c, order, d->n * sizeof(*order));
        c->vdepth--;
        return rc;
    }
    default:
        break;
    }
    return jfail(c, SHOAL_ERR_INVALID, "Object of type %s is not JSON serializable",
                 jv_type_name(v));
}

int jv_write_json(struct jctx *c, struct jv v, const struct jjson_opts *o, struct jsb *b)
{
    return json_value(c, v, o, b, 0);
}

/* ---- From cJSON ---- */

int jv_from_cjson(struct jctx *c, const cJSON *j, struct jv *out)
{
    if (!j || cJSON_IsNull(j)) {
        *out = jv_none();
        return 0;
    }
    if (cJSON_IsFalse(j)) {
        *out = jv_bool(false);
        return 0;
    }
    if (cJSON_IsTrue(j)) {
        *out = jv_bool(true);
        return 0;
    }
    if (cJSON_IsNumber(j)) {
        /* cJSON keeps only a double: integral values become ints */
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18)
            *out = jv_int((int64_t)d);
        else
            *out = jv_float(d);
        return 0;
    }
    if (cJSON_IsString(j) || cJSON_IsRaw(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        return jstr_new(c, s, strlen(s), out);
    }
    if ((cJSON_IsArray(j) || cJSON_IsObject(j)) && c->vdepth >= JINJA_MAX_VALUE_DEPTH)
        return jfail(c, SHOAL_ERR_TOO_BIG, "input nested more than %u levels deep",
                     JINJA_MAX_VALUE_DEPTH);
    if (cJSON_IsArray(j)) {
        struct jlist *l = jlist_new(c, (size_t)cJSON_GetArraySize(j), JL_LIST);
        if (!l)
            return -1;
        struct jv lv = jv_obj(JV_LIST, l);
        for (const cJSON *e = j->child; e; e = e->next) {
            struct jv item;
            c->vdepth++;
            int rc = jv_from_cjson(c, e, &item);
            c->vdepth--;
            if (rc != 0 || jlist_push(c, l, item) != 0) {
                jv_decref(c, lv);
                return -1;
            }
        }
        *out = lv;
        return jstep_out(c, l->n, out);
    }
    if (cJSON_IsObject(j)) {
        struct jdict *d = jdict_new(c, (size_t)cJSON_GetArraySize(j));
        if (!d)
            return -1;
        struct jv dv = jv_obj(JV_DICT, d);
        for (const cJSON *e = j->child; e; e = e->next) {
            struct jv k, item;
            const char *name = e->string ? e->string : "";
            if (jstr_new(c, name, strlen(name), &k) != 0) {
                jv_decref(c, dv);
                return -1;
            }
            c->vdepth++;
            int rc = jv_from_cjson(c, e, &item);
            c->vdepth--;
            if (rc != 0) {
                jv_decref(c, k);
                jv_decref(c, dv);
                return -1;
            }
            if (jdict_set(c, d, k, item) != 0) {
                jv_decref(c, dv);
                return -1;
            }
        }
        *out = dv;
        return jstep_out(c, d->n, out);
    }
    *out = jv_none();
    return 0;
}
