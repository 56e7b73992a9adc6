/* jinja_eval.c: the tree-walking evaluator: scopes (a frame per loop
 * iteration, macro call and with block; {% set %} writes to the innermost,
 * macros see their frame then the root), statements, operators, lookups,
 * macros and loops. Invariant: every recursive path counts ctx->depth and
 * every unit of work ctx->steps, so no template recurses or loops unbounded. */
#include "jinja.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { X_ERR = -1, X_OK = 0, X_BREAK = 1, X_CONTINUE = 2 };

static int eval(struct jctx *c, const struct jnode *n, struct jv *out);
static int exec_body(struct jctx *c, struct jnode *const *body, uint32_t n);

/* ---- Frames ---- */

static void frame_init(struct jframe *f, struct jframe *parent)
{
    f->parent = parent;
    f->n = 0;
    f->cap = SHOAL_ARRAY_LEN(f->small);
    f->slots = f->small;
}

static void frame_clear(struct jctx *c, struct jframe *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        jv_decref(c, f->slots[i].v);
    f->n = 0;
}

static void frame_fini(struct jctx *c, struct jframe *f)
{
    frame_clear(c, f);
    if (f->slots != f->small)
        jfree(c, f->slots, f->cap * sizeof(*f->slots));
    f->slots = f->small;
}

/* Double an array that starts out in inline storage (small): a jalloc'ed
 * block of 2 * cap elements holding the n in use; the old block is freed
 * unless it is the inline one. NULL, with the array untouched, when the
 * allocation fails. */
static void *grow_small(struct jctx *c, void *items, const void *small, size_t n, size_t cap,
                        size_t elem)
{
    void *p = jalloc(c, 2 * cap * elem);
    if (!p)
        return NULL;
    memcpy(p, items, n * elem);
    if (items != small)
        jfree(c, items, cap * elem);
    return p;
}

/* Bind sym to v (taken) in f. */
static int frame_set(struct jctx *c, struct jframe *f, uint32_t sym, struct jv v)
{
    for (uint32_t i = 0; i < f->n; i++) {
        if (f->slots[i].sym == sym) {
            jv_decref(c, f->slots[i].v);
            f->slots[i].v = v;
            return 0;
        }
    }
    if (f->n == f->cap) {
        struct jslot *s = grow_small(c, f->slots, f->small, f->n, f->cap, sizeof(*s));
        if (!s) {
            jv_decref(c, v);
            return -1;
        }
        f->slots = s;
        f->cap *= 2;
    }
    f->slots[f->n].sym = sym;
    f->slots[f->n].v = v;
    f->n++;
    return 0;
}

/* The value of sym (borrowed). */
static struct jv lookup(struct jctx *c, uint32_t sym)
{
    for (struct jframe *f = c->frame; f; f = f->parent)
        for (uint32_t i = 0; i < f->n; i++)
            if (f->slots[i].sym == sym)
                return f->slots[i].v;
    if (c->root[sym].type != JV_EMPTY)
        return c->root[sym];
    if (c->t->sym_global[sym] >= 0) {
        struct jv v = jv_make(JV_FUNC);
        v.u.i = c->t->sym_global[sym];
        return v;
    }
    return jv_undef(c->t->syms[sym]);
}

/* Assign v (taken) to sym in the innermost scope. */
static int assign(struct jctx *c, uint32_t sym, struct jv v)
{
    if (c->frame)
        return frame_set(c, c->frame, sym, v);
    jv_decref(c, c->root[sym]);
    c->root[sym] = v;
    return 0;
}

/* ---- Errors about undefined values ---- */

static int undef_error(struct jctx *c, struct jv u)
{
    const char *name = u.u.hint ? u.u.hint : "value";
    if (u.flags & JVF_UNSAFE)
        return jfail(c, SHOAL_ERR_INVALID, "access to attribute '%s' of '%s' object is unsafe.",
                     name, u.otype == JV_DICT ? "dict" : u.otype == JV_LIST ? "list" : "str");
    if (u.flags & JVF_ATTR) {
        if (!u.u.hint)
            return jfail(c, SHOAL_ERR_INVALID, "'%s' has no such attribute or item",
                         jv_object_desc(u.otype, 0));
        return jfail(c, SHOAL_ERR_INVALID, "'%s' has no attribute '%s'",
                     jv_object_desc(u.otype, 0), name);
    }
    return jfail(c, SHOAL_ERR_INVALID, "'%s' is undefined", name);
}

static struct jv attr_undef(struct jv obj, const char *hint)
{
    struct jv u = jv_undef(hint);
    u.flags = JVF_ATTR;
    u.otype = obj.type;
    return u;
}

/* ---- Iteration and containers ---- */

bool jv_is_iterable(struct jv v)
{
    return v.type == JV_LIST || v.type == JV_DICT || v.type == JV_STR || v.type == JV_UNDEF ||
           v.type == JV_EMPTY;
}

int jgen_check(struct jctx *c, const struct jlist *l)
{
    if (l->h.kind == JL_GEN && l->gerr_fmt)
        return jfail(c, SHOAL_ERR_INVALID, l->gerr_fmt, l->gerr_arg);
    return 0;
}

int jiter_items(struct jctx *c, struct jv v, struct jlist **out)
{
    switch (v.type) {
    case JV_LIST: {
        struct jlist *l = jv_list(v);
        if (jgen_check(c, l) != 0)
            return -1;
        if (l->h.kind != JL_GEN) {
            jv_incref(v);
            *out = l;
            return 0;
        }
        struct jlist *r = jlist_new(c, l->n - l->pos, JL_LIST);
        if (!r)
            return -1;
        for (size_t i = l->pos; i < l->n; i++)
            r->items[r->n++] = jv_ref(l->items[i]);
        r->h.depth = l->h.depth;
        l->pos = l->n; /* a generator runs once */
        *out = r;
        return 0;
    }
    case JV_DICT: {
        struct jdict *d = jv_dict(v);
        struct jlist *r = jlist_new(c, d->n, JL_LIST);
        if (!r)
            return -1;
        for (size_t i = 0; i < d->n; i++)
            r->items[r->n++] = jv_ref(d->e[i].k);
        r->h.depth = d->h.depth;
        *out = r;
        return 0;
    }
    case JV_STR: {
        struct jstr *s = jv_str(v);
        struct jlist *r = jlist_new(c, jstr_nchars(s), JL_LIST);
        if (!r)
            return -1;
        for (size_t i = 0; i < s->len;) {
            size_t len;
            jutf8_dec((const unsigned char *)s->data + i, s->len - i, &len);
            struct jv ch;
            if (jstr_new(c, s->data + i, len, &ch) != 0) {
                jv_decref(c, jv_obj(JV_LIST, r));
                return -1;
            }
            ch.flags = v.flags & JVF_MARKUP;
            r->items[r->n++] = ch;
            i += len;
        }
        *out = r;
        return 0;
    }
    case JV_UNDEF:
    case JV_EMPTY:
        *out = jlist_new(c, 0, JL_LIST);
        return *out ? 0 : -1;
    default:
        return jfail(c, SHOAL_ERR_INVALID, "'%s' object is not iterable", jv_type_name(v));
    }
}

int jv_len(struct jctx *c, struct jv v, int64_t *out)
{
    switch (v.type) {
    case JV_STR: *out = (int64_t)jstr_nchars(jv_str(v)); return 0;
    case JV_LIST:
        if (jv_list(v)->h.kind == JL_GEN)
            break;
        *out = (int64_t)jv_list(v)->n;
        return 0;
    case JV_DICT: *out = (int64_t)jv_dict(v)->n; return 0;
    case JV_UNDEF:
    case JV_EMPTY: *out = 0; return 0;
    default: break;
    }
    return jfail(c, SHOAL_ERR_INVALID, "object of type '%s' has no len()", jv_type_name(v));
}

int jv_contains(struct jctx *c, struct jv container, struct jv item, bool *out)
{
    switch (container.type) {
    case JV_STR: {
        if (item.type != JV_STR)
            return jfail(c, SHOAL_ERR_INVALID,
                         "'in <string>' requires string as left operand, not %s",
                         jv_type_name(item));
        struct jstr *h = jv_str(container), *nd = jv_str(item);
        *out = nd->len == 0 || memmem(h->data, h->len, nd->data, nd->len) != NULL;
        return jstep(c, h->len / 64);
    }
    case JV_LIST: {
        struct jlist *l = jv_list(container);
        if (jgen_check(c, l) != 0)
            return -1;
        size_t from = l->h.kind == JL_GEN ? l->pos : 0;
        *out = false;
        for (size_t i = from; i < l->n; i++) {
            bool eq;
            if (jv_equal(c, l->items[i], item, &eq) != 0)
                return -1;
            if (eq) {
                *out = true;
                if (l->h.kind == JL_GEN)
                    l->pos = i + 1;
                break;
            }
        }
        if (!*out && l->h.kind == JL_GEN)
            l->pos = l->n;
        return jstep(c, l->n - from);
    }
    case JV_DICT: {
        uint64_t h;
        if (!jv_hash(item, &h))
            return jfail(c, SHOAL_ERR_INVALID, "unhashable type: '%s'", jv_type_name(item));
        struct jv tmp;
        *out = jdict_get(jv_dict(container), item, &tmp);
        return 0;
    }
    case JV_UNDEF:
    case JV_EMPTY:
        *out = false;
        return 0;
    default:
        return jfail(c, SHOAL_ERR_INVALID, "argument of type '%s' is not iterable",
                     jv_type_name(container));
    }
}

/* ---- Attribute and item lookup ---- */

static int loop_attr(struct jctx *c, struct jloop *l, const char *name, struct jv *out,
                     bool *found)
{
    size_t n = l->items->n, i = l->index0;
    *found = true;
    if (!strcmp(name, "index"))
        *out = jv_int((int64_t)i + 1);
    else if (!strcmp(name, "index0"))
        *out = jv_int((int64_t)i);
    else if (!strcmp(name, "revindex"))
        *out = jv_int((int64_t)(n - i));
    else if (!strcmp(name, "revindex0"))
        *out = jv_int((int64_t)(n - i - 1));
    else if (!strcmp(name, "first"))
        *out = jv_bool(i == 0);
    else if (!strcmp(name, "last"))
        *out = jv_bool(i + 1 == n);
    else if (!strcmp(name, "length"))
        *out = jv_int((int64_t)n);
    else if (!strcmp(name, "depth"))
        *out = jv_int((int64_t)l->depth0 + 1);
    else if (!strcmp(name, "depth0"))
        *out = jv_int((int64_t)l->depth0);
    else if (!strcmp(name, "previtem"))
        *out = i > 0 ? jv_ref(l->items->items[i - 1]) : jv_undef("there is no previous item");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? jv_ref(l->items->items[i + 1]) : jv_undef("there is no next item");
    else
        *found = false;
    (void)c;
    return 0;
}

int jget_pyattr(struct jctx *c, struct jv obj, const char *name, size_t n, const char *hint,
                struct jv *out, bool *found)
{
    *found = false;
    *out = attr_undef(obj, hint);
    if (obj.type == JV_UNDEF || obj.type == JV_EMPTY)
        return undef_error(c, obj);
    if (n > 0 && name[0] == '_') /* the sandbox hides private attributes */
        return 0;
    if (obj.type == JV_NS) {
        struct jv v;
        if (jdict_get_str(jv_dict(obj), name, n, &v)) {
            *out = jv_ref(v);
            *found = true;
        }
        return 0;
    }
    if (obj.type == JV_LOOP) {
        char buf[16];
        if (n < sizeof(buf)) {
            memcpy(buf, name, n);
            buf[n] = 0;
            if (loop_attr(c, (struct jloop *)obj.u.o, buf, out, found) != 0)
                return -1;
            if (*found)
                return 0;
            *out = attr_undef(obj, hint);
        }
    }
    if (obj.type == JV_LIST && jv_list(obj)->gname == jgroup_name) {
        int k = n == 7 && !memcmp(name, "grouper", 7) ? 0 : n == 4 && !memcmp(name, "list", 4) ? 1 : -1;
        if (k >= 0) {
            *out = jv_ref(jv_list(obj)->items[k]);
            *found = true;
            return 0;
        }
    }
    if (obj.type == JV_CYCLER && n == 7 && !memcmp(name, "current", 7)) {
        struct jcycler *cy = (struct jcycler *)obj.u.o;
        *out = jv_ref(cy->items->items[cy->pos]);
        *found = true;
        return 0;
    }
    bool unsafe = false;
    int id = jmethod_lookup(obj, name, n, &unsafe);
    if (unsafe) {
        *found = true;
        out->flags |= JVF_UNSAFE;
        return 0;
    }
    if (id < 0)
        return 0;
    struct jmethod *m = jalloc(c, sizeof(*m));
    if (!m)
        return -1;
    memset(m, 0, sizeof(*m));
    m->h.rc = 1;
    m->h.type = JV_METHOD;
    m->h.bytes = sizeof(*m);
    m->self = jv_ref(obj);
    m->id = (uint16_t)id;
    if (jv_check_depth(c, &m->h.depth, obj) != 0) {
        jv_decref(c, jv_obj(JV_METHOD, m));
        return -1;
    }
    *out = jv_obj(JV_METHOD, m);
    *found = true;
    return 0;
}

int jget_attr(struct jctx *c, struct jv obj, const char *name, size_t n, const char *hint,
              struct jv *out)
{
    bool found;
    if (jget_pyattr(c, obj, name, n, hint, out, &found) != 0)
        return -1;
    if (found)
        return 0;
    if (obj.type == JV_DICT) {
        struct jv v;
        if (jdict_get_str(jv_dict(obj), name, n, &v))
            *out = jv_ref(v);
    }
    return 0;
}

static bool as_index(struct jv k, int64_t *i)
{
    if (k.type == JV_INT) {
        *i = k.u.i;
        return true;
    }
    if (k.type == JV_BOOL) {
        *i = k.u.b;
        return true;
    }
    return false;
}

/* Byte offset of code point i (0 <= i <= nchars) in s. */
static size_t str_offset(const struct jstr *s, size_t i)
{
    const unsigned char *p = (const unsigned char *)s->data;
    size_t off = 0;
    while (i > 0 && off < s->len) {
        size_t len = 1;
        if (p[off] >= 0x80)
            jutf8_dec(p + off, s->len - off, &len);
        off += len;
        i--;
    }
    return off;
}

int jget_item(struct jctx *c, struct jv obj, struct jv key, struct jv *out)
{
    const char *hint = NULL;
    if (key.type == JV_STR && jv_str(key)->h.rc == JRC_IMMORTAL)
        hint = jv_str(key)->data;
    *out = attr_undef(obj, hint);
    int64_t i;
    switch (obj.type) {
    case JV_UNDEF:
    case JV_EMPTY:
        return undef_error(c, obj);
    case JV_LIST: {
        struct jlist *l = jv_list(obj);
        if (l->h.kind != JL_GEN && l->h.kind != JL_VIEW && as_index(key, &i)) {
            if (i < 0)
                i += (int64_t)l->n;
            if (i >= 0 && (size_t)i < l->n)
                *out = jv_ref(l->items[i]);
            return 0;
        }
        break;
    }
    case JV_STR: {
        struct jstr *s = jv_str(obj);
        if (as_index(key, &i)) {
            int64_t n = (int64_t)jstr_nchars(s);
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                size_t off = str_offset(s, (size_t)i), len = 1;
                if ((unsigned char)s->data[off] >= 0x80)
                    jutf8_dec((const unsigned char *)s->data + off, s->len - off, &len);
                if (jstr_new(c, s->data + off, len, out) != 0)
                    return -1;
                out->flags = obj.flags & JVF_MARKUP;
            }
            return 0;
        }
        break;
    }
    case JV_DICT: {
        struct jv v;
        if (jdict_get(jv_dict(obj), key, &v)) {
            *out = jv_ref(v);
            return 0;
        }
        break;
    }
    default:
        break;
    }
    if (key.type == JV_STR) {
        bool found;
        return jget_pyattr(c, obj, jv_str(key)->data, jv_str(key)->len, hint, out, &found);
    }
    return 0;
}

/* Python slice indices for a sequence of length n. */
static void slice_bounds(int64_t n, const struct jv *start, const struct jv *stop, int64_t step,
                         int64_t *lo, int64_t *hi)
{
    int64_t s, e;
    if (step > 0) {
        s = 0;
        e = n;
    } else {
        s = n - 1;
        e = -1;
    }
    if (start && start->type != JV_NONE) {
        s = start->type == JV_BOOL ? start->u.b : start->u.i;
        if (s < 0) {
            s += n;
            if (s < 0)
                s = step > 0 ? 0 : -1;
        } else if (s >= n) {
            s = step > 0 ? n : n - 1;
        }
    }
    if (stop && stop->type != JV_NONE) {
        e = stop->type == JV_BOOL ? stop->u.b : stop->u.i;
        if (e < 0) {
            e += n;
            if (e < 0)
                e = step > 0 ? 0 : -1;
        } else if (e >= n) {
            e = step > 0 ? n : n - 1;
        }
    }
    *lo = s;
    *hi = e;
}

int jslice(struct jctx *c, struct jv obj, const struct jv *start, const struct jv *stop,
           const struct jv *step, struct jv *out)
{
    /* jinja2 compiles x[a:b] to a plain Python subscript (not its getitem),
     * so every failure here is an error, never an undefined value */
    *out = jv_make(JV_EMPTY);
    if (obj.type == JV_UNDEF || obj.type == JV_EMPTY)
        return undef_error(c, obj);
    bool sliceable = obj.type == JV_STR ||
                     (obj.type == JV_LIST && jv_list(obj)->h.kind != JL_GEN &&
                      jv_list(obj)->h.kind != JL_VIEW);
    if (!sliceable)
        return jfail(c, SHOAL_ERR_INVALID, obj.type == JV_DICT ? "unhashable type: 'slice'"
                                                                : "'%s' object is not subscriptable",
                     jv_type_name(obj));
    const struct jv *parts[3] = {start, stop, step};
    for (int k = 0; k < 3; k++) {
        if (parts[k] && parts[k]->type == JV_UNDEF)
            return undef_error(c, *parts[k]);
        if (parts[k] && parts[k]->type != JV_NONE && parts[k]->type != JV_INT &&
            parts[k]->type != JV_BOOL)
            return jfail(c, SHOAL_ERR_INVALID, "slice indices must be integers or None or have "
                                               "an __index__ method");
    }
    int64_t st = 1;
    if (step && step->type != JV_NONE) {
        st = step->type == JV_BOOL ? step->u.b : step->u.i;
        if (st == 0)
            return jfail(c, SHOAL_ERR_INVALID, "slice step cannot be zero");
    }
    if (obj.type == JV_STR) {
        struct jstr *s = jv_str(obj);
        int64_t n = (int64_t)jstr_nchars(s), lo, hi;
        slice_bounds(n, start, stop, st, &lo, &hi);
        if (st == 1) {
            if (hi <= lo) {
                *out = jstr_empty();
                out->flags = obj.flags & JVF_MARKUP;
                return 0;
            }
            size_t a = str_offset(s, (size_t)lo);
            size_t b = a + str_offset((const struct jstr *)s, (size_t)hi) - str_offset(s, (size_t)lo);
            if (jstr_new(c, s->data + a, b - a, out) != 0)
                return -1;
            out->flags = obj.flags & JVF_MARKUP;
            return 0;
        }
        /* general step: index the code points */
        size_t nc = (size_t)n;
        size_t *offs = jalloc(c, (nc + 1) * sizeof(*offs));
        if (!offs)
            return -1;
        const unsigned char *p = (const unsigned char *)s->data;
        size_t off = 0;
        for (size_t k = 0; k < nc; k++) {
            offs[k] = off;
            size_t len = 1;
            if (p[off] >= 0x80)
                jutf8_dec(p + off, s->len - off, &len);
            off += len;
        }
        offs[nc] = s->len;
        struct jsb b;
        jsb_init(&b, c);
        int rc = 0;
        for (int64_t k = lo; rc == 0 && (st > 0 ? k < hi : k > hi); k += st)
            rc = jsb_add(&b, s->data + offs[k], offs[k + 1] - offs[k]);
        jfree(c, offs, (nc + 1) * sizeof(*offs));
        if (rc != 0 || jsb_finish(&b, out) != 0) {
            jsb_fini(&b);
            return -1;
        }
        out->flags = obj.flags & JVF_MARKUP;
        return 0;
    }
    if (obj.type == JV_LIST && jv_list(obj)->h.kind != JL_GEN &&
        jv_list(obj)->h.kind != JL_VIEW) {
        struct jlist *l = jv_list(obj);
        int64_t lo, hi;
        slice_bounds((int64_t)l->n, start, stop, st, &lo, &hi);
        size_t cnt = 0;
        if (st > 0 && hi > lo)
            cnt = (size_t)((hi - lo + st - 1) / st);
        else if (st < 0 && lo > hi)
            cnt = (size_t)((lo - hi + (-st) - 1) / (-st));
        struct jlist *r = jlist_new(c, cnt, l->h.kind);
        if (!r)
            return -1;
        if (l->h.kind == JL_RANGE) { /* a slice of a range is a range */
            r->start = l->start + lo * l->step;
            r->stop = l->start + hi * l->step;
            r->step = l->step * st;
        }
        for (int64_t k = lo; st > 0 ? k < hi : k > hi; k += st)
            r->items[r->n++] = jv_ref(l->items[k]);
        r->h.depth = l->h.depth;
        *out = jv_obj(JV_LIST, r);
        return jstep_out(c, cnt, out);
    }
    return 0;
}

/* ---- Operators ---- */

static int type_error2(struct jctx *c, const char *op, struct jv a, struct jv b)
{
    return jfail(c, SHOAL_ERR_INVALID, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                 jv_type_name(a), jv_type_name(b));
}

static double as_double(struct jv v)
{
    return v.type == JV_FLOAT ? v.u.f : v.type == JV_BOOL ? (double)v.u.b : (double)v.u.i;
}
static int64_t as_int(struct jv v) { return v.type == JV_BOOL ? v.u.b : v.u.i; }

static int overflow(struct jctx *c)
{
    return jfail(c, SHOAL_ERR_TOO_BIG, "integer overflow (beyond 64 bits)");
}

static int repeat(struct jctx *c, struct jv seq, int64_t times, struct jv *out)
{
    if (times < 0)
        times = 0;
    if (seq.type == JV_STR) {
        struct jstr *s = jv_str(seq);
        if (s->len && (uint64_t)times > c->lim.max_output / s->len)
            return jfail(c, SHOAL_ERR_TOO_BIG, "string longer than %zu bytes", c->lim.max_output);
        struct jsb b;
        jsb_init(&b, c);
        for (int64_t i = 0; i < times; i++)
            if (jsb_add(&b, s->data, s->len) != 0) {
                jsb_fini(&b);
                return -1;
            }
        if (jsb_finish(&b, out) != 0)
            return -1;
        out->flags = seq.flags & JVF_MARKUP;
        return 0;
    }
    struct jlist *l = jv_list(seq);
    if (l->n && (uint64_t)times > JINJA_MAX_ITEMS / l->n)
        return jfail(c, SHOAL_ERR_TOO_BIG, "list longer than %u items", JINJA_MAX_ITEMS);
    struct jlist *r = jlist_new(c, l->n * (size_t)times, l->h.kind);
    if (!r)
        return -1;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->n; k++)
            r->items[r->n++] = jv_ref(l->items[k]);
    r->h.depth = l->h.depth;
    *out = jv_obj(JV_LIST, r);
    return jstep_out(c, r->n, out);
}

static int add(struct jctx *c, struct jv a, struct jv b, struct jv *out)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) {
            *out = jv_float(as_double(a) + as_double(b));
        } else {
            int64_t r;
            if (__builtin_add_overflow(as_int(a), as_int(b), &r))
                return overflow(c);
            *out = jv_int(r);
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        bool markup = (a.flags | b.flags) & JVF_MARKUP;
        struct jv ea = jv_ref(a), eb = jv_ref(b);
        /* Markup + str escapes the str (and str + Markup likewise) */
        if (markup && !(a.flags & JVF_MARKUP)) {
            jv_decref(c, ea);
            if (jescape(c, a, &ea) != 0) {
                jv_decref(c, eb);
                return -1;
            }
        }
        if (markup && !(b.flags & JVF_MARKUP)) {
            jv_decref(c, eb);
            if (jescape(c, b, &eb) != 0) {
                jv_decref(c, ea);
                return -1;
            }
        }
        int rc = jstr_cat(c, jv_str(ea)->data, jv_str(ea)->len, jv_str(eb)->data,
                          jv_str(eb)->len, out);
        jv_decref(c, ea);
        jv_decref(c, eb);
        if (rc == 0 && markup)
            out->flags = JVF_MARKUP;
        return rc;
    }
    if (a.type == JV_LIST && b.type == JV_LIST) {
        struct jlist *x = jv_list(a), *y = jv_list(b);
        if (x->h.kind == y->h.kind && (x->h.kind == JL_LIST || x->h.kind == JL_TUPLE)) {
            struct jlist *r = jlist_new(c, x->n + y->n, x->h.kind);
            if (!r)
                return -1;
            for (size_t i = 0; i < x->n; i++)
                r->items[r->n++] = jv_ref(x->items[i]);
            for (size_t i = 0; i < y->n; i++)
                r->items[r->n++] = jv_ref(y->items[i]);
            r->h.depth = x->h.depth > y->h.depth ? x->h.depth : y->h.depth;
            *out = jv_obj(JV_LIST, r);
            return jstep_out(c, r->n, out);
        }
    }
    if (a.type == JV_STR && !(a.flags & JVF_MARKUP))
        return jfail(c, SHOAL_ERR_INVALID, "can only concatenate str (not \"%s\") to str",
                     jv_type_name(b));
    if (a.type == JV_LIST && (jv_list(a)->h.kind == JL_LIST || jv_list(a)->h.kind == JL_TUPLE))
        return jfail(c, SHOAL_ERR_INVALID, "can only concatenate %s (not \"%s\") to %s",
                     jv_type_name(a), jv_type_name(b), jv_type_name(a));
    return type_error2(c, "+", a, b);
}

static double py_fmod(double a, double b)
{
    double m = fmod(a, b);
    if (m != 0 && ((m < 0) != (b < 0)))
        m += b;
    return m;
}

static int arith(struct jctx *c, int op, struct jv a, struct jv b, struct jv *out)
{
    static const char *const names[] = {[JOP_SUB] = "-", [JOP_MUL] = "*", [JOP_DIV] = "/",
                                        [JOP_FLOORDIV] = "//", [JOP_MOD] = "%", [JOP_POW] = "**"};
    if (op == JOP_MUL) {
        if ((a.type == JV_STR || (a.type == JV_LIST && jv_list(a)->h.kind <= JL_TUPLE)) &&
            (b.type == JV_INT || b.type == JV_BOOL))
            return repeat(c, a, as_int(b), out);
        if ((b.type == JV_STR || (b.type == JV_LIST && jv_list(b)->h.kind <= JL_TUPLE)) &&
            (a.type == JV_INT || a.type == JV_BOOL))
            return repeat(c, b, as_int(a), out);
        if (a.type == JV_STR || b.type == JV_STR || a.type == JV_LIST || b.type == JV_LIST) {
            struct jv other = a.type == JV_STR || a.type == JV_LIST ? b : a;
            if (!jv_is_num(other) || other.type == JV_FLOAT)
                return jfail(c, SHOAL_ERR_INVALID,
                             "can't multiply sequence by non-int of type '%s'",
                             jv_type_name(other));
        }
    }
    if (op == JOP_MOD && a.type == JV_STR)
        return jformat_percent(c, a, b, out);
    if (!jv_is_num(a) || !jv_is_num(b))
        return type_error2(c, names[op], a, b);
    bool fl = a.type == JV_FLOAT || b.type == JV_FLOAT;
    if (op == JOP_DIV) {
        double y = as_double(b);
        if (y == 0)
            return jfail(c, SHOAL_ERR_INVALID, "division by zero");
        *out = jv_float(as_double(a) / y);
        return 0;
    }
    if (fl) {
        double x = as_double(a), y = as_double(b);
        switch (op) {
        case JOP_SUB: *out = jv_float(x - y); return 0;
        case JOP_MUL: *out = jv_float(x * y); return 0;
        case JOP_FLOORDIV: {
            if (y == 0)
                return jfail(c, SHOAL_ERR_INVALID, "float floor division by zero");
            /* CPython's float divmod */
            double mod = fmod(x, y), div = (x - mod) / y, fd;
            if (mod != 0 && ((y < 0) != (mod < 0)))
                div -= 1.0;
            if (div != 0) {
                fd = floor(div);
                if (div - fd > 0.5)
                    fd += 1.0;
            } else {
                fd = copysign(0.0, x / y);
            }
            *out = jv_float(fd);
            return 0;
        }
        case JOP_MOD:
            if (y == 0)
                return jfail(c, SHOAL_ERR_INVALID, "float modulo");
            *out = jv_float(py_fmod(x, y));
            return 0;
        case JOP_POW:
            if (x == 0 && y < 0)
                return jfail(c, SHOAL_ERR_INVALID,
                             "0.0 cannot be raised to a negative power");
            *out = jv_float(pow(x, y));
            if (x < 0 && y != floor(y))
                return jfail(c, SHOAL_ERR_INVALID, "complex results are not supported");
            return 0;
        default: break;
        }
        return type_error2(c, names[op], a, b);
    }
    int64_t x = as_int(a), y = as_int(b), r;
    switch (op) {
    case JOP_SUB:
        if (__builtin_sub_overflow(x, y, &r))
            return overflow(c);
        break;
    case JOP_MUL:
        if (__builtin_mul_overflow(x, y, &r))
            return overflow(c);
        break;
    case JOP_FLOORDIV:
    case JOP_MOD: {
        if (y == 0)
            return jfail(c, SHOAL_ERR_INVALID, op == JOP_MOD ? "integer modulo by zero"
                                                             : "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1)
            return overflow(c);
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
            q -= 1;
            m += y;
        }
        r = op == JOP_MOD ? m : q;
        break;
    }
    case JOP_POW:
        if (y < 0) {
            if (x == 0)
                return jfail(c, SHOAL_ERR_INVALID, "0.0 cannot be raised to a negative power");
            *out = jv_float(pow((double)x, (double)y));
            return 0;
        }
        r = 1;
        for (int64_t base = x, e = y; e > 0; e >>= 1) {
            if ((e & 1) && __builtin_mul_overflow(r, base, &r))
                return overflow(c);
            if (e > 1 && __builtin_mul_overflow(base, base, &base))
                return overflow(c);
        }
        break;
    default:
        return type_error2(c, "?", a, b);
    }
    *out = jv_int(r);
    return 0;
}

int jbinop(struct jctx *c, int op, struct jv a, struct jv b, struct jv *out)
{
    if (op == JOP_CONCAT) {
        struct jsb sb;
        jsb_init(&sb, c);
        if (jv_write_str(c, a, &sb) != 0 || jv_write_str(c, b, &sb) != 0) {
            jsb_fini(&sb);
            return -1;
        }
        return jsb_finish(&sb, out);
    }
    if (op == JOP_MOD && a.type == JV_STR && b.type == JV_UNDEF)
        return jformat_percent(c, a, b, out); /* str.__mod__ accepts it as a mapping */
    if (a.type == JV_UNDEF)
        return undef_error(c, a);
    if (b.type == JV_UNDEF)
        return undef_error(c, b);
    if (op == JOP_ADD)
        return add(c, a, b, out);
    return arith(c, op, a, b, out);
}

static int compare_op(struct jctx *c, int op, struct jv a, struct jv b, bool *res)
{
    int cmp;
    switch (op) {
    case JOP_EQ:
    case JOP_NE:
        if (jv_equal(c, a, b, res) != 0)
            return -1;
        if (op == JOP_NE)
            *res = !*res;
        return 0;
    case JOP_IN:
    case JOP_NOTIN:
        if (jv_contains(c, b, a, res) != 0)
            return -1;
        if (op == JOP_NOTIN)
            *res = !*res;
        return 0;
    default: {
        static const char *const names[] = {[JOP_LT] = "<", [JOP_LE] = "<=", [JOP_GT] = ">",
                                            [JOP_GE] = ">="};
        if (jv_compare(c, a, b, names[op], &cmp) != 0)
            return -1;
        switch (op) {
        case JOP_LT: *res = cmp == -1; break;
        case JOP_LE: *res = cmp == -1 || cmp == 0; break;
        case JOP_GT: *res = cmp == 1; break;
        default: *res = cmp == 1 || cmp == 0; break;
        }
        return 0;
    }
    }
}

/* ---- Calls ---- */

/* Evaluated call arguments: positional values, keyword values with their
 * names, and the *args / **kwargs containers they were expanded from
 * (kept alive because names point into their keys). */
struct callargs {
    struct jv psmall[8], ksmall[8];
    const char *nsmall[8];
    struct jv *pos, *kw;
    const char **names;
    size_t npos, pcap, nkw, kcap;
    struct jv dyn_args, dyn_kwargs;
};

static void callargs_init(struct callargs *ca)
{
    ca->pos = ca->psmall;
    ca->kw = ca->ksmall;
    ca->names = ca->nsmall;
    ca->npos = ca->nkw = 0;
    ca->pcap = ca->kcap = SHOAL_ARRAY_LEN(ca->psmall);
    ca->dyn_args = ca->dyn_kwargs = jv_make(JV_EMPTY);
}

static int push_pos(struct jctx *c, struct callargs *ca, struct jv v)
{
    if (ca->npos == ca->pcap) {
        struct jv *p = grow_small(c, ca->pos, ca->psmall, ca->npos, ca->pcap, sizeof(*p));
        if (!p) {
            jv_decref(c, v);
            return -1;
        }
        ca->pos = p;
        ca->pcap *= 2;
    }
    ca->pos[ca->npos++] = v;
    return 0;
}

static int push_kw(struct jctx *c, struct callargs *ca, const char *name, struct jv v)
{
    for (size_t i = 0; i < ca->nkw; i++)
        if (!strcmp(ca->names[i], name)) {
            jv_decref(c, v);
            return jfail(c, SHOAL_ERR_INVALID, "got multiple values for keyword argument '%s'",
                         name);
        }
    if (ca->nkw == ca->kcap) {
        size_t cap = ca->kcap * 2;
        struct jv *k = jalloc(c, cap * sizeof(*k));
        const char **nm = jalloc(c, cap * sizeof(*nm));
        if (!k || !nm) {
            jfree(c, k, k ? cap * sizeof(*k) : 0);
            jfree(c, nm, nm ? cap * sizeof(*nm) : 0);
            jv_decref(c, v);
            return -1;
        }
        memcpy(k, ca->kw, ca->nkw * sizeof(*k));
        memcpy(nm, ca->names, ca->nkw * sizeof(*nm));
        if (ca->kw != ca->ksmall) {
            jfree(c, ca->kw, ca->kcap * sizeof(*k));
            jfree(c, ca->names, ca->kcap * sizeof(*nm));
        }
        ca->kw = k;
        ca->names = nm;
        ca->kcap = cap;
    }
    ca->names[ca->nkw] = name;
    ca->kw[ca->nkw++] = v;
    return 0;
}

/* Evaluate a call's arguments (n->args, n->kwargs, *n->b, **n->c). On
 * failure what was evaluated stays in ca for callargs_free. */
static int callargs_eval(struct jctx *c, const struct jnode *n, struct callargs *ca)
{
    struct jv v;
    for (uint32_t i = 0; i < n->nargs; i++)
        if (eval(c, n->args[i], &v) != 0 || push_pos(c, ca, v) != 0)
            return -1;
    if (n->b) {
        struct jlist *items;
        if (eval(c, n->b, &ca->dyn_args) != 0)
            return -1;
        if (jiter_items(c, ca->dyn_args, &items) != 0) {
            jfail_at(c, n->b);
            return -1;
        }
        int r = 0;
        for (size_t i = 0; i < items->n && r == 0; i++)
            r = push_pos(c, ca, jv_ref(items->items[i]));
        jv_decref(c, jv_obj(JV_LIST, items));
        if (r != 0)
            return -1;
    }
    for (uint32_t i = 0; i < n->nkwargs; i++)
        if (eval(c, n->kwargs[i], &v) != 0 || push_kw(c, ca, n->kwnames[i], v) != 0)
            return -1;
    if (n->c) {
        if (eval(c, n->c, &ca->dyn_kwargs) != 0)
            return -1;
        if (ca->dyn_kwargs.type != JV_DICT) {
            jfail(c, SHOAL_ERR_INVALID, "argument after ** must be a mapping, not %s",
                  jv_type_name(ca->dyn_kwargs));
            jfail_at(c, n->c);
            return -1;
        }
        struct jdict *d = jv_dict(ca->dyn_kwargs);
        for (size_t i = 0; i < d->n; i++) {
            if (d->e[i].k.type != JV_STR)
                return jfail(c, SHOAL_ERR_INVALID, "keywords must be strings");
            if (push_kw(c, ca, jv_str(d->e[i].k)->data, jv_ref(d->e[i].v)) != 0)
                return -1;
        }
    }
    return 0;
}

static void callargs_free(struct jctx *c, struct callargs *ca)
{
    for (size_t i = 0; i < ca->npos; i++)
        jv_decref(c, ca->pos[i]);
    for (size_t i = 0; i < ca->nkw; i++)
        jv_decref(c, ca->kw[i]);
    if (ca->pos != ca->psmall)
        jfree(c, ca->pos, ca->pcap * sizeof(*ca->pos));
    if (ca->kw != ca->ksmall) {
        jfree(c, ca->kw, ca->kcap * sizeof(*ca->kw));
        jfree(c, ca->names, ca->kcap * sizeof(*ca->names));
    }
    jv_decref(c, ca->dyn_args);
    jv_decref(c, ca->dyn_kwargs);
    callargs_init(ca);
}

static struct jargs callargs_view(const struct callargs *ca)
{
    struct jargs a = {ca->pos, ca->npos, ca->names, ca->kw, ca->nkw};
    return a;
}

/* Run body with output captured into a string. */
static int capture(struct jctx *c, struct jnode *const *body, uint32_t n, struct jv *out)
{
    struct jsb buf;
    jsb_init(&buf, c);
    struct jsb *saved = c->out;
    c->out = &buf;
    int r = exec_body(c, body, n);
    c->out = saved;
    if (r != X_OK) {
        jsb_fini(&buf);
        return r;
    }
    return jsb_finish(&buf, out);
}

static int call_macro(struct jctx *c, struct jmacro *m, const struct jargs *a, struct jv caller,
                      struct jv *out)
{
    const struct jnode *def = m->def;
    const char *name = m->is_caller ? "caller" : def->str;
    if (m->is_caller && !m->alive)
        return jfail(c, SHOAL_ERR_INVALID, "caller() used after its call block ended");
    if (c->macro_depth >= c->lim.max_macro_depth)
        return jfail(c, SHOAL_ERR_TOO_BIG, "macro calls nested more than %u deep",
                     c->lim.max_macro_depth);
    bool varargs = !m->is_caller && (def->op & MACRO_VARARGS);
    bool kwargs = !m->is_caller && (def->op & MACRO_KWARGS);
    if (a->npos > def->nparams && !varargs)
        return jfail(c, SHOAL_ERR_INVALID, "macro '%s' takes not more than %u argument(s)", name,
                     def->nparams);
    for (size_t k = 0; k < a->nkw && !kwargs; k++) {
        bool ok = false;
        for (uint32_t p = 0; p < def->nparams; p++) {
            if (!strcmp(def->pnames[p], a->kwnames[k])) {
                if (p < a->npos)
                    return jfail(c, SHOAL_ERR_INVALID,
                                 "macro '%s' got multiple values for argument '%s'", name,
                                 a->kwnames[k]);
                ok = true;
            }
        }
        if (!ok)
            return jfail(c, SHOAL_ERR_INVALID, "macro '%s' takes no keyword argument '%s'", name,
                         a->kwnames[k]);
    }
    struct jframe f;
    frame_init(&f, m->is_caller ? m->scope : NULL);
    struct jframe *saved_frame = c->frame;
    c->frame = &f;
    c->macro_depth++;
    int r = 0;
    for (uint32_t p = 0; p < def->nparams && r == 0; p++) {
        struct jv v = jv_make(JV_EMPTY);
        if (p < a->npos) {
            v = jv_ref(a->pos[p]);
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (!strcmp(def->pnames[p], a->kwnames[k]))
                    v = jv_ref(a->kw[k]);
        }
        if (v.type == JV_EMPTY) {
            if (def->pdefaults && def->pdefaults[p]) {
                if (eval(c, def->pdefaults[p], &v) != 0) {
                    r = -1;
                    break;
                }
            } else {
                v = jv_undef(def->pnames[p]);
            }
        }
        r = frame_set(c, &f, def->psyms[p], v);
    }
    if (r == 0 && caller.type != JV_EMPTY)
        r = frame_set(c, &f, c->t->sym_caller, jv_ref(caller));
    if (r == 0 && varargs) { /* the positional arguments beyond the parameters */
        size_t extra = a->npos > def->nparams ? a->npos - def->nparams : 0;
        struct jlist *t = jlist_new(c, extra, JL_TUPLE);
        r = t ? 0 : -1;
        for (size_t k = 0; r == 0 && k < extra; k++)
            r = jlist_push(c, t, jv_ref(a->pos[def->nparams + k]));
        if (t)
            r = r == 0 ? frame_set(c, &f, c->t->sym_varargs, jv_obj(JV_LIST, t))
                       : (jv_decref(c, jv_obj(JV_LIST, t)), -1);
    }
    if (r == 0 && kwargs) { /* the keyword arguments that name no parameter */
        struct jdict *d = jdict_new(c, 0);
        r = d ? 0 : -1;
        for (size_t k = 0; r == 0 && k < a->nkw; k++) {
            bool named = false;
            for (uint32_t p = 0; p < def->nparams; p++)
                named = named || !strcmp(def->pnames[p], a->kwnames[k]);
            struct jv key;
            if (!named && (r = jstr_new(c, a->kwnames[k], strlen(a->kwnames[k]), &key)) == 0)
                r = jdict_set(c, d, key, jv_ref(a->kw[k]));
        }
        if (d)
            r = r == 0 ? frame_set(c, &f, c->t->sym_kwargs, jv_obj(JV_DICT, d))
                       : (jv_decref(c, jv_obj(JV_DICT, d)), -1);
    }
    if (r == 0) {
        r = capture(c, def->body, def->nbody, out);
        if (r > 0) /* break/continue cannot leave a macro; the parser prevents it */
            r = jfail(c, SHOAL_ERR_INTERNAL, "loop control escaped a macro");
    }
    c->macro_depth--;
    c->frame = saved_frame;
    frame_fini(c, &f);
    return r;
}

static int exec_for_items(struct jctx *c, const struct jnode *n, struct jlist *items,
                          uint32_t depth0);

int jcall_value(struct jctx *c, struct jv callee, const struct jargs *a, struct jv *out)
{
    switch (callee.type) {
    case JV_MACRO:
        return call_macro(c, (struct jmacro *)callee.u.o, a, jv_make(JV_EMPTY), out);
    case JV_FUNC:
        return jfunc_call(c, (int)callee.u.i, a, out);
    case JV_METHOD: {
        struct jmethod *m = (struct jmethod *)callee.u.o;
        return jmethod_call(c, m->id, m->self, a, out);
    }
    case JV_LOOP: {
        struct jloop *l = (struct jloop *)callee.u.o;
        if (!l->node || !l->node->flag)
            return jfail(c, SHOAL_ERR_INVALID,
                         "Tried to call non recursive loop. Maybe you forgot the 'recursive' "
                         "modifier.");
        if (!l->alive)
            return jfail(c, SHOAL_ERR_INVALID, "loop() called after its loop ended");
        if (a->npos != 1 || a->nkw)
            return jfail(c, SHOAL_ERR_INVALID, "loop() takes exactly one argument");
        if (l->depth0 + 1 >= c->lim.max_macro_depth) /* counted like macro calls */
            return jfail(c, SHOAL_ERR_TOO_BIG, "recursive loop nested more than %u deep",
                         c->lim.max_macro_depth);
        struct jlist *items;
        if (jiter_items(c, a->pos[0], &items) != 0)
            return -1;
        struct jsb buf;
        jsb_init(&buf, c);
        struct jsb *saved = c->out;
        struct jframe *saved_frame = c->frame;
        c->out = &buf;
        c->frame = l->scope;
        int r = exec_for_items(c, l->node, items, l->depth0 + 1);
        c->out = saved;
        c->frame = saved_frame;
        jv_decref(c, jv_obj(JV_LIST, items));
        if (r != 0) {
            jsb_fini(&buf);
            return -1;
        }
        return jsb_finish(&buf, out);
    }
    case JV_JOINER: {
        struct jjoiner *j = (struct jjoiner *)callee.u.o;
        if (!j->used) {
            j->used = true;
            *out = jstr_empty();
        } else {
            *out = jv_ref(j->sep);
        }
        return 0;
    }
    case JV_UNDEF:
    case JV_EMPTY:
        return undef_error(c, callee);
    default:
        return jfail(c, SHOAL_ERR_INVALID, "'%s' object is not callable", jv_type_name(callee));
    }
}

static int eval_call(struct jctx *c, const struct jnode *n, struct jv caller, struct jv *out)
{
    struct callargs ca;
    callargs_init(&ca);
    struct jv callee = jv_make(JV_EMPTY), self = jv_make(JV_EMPTY);
    int method = -1, r = -1;
    const struct jnode *fn = n->a;
    if (fn->kind == E_ATTR) {
        /* obj.method(...): dispatch without building a bound method */
        if (eval(c, fn->a, &self) != 0)
            goto done;
        if (self.type == JV_UNDEF) {
            undef_error(c, self);
            goto done;
        }
        bool unsafe = false;
        if (self.type != JV_NS)
            method = jmethod_lookup(self, fn->str, fn->len, &unsafe);
        if (method < 0 && jget_attr(c, self, fn->str, fn->len, fn->str, &callee) != 0)
            goto done;
    } else if (eval(c, fn, &callee) != 0) {
        goto done;
    }
    if (callargs_eval(c, n, &ca) != 0)
        goto done;
    struct jargs a = callargs_view(&ca);
    if (method >= 0)
        r = jmethod_call(c, method, self, &a, out);
    else if (caller.type != JV_EMPTY) {
        if (callee.type != JV_MACRO) {
            r = jfail(c, SHOAL_ERR_INVALID, "a call block must call a macro");
            goto done;
        }
        r = call_macro(c, (struct jmacro *)callee.u.o, &a, caller, out);
    } else {
        r = jcall_value(c, callee, &a, out);
    }
done:
    callargs_free(c, &ca);
    jv_decref(c, self);
    jv_decref(c, callee);
    if (r != 0)
        jfail_at(c, n);
    return r;
}

static int eval_filter(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv in;
    if (n->a) {
        if (eval(c, n->a, &in) != 0)
            return -1;
    } else {
        in = jv_ref(c->filter_input);
    }
    if (n->op == UINT16_MAX) {
        jv_decref(c, in);
        jfail(c, SHOAL_ERR_INVALID, "No filter named '%s'.", n->str);
        jfail_at(c, n);
        return -1;
    }
    struct callargs ca;
    callargs_init(&ca);
    int r = -1;
    if (callargs_eval(c, n, &ca) == 0) {
        struct jargs a = callargs_view(&ca);
        r = jfilter_apply(c, n->op, in, &a, out);
    }
    callargs_free(c, &ca);
    jv_decref(c, in);
    if (r != 0)
        jfail_at(c, n);
    return r;
}

static int eval_test(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv in;
    if (eval(c, n->a, &in) != 0)
        return -1;
    if (n->op == UINT16_MAX) {
        jv_decref(c, in);
        jfail(c, SHOAL_ERR_INVALID, "No test named '%s'.", n->str);
        jfail_at(c, n);
        return -1;
    }
    struct callargs ca;
    callargs_init(&ca);
    int r = -1;
    bool res = false;
    if (callargs_eval(c, n, &ca) == 0) {
        struct jargs a = callargs_view(&ca);
        r = jtest_apply(c, n->op, in, &a, &res);
    }
    callargs_free(c, &ca);
    jv_decref(c, in);
    if (r != 0) {
        jfail_at(c, n);
        return -1;
    }
    *out = jv_bool(res);
    return 0;
}

static int build_seq(struct jctx *c, const struct jnode *n, enum jlist_kind kind, struct jv *out)
{
    struct jlist *l = jlist_new(c, n->nargs, kind);
    if (!l)
        return -1;
    struct jv lv = jv_obj(JV_LIST, l);
    for (uint32_t i = 0; i < n->nargs; i++) {
        struct jv v;
        if (eval(c, n->args[i], &v) != 0 || jlist_push(c, l, v) != 0) {
            jv_decref(c, lv);
            return -1;
        }
    }
    *out = lv;
    return 0;
}

static int eval_inner(struct jctx *c, const struct jnode *n, struct jv *out)
{
    struct jv a, b;
    switch (n->kind) {
    case E_CONST:
        *out = jv_ref(n->cval);
        return 0;
    case E_NAME:
        *out = jv_ref(lookup(c, n->sym));
        return 0;
    case E_ATTR:
        if (eval(c, n->a, &a) != 0)
            return -1;
        if (jget_attr(c, a, n->str, n->len, n->str, out) != 0) {
            jv_decref(c, a);
            return -1;
        }
        jv_decref(c, a);
        return 0;
    case E_ITEM: {
        if (eval(c, n->a, &a) != 0)
            return -1;
        if (eval(c, n->b, &b) != 0) {
            jv_decref(c, a);
            return -1;
        }
        int r = jget_item(c, a, b, out);
        jv_decref(c, a);
        jv_decref(c, b);
        return r;
    }
    case E_SLICE: {
        struct jv parts[3];
        int got = 0, r = -1;
        if (eval(c, n->a, &a) != 0)
            return -1;
        for (; got < 3; got++) {
            if (!n->args[got]) {
                parts[got] = jv_none();
                continue;
            }
            if (eval(c, n->args[got], &parts[got]) != 0)
                break;
        }
        if (got == 3)
            r = jslice(c, a, &parts[0], &parts[1], &parts[2], out);
        for (int k = 0; k < got; k++)
            jv_decref(c, parts[k]);
        jv_decref(c, a);
        return r;
    }
    case E_CALL:
        return eval_call(c, n, jv_make(JV_EMPTY), out);
    case E_FILTER:
        return eval_filter(c, n, out);
    case E_TEST:
        return eval_test(c, n, out);
    case E_BINOP: {
        if (eval(c, n->a, &a) != 0)
            return -1;
        if (eval(c, n->b, &b) != 0) {
            jv_decref(c, a);
            return -1;
        }
        int r = jbinop(c, n->op, a, b, out);
        jv_decref(c, a);
        jv_decref(c, b);
        return r;
    }
    case E_AND:
    case E_OR:
        if (eval(c, n->a, &a) != 0)
            return -1;
        if (jv_truthy(a) == (n->kind == E_OR)) {
            *out = a;
            return 0;
        }
        jv_decref(c, a);
        return eval(c, n->b, out);
    case E_NOT:
        if (eval(c, n->a, &a) != 0)
            return -1;
        *out = jv_bool(!jv_truthy(a));
        jv_decref(c, a);
        return 0;
    case E_NEG:
    case E_POS:
        if (eval(c, n->a, &a) != 0)
            return -1;
        if (a.type == JV_INT || a.type == JV_BOOL) {
            int64_t x = as_int(a);
            if (n->kind == E_NEG && x == INT64_MIN)
                return overflow(c);
            *out = jv_int(n->kind == E_NEG ? -x : x);
            return 0;
        }
        if (a.type == JV_FLOAT) {
            *out = jv_float(n->kind == E_NEG ? -a.u.f : a.u.f);
            return 0;
        }
        if (a.type == JV_UNDEF)
            return undef_error(c, a);
        {
            int r = jfail(c, SHOAL_ERR_INVALID, "bad operand type for unary %c: '%s'",
                          n->kind == E_NEG ? '-' : '+', jv_type_name(a));
            jv_decref(c, a);
            return r;
        }
    case E_COMPARE: {
        if (eval(c, n->a, &a) != 0)
            return -1;
        bool res = true;
        for (uint32_t i = 0; i < n->nargs && res; i++) {
            if (eval(c, n->args[i], &b) != 0) {
                jv_decref(c, a);
                return -1;
            }
            if (compare_op(c, n->ops[i], a, b, &res) != 0) {
                jv_decref(c, a);
                jv_decref(c, b);
                return -1;
            }
            jv_decref(c, a);
            a = b;
        }
        jv_decref(c, a);
        *out = jv_bool(res);
        return 0;
    }
    case E_COND:
        if (eval(c, n->b, &a) != 0)
            return -1;
        {
            bool t = jv_truthy(a);
            jv_decref(c, a);
            if (t)
                return eval(c, n->a, out);
            if (n->c)
                return eval(c, n->c, out);
            *out = jv_undef("the inline if-expression evaluated to false and no else "
                            "section was defined");
            return 0;
        }
    case E_LIST:
        return build_seq(c, n, JL_LIST, out);
    case E_TUPLE:
        return build_seq(c, n, JL_TUPLE, out);
    case E_DICT: {
        struct jdict *d = jdict_new(c, n->nargs);
        if (!d)
            return -1;
        struct jv dv = jv_obj(JV_DICT, d);
        for (uint32_t i = 0; i < n->nargs; i++) {
            if (eval(c, n->args[i], &a) != 0) {
                jv_decref(c, dv);
                return -1;
            }
            if (eval(c, n->kwargs[i], &b) != 0) {
                jv_decref(c, a);
                jv_decref(c, dv);
                return -1;
            }
            if (jdict_set(c, d, a, b) != 0) {
                jv_decref(c, dv);
                return -1;
            }
        }
        *out = dv;
        return 0;
    }
    default:
        return jfail(c, SHOAL_ERR_INTERNAL, "unexpected node %d", n->kind);
    }
}

static int eval(struct jctx *c, const struct jnode *n, struct jv *out)
{
    *out = jv_make(JV_EMPTY);
    if (++c->steps > c->lim.max_steps) {
        jstep(c, 0);
        jfail_at(c, n);
        return -1;
    }
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        jfail(c, SHOAL_ERR_TOO_BIG, "template nested too deeply while rendering (more than %u levels)",
              c->lim.max_depth);
        jfail_at(c, n);
        return -1;
    }
    int r = eval_inner(c, n, out);
    c->depth--;
    if (r != 0) {
        *out = jv_make(JV_EMPTY);
        jfail_at(c, n);
    }
    return r;
}

/* ---- Statements ---- */

/* Bind a for/set target to v (borrowed). */
static int bind_target(struct jctx *c, const struct jnode *tgt, struct jv v,
                       struct jframe *into)
{
    if (tgt->kind == E_NAME) {
        if (into)
            return frame_set(c, into, tgt->sym, jv_ref(v));
        return assign(c, tgt->sym, jv_ref(v));
    }
    if (tgt->kind == E_TUPLE) {
        struct jlist *items;
        if (jiter_items(c, v, &items) != 0)
            return -1;
        int r = 0;
        if (items->n != tgt->nargs) {
            if (items->n > tgt->nargs)
                r = jfail(c, SHOAL_ERR_INVALID, "too many values to unpack (expected %u)",
                          tgt->nargs);
            else
                r = jfail(c, SHOAL_ERR_INVALID,
                          "not enough values to unpack (expected %u, got %zu)", tgt->nargs,
                          items->n);
        }
        for (uint32_t i = 0; i < tgt->nargs && r == 0; i++)
            r = bind_target(c, tgt->args[i], items->items[i], into);
        jv_decref(c, jv_obj(JV_LIST, items));
        return r;
    }
    if (tgt->kind == E_NSREF) {
        struct jv ns = lookup(c, tgt->sym);
        if (ns.type != JV_NS)
            return jfail(c, SHOAL_ERR_INVALID, "cannot assign attribute on non-namespace object");
        return jdict_set(c, jv_dict(ns), tgt->cval, jv_ref(v));
    }
    return jfail(c, SHOAL_ERR_INVALID, "cannot assign to this target");
}

static int exec_for_items(struct jctx *c, const struct jnode *n, struct jlist *items,
                          uint32_t depth0)
{
    struct jframe f;
    frame_init(&f, c->frame);
    struct jframe *saved = c->frame;
    int r = 0;
    struct jlist *list = items;
    jv_incref(jv_obj(JV_LIST, list));
    if (n->b) {
        /* {% for x in seq if cond %}: filter first, so loop.* count the kept items */
        struct jlist *kept = jlist_new(c, 0, JL_LIST);
        if (!kept) {
            jv_decref(c, jv_obj(JV_LIST, list));
            return -1;
        }
        c->frame = &f;
        for (size_t i = 0; i < list->n && r == 0; i++) {
            frame_clear(c, &f);
            struct jv cond;
            r = bind_target(c, n->tgt, list->items[i], &f);
            if (r == 0)
                r = eval(c, n->b, &cond);
            if (r == 0) {
                if (jv_truthy(cond))
                    r = jlist_push(c, kept, jv_ref(list->items[i]));
                jv_decref(c, cond);
            }
        }
        frame_clear(c, &f);
        c->frame = saved;
        jv_decref(c, jv_obj(JV_LIST, list));
        list = kept;
        if (r != 0) {
            jv_decref(c, jv_obj(JV_LIST, list));
            frame_fini(c, &f);
            return -1;
        }
    }
    if (list->n == 0) {
        jv_decref(c, jv_obj(JV_LIST, list));
        frame_fini(c, &f);
        if (n->nbody2)
            return exec_body(c, n->body2, n->nbody2);
        return 0;
    }
    struct jloop *loop = jalloc(c, sizeof(*loop));
    if (!loop) {
        jv_decref(c, jv_obj(JV_LIST, list));
        frame_fini(c, &f);
        return -1;
    }
    memset(loop, 0, sizeof(*loop));
    loop->h.rc = 1;
    loop->h.type = JV_LOOP;
    loop->h.bytes = sizeof(*loop);
    loop->h.depth = (uint16_t)(list->h.depth + 1);
    loop->items = list; /* takes the reference */
    loop->depth0 = depth0;
    loop->alive = true;
    loop->node = n;
    loop->scope = saved;
    loop->changed_last = jv_make(JV_EMPTY);
    struct jv lv = jv_obj(JV_LOOP, loop);
    c->frame = &f;
    for (size_t i = 0; i < list->n; i++) {
        if (++c->loop_iters > c->lim.max_loop_iters) {
            r = jfail(c, SHOAL_ERR_TOO_BIG, "loops ran more than %u iterations",
                      c->lim.max_loop_iters);
            break;
        }
        frame_clear(c, &f);
        loop->index0 = i;
        r = bind_target(c, n->tgt, list->items[i], &f);
        if (r == 0)
            r = frame_set(c, &f, c->t->sym_loop, jv_ref(lv));
        if (r != 0)
            break;
        r = exec_body(c, n->body, n->nbody);
        if (r == X_BREAK) {
            r = 0;
            break;
        }
        if (r == X_CONTINUE)
            r = 0;
        if (r != 0)
            break;
    }
    c->frame = saved;
    loop->alive = false;
    frame_fini(c, &f);
    jv_decref(c, lv);
    return r;
}

static int exec_for(struct jctx *c, const struct jnode *n)
{
    struct jv seq;
    if (eval(c, n->a, &seq) != 0)
        return -1;
    struct jlist *items;
    int r = jiter_items(c, seq, &items);
    jv_decref(c, seq);
    if (r != 0) {
        jfail_at(c, n->a);
        return -1;
    }
    r = exec_for_items(c, n, items, 0);
    jv_decref(c, jv_obj(JV_LIST, items));
    return r;
}

static int exec_output(struct jctx *c, struct jv v)
{
    if (v.type == JV_STR)
        return jsb_add(c->out, jv_str(v)->data, jv_str(v)->len);
    return jv_write_str(c, v, c->out);
}

static int exec_stmt(struct jctx *c, const struct jnode *n)
{
    struct jv v;
    int r;
    switch (n->kind) {
    case S_DATA:
        return jsb_add(c->out, n->str, n->len);
    case S_OUTPUT:
        if (eval(c, n->a, &v) != 0)
            return -1;
        r = exec_output(c, v);
        jv_decref(c, v);
        return r;
    case S_IF:
        if (eval(c, n->a, &v) != 0)
            return -1;
        r = jv_truthy(v);
        jv_decref(c, v);
        return r ? exec_body(c, n->body, n->nbody) : exec_body(c, n->body2, n->nbody2);
    case S_FOR:
        return exec_for(c, n);
    case S_SET:
        if (eval(c, n->a, &v) != 0)
            return -1;
        r = bind_target(c, n->tgt, v, NULL);
        jv_decref(c, v);
        return r;
    case S_SETBLOCK: {
        r = capture(c, n->body, n->nbody, &v);
        if (r != 0)
            return r;
        if (n->b) {
            struct jv saved = c->filter_input, filtered;
            c->filter_input = v;
            r = eval(c, n->b, &filtered);
            c->filter_input = saved;
            jv_decref(c, v);
            if (r != 0)
                return -1;
            v = filtered;
        }
        r = bind_target(c, n->tgt, v, NULL);
        jv_decref(c, v);
        return r;
    }
    case S_FILTERBLOCK: {
        r = capture(c, n->body, n->nbody, &v);
        if (r != 0)
            return r;
        struct jv saved = c->filter_input, filtered;
        c->filter_input = v;
        r = eval(c, n->b, &filtered);
        c->filter_input = saved;
        jv_decref(c, v);
        if (r != 0)
            return -1;
        r = exec_output(c, filtered);
        jv_decref(c, filtered);
        return r;
    }
    case S_MACRO: {
        struct jmacro *m = jalloc(c, sizeof(*m));
        if (!m)
            return -1;
        memset(m, 0, sizeof(*m));
        m->h.rc = 1;
        m->h.type = JV_MACRO;
        m->h.bytes = sizeof(*m);
        m->def = n;
        m->caller = jv_make(JV_EMPTY);
        return assign(c, n->sym, jv_obj(JV_MACRO, m));
    }
    case S_CALLBLOCK: {
        struct jmacro *m = jalloc(c, sizeof(*m));
        if (!m)
            return -1;
        memset(m, 0, sizeof(*m));
        m->h.rc = 1;
        m->h.type = JV_MACRO;
        m->h.bytes = sizeof(*m);
        m->def = n;
        m->is_caller = true;
        m->alive = true;
        m->scope = c->frame;
        m->caller = jv_make(JV_EMPTY);
        struct jv cv = jv_obj(JV_MACRO, m);
        r = eval_call(c, n->a, cv, &v);
        m->alive = false;
        jv_decref(c, cv);
        if (r != 0)
            return -1;
        r = exec_output(c, v);
        jv_decref(c, v);
        return r;
    }
    case S_WITH: {
        struct jframe f;
        frame_init(&f, c->frame);
        r = 0;
        for (uint32_t i = 0; i < n->nargs && r == 0; i++) {
            r = eval(c, n->kwargs[i], &v);
            if (r == 0) {
                r = bind_target(c, n->args[i], v, &f);
                jv_decref(c, v);
            }
        }
        struct jframe *saved = c->frame;
        c->frame = &f;
        if (r == 0)
            r = exec_body(c, n->body, n->nbody);
        c->frame = saved;
        frame_fini(c, &f);
        return r;
    }
    case S_BREAK:
        return X_BREAK;
    case S_CONTINUE:
        return X_CONTINUE;
    default:
        return jfail(c, SHOAL_ERR_INTERNAL, "unexpected statement %d", n->kind);
    }
}

static int exec_body(struct jctx *c, struct jnode *const *body, uint32_t n)
{
    if (++c->depth > c->lim.max_depth) {
        c->depth--;
        return jfail(c, SHOAL_ERR_TOO_BIG,
                     "template nested too deeply while rendering (more than %u levels)",
                     c->lim.max_depth);
    }
    int r = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (++c->steps > c->lim.max_steps) {
            r = jstep(c, 0);
            jfail_at(c, body[i]);
            break;
        }
        r = exec_stmt(c, body[i]);
        if (r != 0) {
            if (r < 0)
                jfail_at(c, body[i]);
            break;
        }
    }
    c->depth--;
    return r;
}

/* ---- Entry point ---- */

static int set_var(struct jctx *c, const char *name, struct jv v)
{
    uint32_t sym = jinja_symbol(c->t, name, strlen(name));
    if (sym == UINT32_MAX) { /* the template never names it */
        jv_decref(c, v);
        return 0;
    }
    jv_decref(c, c->root[sym]);
    c->root[sym] = v;
    return 0;
}

static int set_json_var(struct jctx *c, const char *name, const struct cJSON *j)
{
    if (jinja_symbol(c->t, name, strlen(name)) == UINT32_MAX)
        return 0;
    struct jv v;
    if (jv_from_cjson(c, j, &v) != 0)
        return -1;
    return set_var(c, name, v);
}

static int set_str_var(struct jctx *c, const char *name, const char *s)
{
    struct jv v;
    if (jstr_new(c, s ? s : "", s ? strlen(s) : 0, &v) != 0)
        return -1;
    return set_var(c, name, v);
}

static int load_inputs(struct jctx *c, const struct engine_chat *chat)
{
    /* jinja2's context: bos/eos, then the extra variables, then messages,
     * add_generation_prompt and (only when given) tools, later ones winning */
    if (set_str_var(c, "bos_token", chat->bos_token) != 0 ||
        set_str_var(c, "eos_token", chat->eos_token) != 0)
        return -1;
    if (chat->extra && cJSON_IsObject(chat->extra)) {
        for (const cJSON *e = chat->extra->child; e; e = e->next)
            if (e->string && set_json_var(c, e->string, e) != 0)
                return -1;
    }
    if (set_json_var(c, "messages", chat->messages) != 0 ||
        set_var(c, "add_generation_prompt", jv_bool(chat->add_generation_prompt)) != 0)
        return -1;
    if (chat->tools && set_json_var(c, "tools", chat->tools) != 0)
        return -1;
    return 0;
}

void jinja_limits_default(struct jinja_limits *l)
{
    l->max_output = JINJA_MAX_OUTPUT;
    l->max_memory = JINJA_MAX_MEMORY;
    l->max_steps = JINJA_MAX_STEPS;
    l->max_loop_iters = JINJA_MAX_LOOP_ITERS;
    l->max_depth = JINJA_MAX_DEPTH;
    l->max_macro_depth = JINJA_MAX_MACRO_DEPTH;
}

enum shoal_err jinja_render(const struct jtmpl *t, const struct engine_chat *chat,
                            const struct jinja_opts *o, struct shoal_buf *out,
                            struct shoal_diag *d)
{
    struct jctx c;
    memset(&c, 0, sizeof(c));
    c.t = t;
    c.lim = o->lim;
    c.now = o->now;
    c.utc = o->utc;
    c.filter_input = jv_make(JV_EMPTY);
    struct jsb outb;
    jsb_init(&outb, &c);
    c.out = &outb;
    int r = -1;
    c.root = jalloc(&c, (t->nsyms + 1) * sizeof(*c.root));
    if (c.root) {
        for (uint32_t i = 0; i <= t->nsyms; i++)
            c.root[i] = jv_make(JV_EMPTY);
        r = load_inputs(&c, chat);
        if (r == 0)
            r = exec_body(&c, t->body, t->nbody);
        if (r > 0)
            r = jfail(&c, SHOAL_ERR_INTERNAL, "loop control outside a loop");
    }
    /* namespaces first: they are the only values that can form cycles */
    for (size_t i = 0; i < c.nns; i++) {
        struct jdict *ns = c.nss[i];
        for (size_t k = 0; k < ns->n; k++) {
            jv_decref(&c, ns->e[k].k);
            jv_decref(&c, ns->e[k].v);
        }
        ns->n = 0;
    }
    for (size_t i = 0; i < c.nns; i++)
        jv_decref(&c, jv_obj(JV_NS, c.nss[i]));
    jfree(&c, c.nss, c.nns_cap * sizeof(*c.nss));
    if (c.root) {
        for (uint32_t i = 0; i <= t->nsyms; i++)
            jv_decref(&c, c.root[i]);
        jfree(&c, c.root, (t->nsyms + 1) * sizeof(*c.root));
    }
    enum shoal_err rc = SHOAL_OK;
    if (r == 0 && outb.len) {
        rc = shoal_buf_append(out, outb.buf + offsetof(struct jstr, data), outb.len);
        if (rc != SHOAL_OK)
            shoal_diag_set(d, rc, "rendered prompt does not fit the output buffer (%zu bytes)",
                           outb.len);
    }
    jsb_fini(&outb);
    /* every byte allocated was given back: the accounting the memory cap
     * relies on is exact (a mismatch is a bug here, not a template's) */
    assert(c.mem == 0);
    if (r != 0) {
        rc = c.failed ? c.err : SHOAL_ERR_INTERNAL;
        shoal_diag_set(d, rc, "%s", c.failed ? c.err_msg : "render failed");
        if (c.err_line)
            shoal_diag_at(d, NULL, c.err_line, c.err_col);
    }
    return rc;
}
