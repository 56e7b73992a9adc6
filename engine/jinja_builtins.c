/* jinja_builtins.c: what templates call by name: jinja2's filters and tests,
 * Python's str/dict/list methods, and the globals (range, dict, namespace,
 * cycler, joiner, HF's raise_exception and strftime_now). Invariant: results
 * are fresh references, arguments borrowed; filters lazy in jinja2 (map,
 * select, items, ...) return one-shot JL_GEN lists, failing where it fails. */
#include "jinja.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_DATA(v) (jv_str(v)->data)
#define STR_LEN(v)  (jv_str(v)->len)

/* ---- Argument binding ---- */

static int bind(struct jctx *c, const char *what, const char *const *names, size_t np,
                const struct jargs *a, struct jv *p)
{
    for (size_t i = 0; i < np; i++)
        p[i] = jv_make(JV_EMPTY);
    if (a->npos > np)
        return jfail(c, SHOAL_ERR_INVALID, "%s() takes at most %zu argument(s) (%zu given)", what,
                     np, a->npos);
    for (size_t i = 0; i < a->npos; i++)
        p[i] = a->pos[i];
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < np && strcmp(names[i], a->kwnames[k]) != 0)
            i++;
        if (i == np)
            return jfail(c, SHOAL_ERR_INVALID, "%s() got an unexpected keyword argument '%s'",
                         what, a->kwnames[k]);
        if (p[i].type != JV_EMPTY)
            return jfail(c, SHOAL_ERR_INVALID, "%s() got multiple values for argument '%s'",
                         what, names[i]);
        p[i] = a->kw[k];
    }
    return 0;
}

static bool given(struct jv v) { return v.type != JV_EMPTY; }
static bool truthy_or(struct jv v, bool def) { return given(v) ? jv_truthy(v) : def; }

static int need_int(struct jctx *c, struct jv v, const char *what, int64_t *out)
{
    if (v.type == JV_INT) {
        *out = v.u.i;
        return 0;
    }
    if (v.type == JV_BOOL) {
        *out = v.u.b;
        return 0;
    }
    return jfail(c, SHOAL_ERR_INVALID, "%s: an integer is required, not '%s'", what,
                 jv_type_name(v));
}

static int need_str(struct jctx *c, struct jv v, const char *what)
{
    if (v.type == JV_STR)
        return 0;
    if (v.type == JV_UNDEF)
        return jfail(c, SHOAL_ERR_INVALID, "'%s' is undefined",
                     v.u.hint ? v.u.hint : "value");
    return jfail(c, SHOAL_ERR_INVALID, "%s: expected a string, not '%s'", what, jv_type_name(v));
}

/* soft_str(): strings (and Markup) as they are, anything else through str(). */
static int soft_str(struct jctx *c, struct jv v, struct jv *out) { return jv_to_str(c, v, out); }

static struct jlist *gen_new(struct jctx *c, size_t cap, const char *name)
{
    struct jlist *l = jlist_new(c, cap, JL_GEN);
    if (l)
        l->gname = name;
    return l;
}

/* A generator filter on an input it cannot iterate: jinja2 fails only when
 * the generator is consumed, so the error waits in the generator. */
static int deferred_gen(struct jctx *c, struct jv v, const char *fmt, const char *gname,
                        struct jv *out)
{
    struct jlist *g = gen_new(c, 0, gname);
    if (!g)
        return -1;
    g->gerr_fmt = fmt;
    g->gerr_arg = jv_type_name(v);
    *out = jv_obj(JV_LIST, g);
    return 0;
}

static const char not_iterable[] = "'%s' object is not iterable";

/* A generator filter applied to a generator that already carries a
 * deferred error: still nothing is iterated, the error moves on. */
static bool pass_deferred(struct jctx *c, struct jv v, struct jv *out, int *rc)
{
    if (v.type != JV_LIST || jv_list(v)->h.kind != JL_GEN || !jv_list(v)->gerr_fmt)
        return false;
    struct jlist *g = gen_new(c, 0, "generator");
    *rc = g ? 0 : -1;
    if (g) {
        g->gerr_fmt = jv_list(v)->gerr_fmt;
        g->gerr_arg = jv_list(v)->gerr_arg;
        *out = jv_obj(JV_LIST, g);
    }
    return true;
}

static int str_from_sb(struct jsb *b, uint8_t flags, struct jv *out)
{
    if (jsb_finish(b, out) != 0) {
        jsb_fini(b);
        return -1;
    }
    out->flags = flags;
    return 0;
}

/* ---- Code point helpers ---- */

struct cpiter {
    const unsigned char *p;
    size_t n, i;
};

static bool cp_next(struct cpiter *it, uint32_t *cp, size_t *at, size_t *len)
{
    if (it->i >= it->n)
        return false;
    *at = it->i;
    if (it->p[it->i] < 0x80) {
        *cp = it->p[it->i];
        *len = 1;
    } else {
        *cp = jutf8_dec(it->p + it->i, it->n - it->i, len);
    }
    it->i += *len;
    return true;
}

/* Map every code point through f; keeps the Markup flag. */
static int map_case(struct jctx *c, struct jv s, int mode, struct jv *out)
{
    /* mode: 0 lower, 1 upper, 2 title, 3 capitalize, 4 swapcase */
    struct jsb b;
    jsb_init(&b, c);
    struct cpiter it = {(const unsigned char *)STR_DATA(s), STR_LEN(s), 0};
    uint32_t cp;
    size_t at, len;
    bool prev_cased = false, first = true;
    while (cp_next(&it, &cp, &at, &len)) {
        uint32_t lo = jpy_lower(cp), up = jpy_upper(cp), r;
        bool cased = lo != cp || up != cp || cp == 0xDF;
        switch (mode) {
        case 0: r = lo; break;
        case 1: r = up; break;
        case 2: r = prev_cased ? lo : up; break;
        case 3: r = first ? up : lo; break;
        default: r = lo != cp ? lo : up; break;
        }
        prev_cased = cased;
        first = false;
        /* the few full case mappings that change length */
        const char *special = NULL;
        if (cp == 0xDF && r == up)
            special = mode == 2 || mode == 3 ? "Ss" : "SS";
        else if (cp == 0x130 && r == lo)
            special = "i\xcc\x87";
        if (special) {
            if (jsb_adds(&b, special) != 0) {
                jsb_fini(&b);
                return -1;
            }
            continue;
        }
        char enc[4];
        if (jsb_add(&b, enc, jutf8_enc(r, enc)) != 0) {
            jsb_fini(&b);
            return -1;
        }
    }
    return str_from_sb(&b, s.flags & JVF_MARKUP, out);
}

static bool in_chars(uint32_t cp, struct jv chars)
{
    if (!given(chars) || chars.type == JV_NONE)
        return jpy_isspace(cp);
    struct cpiter it = {(const unsigned char *)STR_DATA(chars), STR_LEN(chars), 0};
    uint32_t x;
    size_t at, len;
    while (cp_next(&it, &x, &at, &len))
        if (x == cp)
            return true;
    return false;
}

/* str.strip/lstrip/rstrip(chars). */
static int strip(struct jctx *c, struct jv s, struct jv chars, bool left, bool right,
                 struct jv *out)
{
    if (given(chars) && chars.type != JV_NONE && need_str(c, chars, "strip arg") != 0)
        return -1;
    const char *p = STR_DATA(s);
    size_t n = STR_LEN(s), lo = 0, hi = n;
    if (left) {
        struct cpiter it = {(const unsigned char *)p, n, 0};
        uint32_t cp;
        size_t at, len;
        lo = n;
        while (cp_next(&it, &cp, &at, &len))
            if (!in_chars(cp, chars)) {
                lo = at;
                break;
            }
    }
    if (right) {
        /* walk forward and remember the end of the last kept code point */
        struct cpiter it = {(const unsigned char *)p, n, lo};
        uint32_t cp;
        size_t at, len;
        hi = lo;
        while (cp_next(&it, &cp, &at, &len))
            if (!in_chars(cp, chars))
                hi = at + len;
    }
    if (lo == 0 && hi == n) {
        *out = jv_ref(s);
        return 0;
    }
    if (jstr_new(c, p + lo, hi - lo, out) != 0)
        return -1;
    out->flags = s.flags & JVF_MARKUP;
    return 0;
}

static int new_str(struct jctx *c, const char *p, size_t n, uint8_t flags, struct jv *out)
{
    if (jstr_new(c, p, n, out) != 0)
        return -1;
    out->flags = flags;
    return 0;
}

/* str.split(sep=None, maxsplit=-1), rsplit when reverse. */
static int split(struct jctx *c, struct jv s, struct jv sep, struct jv maxv, bool reverse,
                 struct jv *out)
{
    int64_t maxsplit = -1;
    if (given(maxv) && need_int(c, maxv, "maxsplit", &maxsplit) != 0)
        return -1;
    struct jlist *l = jlist_new(c, 0, JL_LIST);
    if (!l)
        return -1;
    struct jv lv = jv_obj(JV_LIST, l);
    const char *p = STR_DATA(s);
    size_t n = STR_LEN(s);
    uint8_t fl = s.flags & JVF_MARKUP;
    struct jv part;
    if (!given(sep) || sep.type == JV_NONE) {
        /* runs of whitespace; no empty strings */
        struct { size_t a, b; } *words = NULL;
        size_t nw = 0, cap = 0;
        struct cpiter it = {(const unsigned char *)p, n, 0};
        uint32_t cp;
        size_t at, len, start = 0;
        bool inword = false;
        while (cp_next(&it, &cp, &at, &len)) {
            bool sp = jpy_isspace(cp);
            if (!sp && !inword) {
                start = at;
                inword = true;
            } else if (sp && inword) {
                if (nw == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    void *w = jrealloc(c, words, cap * sizeof(*words), nc * sizeof(*words));
                    if (!w)
                        goto ws_fail;
                    words = w;
                    cap = nc;
                }
                words[nw].a = start;
                words[nw].b = at;
                nw++;
                inword = false;
            }
        }
        if (inword) {
            if (nw == cap) {
                size_t nc = cap ? cap * 2 : 8;
                void *w = jrealloc(c, words, cap * sizeof(*words), nc * sizeof(*words));
                if (!w)
                    goto ws_fail;
                words = w;
                cap = nc;
            }
            words[nw].a = start;
            words[nw].b = n;
            nw++;
        }
        /* maxsplit: the remainder (stripped on the split side) is one item */
        if (maxsplit >= 0 && (size_t)maxsplit < nw) {
            size_t keep = (size_t)maxsplit;
            if (!reverse) {
                for (size_t i = 0; i < keep; i++)
                    if (new_str(c, p + words[i].a, words[i].b - words[i].a, fl, &part) != 0 ||
                        jlist_push(c, l, part) != 0)
                        goto ws_fail;
                if (new_str(c, p + words[keep].a, words[nw - 1].b - words[keep].a, fl, &part) != 0 ||
                    jlist_push(c, l, part) != 0)
                    goto ws_fail;
            } else {
                size_t first = nw - keep;
                if (new_str(c, p + words[0].a, words[first - 1].b - words[0].a, fl, &part) != 0 ||
                    jlist_push(c, l, part) != 0)
                    goto ws_fail;
                for (size_t i = first; i < nw; i++)
                    if (new_str(c, p + words[i].a, words[i].b - words[i].a, fl, &part) != 0 ||
                        jlist_push(c, l, part) != 0)
                        goto ws_fail;
            }
        } else {
            for (size_t i = 0; i < nw; i++)
                if (new_str(c, p + words[i].a, words[i].b - words[i].a, fl, &part) != 0 ||
                    jlist_push(c, l, part) != 0)
                    goto ws_fail;
        }
        jfree(c, words, cap * sizeof(*words));
        *out = lv;
        return 0;
    ws_fail:
        jfree(c, words, cap * sizeof(*words));
        jv_decref(c, lv);
        return -1;
    }
    if (need_str(c, sep, "split separator") != 0) {
        jv_decref(c, lv);
        return -1;
    }
    const char *sp = STR_DATA(sep);
    size_t sn = STR_LEN(sep);
    if (sn == 0) {
        jv_decref(c, lv);
        return jfail(c, SHOAL_ERR_INVALID, "empty separator");
    }
    if (!reverse) {
        size_t pos = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit)
                                  ? memmem(p + pos, n - pos, sp, sn) : NULL;
            size_t end = hit ? (size_t)(hit - p) : n;
            if (new_str(c, p + pos, end - pos, fl, &part) != 0 || jlist_push(c, l, part) != 0) {
                jv_decref(c, lv);
                return -1;
            }
            if (!hit)
                break;
            pos = end + sn;
            done++;
        }
    } else {
        /* collect from the right, then reverse */
        size_t end = n;
        int64_t done = 0;
        for (;;) {
            size_t hit = SIZE_MAX;
            if ((maxsplit < 0 || done < maxsplit) && end >= sn) {
                for (size_t k = end - sn + 1; k-- > 0;)
                    if (memcmp(p + k, sp, sn) == 0) {
                        hit = k;
                        break;
                    }
            }
            size_t start = hit == SIZE_MAX ? 0 : hit + sn;
            if (new_str(c, p + start, end - start, fl, &part) != 0 ||
                jlist_push(c, l, part) != 0) {
                jv_decref(c, lv);
                return -1;
            }
            if (hit == SIZE_MAX)
                break;
            end = hit;
            done++;
        }
        for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
            struct jv t = l->items[i];
            l->items[i] = l->items[j];
            l->items[j] = t;
        }
    }
    *out = lv;
    return jstep_out(c, n / 64, out);
}

static int splitlines(struct jctx *c, struct jv s, bool keepends, struct jv *out)
{
    struct jlist *l = jlist_new(c, 0, JL_LIST);
    if (!l)
        return -1;
    struct jv lv = jv_obj(JV_LIST, l), part;
    const char *p = STR_DATA(s);
    struct cpiter it = {(const unsigned char *)p, STR_LEN(s), 0};
    uint32_t cp;
    size_t at, len, start = 0;
    while (cp_next(&it, &cp, &at, &len)) {
        if (!jpy_is_linebreak(cp))
            continue;
        size_t end = at + len;
        if (cp == '\r' && it.i < it.n && p[it.i] == '\n') {
            it.i++;
            end++;
        }
        if (new_str(c, p + start, (keepends ? end : at) - start, s.flags & JVF_MARKUP, &part) != 0 ||
            jlist_push(c, l, part) != 0) {
            jv_decref(c, lv);
            return -1;
        }
        start = end;
    }
    if (start < STR_LEN(s)) {
        if (new_str(c, p + start, STR_LEN(s) - start, s.flags & JVF_MARKUP, &part) != 0 ||
            jlist_push(c, l, part) != 0) {
            jv_decref(c, lv);
            return -1;
        }
    }
    *out = lv;
    return 0;
}

/* str.replace(old, new, count). */
static int replace(struct jctx *c, struct jv s, struct jv old, struct jv new, int64_t count,
                   uint8_t flags, struct jv *out)
{
    const char *p = STR_DATA(s), *o = STR_DATA(old), *nw = STR_DATA(new);
    size_t n = STR_LEN(s), on = STR_LEN(old), nn = STR_LEN(new);
    struct jsb b;
    jsb_init(&b, c);
    int64_t done = 0;
    if (on == 0) {
        /* Python inserts new between every code point (and at both ends) */
        struct cpiter it = {(const unsigned char *)p, n, 0};
        uint32_t cp;
        size_t at, len;
        while (count < 0 || done < count) {
            if (jsb_add(&b, nw, nn) != 0)
                goto fail;
            done++;
            if (!cp_next(&it, &cp, &at, &len))
                break;
            if (jsb_add(&b, p + at, len) != 0)
                goto fail;
        }
        if (it.i < n && jsb_add(&b, p + it.i, n - it.i) != 0)
            goto fail;
        return str_from_sb(&b, flags, out);
    }
    size_t pos = 0;
    while (count < 0 || done < count) {
        const char *hit = memmem(p + pos, n - pos, o, on);
        if (!hit)
            break;
        size_t at = (size_t)(hit - p);
        if (jsb_add(&b, p + pos, at - pos) != 0 || jsb_add(&b, nw, nn) != 0)
            goto fail;
        pos = at + on;
        done++;
    }
    if (jsb_add(&b, p + pos, n - pos) != 0)
        goto fail;
    return str_from_sb(&b, flags, out);
fail:
    jsb_fini(&b);
    return -1;
}

/* Python's str.center/ljust/rjust with a one-character fill. */
static int pad(struct jctx *c, struct jv s, int64_t width, const char *fill, size_t fn, int how,
               struct jv *out)
{
    size_t len = jstr_nchars(jv_str(s));
    if (width <= 0 || (size_t)width <= len) {
        *out = jv_ref(s);
        return 0;
    }
    if ((uint64_t)width > c->lim.max_output)
        return jfail(c, SHOAL_ERR_TOO_BIG, "string longer than %zu bytes", c->lim.max_output);
    size_t marg = (size_t)width - len, left;
    if (how == 0) /* center, as CPython rounds it */
        left = marg / 2 + (marg & (size_t)width & 1);
    else
        left = how < 0 ? 0 : marg; /* ljust: pad right; rjust: pad left */
    struct jsb b;
    jsb_init(&b, c);
    for (size_t i = 0; i < left; i++)
        if (jsb_add(&b, fill, fn) != 0)
            goto fail;
    if (jsb_add(&b, STR_DATA(s), STR_LEN(s)) != 0)
        goto fail;
    for (size_t i = left; i < marg; i++)
        if (jsb_add(&b, fill, fn) != 0)
            goto fail;
    return str_from_sb(&b, s.flags & JVF_MARKUP, out);
fail:
    jsb_fini(&b);
    return -1;
}

int jescape(struct jctx *c, struct jv v, struct jv *out)
{
    if (v.type == JV_STR && (v.flags & JVF_MARKUP)) {
        *out = jv_ref(v);
        return 0;
    }
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    struct jsb b;
    jsb_init(&b, c);
    const char *p = STR_DATA(s);
    size_t n = STR_LEN(s), run = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *e = NULL;
        switch (p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        default: run++; continue;
        }
        rc = jsb_add(&b, p + i - run, run);
        run = 0;
        if (rc == 0)
            rc = jsb_adds(&b, e);
    }
    if (rc == 0)
        rc = jsb_add(&b, p + n - run, run);
    jv_decref(c, s);
    if (rc != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, JVF_MARKUP, out);
}

/* ---- Attribute getters for map/selectattr/sort/... ---- */

/* jinja2's make_attrgetter: "a.b.0" walks items (then attributes). */
static int attr_path(struct jctx *c, struct jv item, struct jv attr, struct jv *out)
{
    if (attr.type != JV_STR) {
        return jget_item(c, item, attr, out);
    }
    const char *p = STR_DATA(attr);
    size_t n = STR_LEN(attr), start = 0;
    struct jv cur = jv_ref(item);
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.')
            continue;
        struct jv key, next;
        bool digits = i > start;
        for (size_t k = start; k < i; k++)
            if (p[k] < '0' || p[k] > '9')
                digits = false;
        if (digits) {
            int64_t v = 0;
            if (shoal_parse_i64(p + start, i - start, 0, INT64_MAX, &v) != SHOAL_OK)
                v = INT64_MAX;
            key = jv_int(v);
        } else if (jstr_new(c, p + start, i - start, &key) != 0) {
            jv_decref(c, cur);
            return -1;
        }
        int r = jget_item(c, cur, key, &next);
        jv_decref(c, key);
        jv_decref(c, cur);
        if (r != 0)
            return -1;
        cur = next;
        start = i + 1;
    }
    *out = cur;
    return 0;
}

static int lower_if_str(struct jctx *c, struct jv v, struct jv *out)
{
    if (v.type == JV_STR)
        return map_case(c, v, 0, out);
    *out = jv_ref(v);
    return 0;
}

/* Key for sorting/uniqueness: the attribute (if any), lowered unless case_sensitive. */
static int sort_key(struct jctx *c, struct jv item, struct jv attr, bool case_sensitive,
                    struct jv *out)
{
    struct jv k;
    if (given(attr) && attr.type != JV_NONE) {
        if (attr_path(c, item, attr, &k) != 0)
            return -1;
    } else {
        k = jv_ref(item);
    }
    if (case_sensitive) {
        *out = k;
        return 0;
    }
    int r = lower_if_str(c, k, out);
    jv_decref(c, k);
    return r;
}

/* Stable merge sort of idx[0..n) by keys, using Python's "<". */
static int merge_sort(struct jctx *c, const struct jv *keys, size_t *idx, size_t *tmp, size_t n,
                      bool reverse)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if (merge_sort(c, keys, idx, tmp, h, reverse) != 0 ||
        merge_sort(c, keys, idx + h, tmp, n - h, reverse) != 0)
        return -1;
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        /* the right element goes first only when strictly smaller (larger
         * when reversed): equal keys keep their order, as Python's sort */
        int cmp;
        struct jv a = reverse ? keys[idx[i]] : keys[idx[j]];
        struct jv b = reverse ? keys[idx[j]] : keys[idx[i]];
        if (jv_compare(c, a, b, "<", &cmp) != 0)
            return -1;
        if (cmp == -1)
            tmp[o++] = idx[j++];
        else
            tmp[o++] = idx[i++];
    }
    while (i < h)
        tmp[o++] = idx[i++];
    while (j < n)
        tmp[o++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(*idx));
    return jstep(c, n);
}

/* Sorted copy of the items of seq. */
static int sorted(struct jctx *c, struct jv seq, struct jv attr, bool case_sensitive,
                  bool reverse, struct jlist **out)
{
    struct jlist *items;
    if (jiter_items(c, seq, &items) != 0)
        return -1;
    size_t n = items->n;
    struct jv *keys = jalloc(c, (n + 1) * sizeof(*keys));
    size_t *idx = jalloc(c, (n + 1) * sizeof(*idx));
    size_t *tmp = jalloc(c, (n + 1) * sizeof(*tmp));
    int r = keys && idx && tmp ? 0 : -1;
    size_t nk = 0;
    for (; r == 0 && nk < n; nk++) {
        idx[nk] = nk;
        r = sort_key(c, items->items[nk], attr, case_sensitive, &keys[nk]);
        if (r != 0)
            break;
    }
    if (r == 0)
        r = merge_sort(c, keys, idx, tmp, n, reverse);
    struct jlist *res = NULL;
    if (r == 0) {
        res = jlist_new(c, n, JL_LIST);
        if (res) {
            for (size_t i = 0; i < n; i++)
                res->items[res->n++] = jv_ref(items->items[idx[i]]);
            res->h.depth = items->h.depth;
        } else {
            r = -1;
        }
    }
    if (keys)
        for (size_t i = 0; i < nk; i++)
            jv_decref(c, keys[i]);
    jfree(c, keys, (n + 1) * sizeof(*keys));
    jfree(c, idx, (n + 1) * sizeof(*idx));
    jfree(c, tmp, (n + 1) * sizeof(*tmp));
    jv_decref(c, jv_obj(JV_LIST, items));
    *out = res;
    return r;
}

/* ---- Filters ---- */

typedef int (*filter_fn)(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                         struct jv *out);

struct filter_def {
    const char *name;
    filter_fn fn;
    uint8_t np;
    bool raw;     /* takes any arguments: gets a, not p */
    uint8_t nreq; /* leading parameters that must be given */
    const char *params[5];
};

static int f_abs(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)p;
    (void)a;
    if (v.type == JV_INT || v.type == JV_BOOL) {
        int64_t x = v.type == JV_BOOL ? v.u.b : v.u.i;
        if (x == INT64_MIN)
            return jfail(c, SHOAL_ERR_TOO_BIG, "integer overflow (beyond 64 bits)");
        *out = jv_int(x < 0 ? -x : x);
        return 0;
    }
    if (v.type == JV_FLOAT) {
        *out = jv_float(fabs(v.u.f));
        return 0;
    }
    return jfail(c, SHOAL_ERR_INVALID, "bad operand type for abs(): '%s'", jv_type_name(v));
}

static int f_attr(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)a;
    if (need_str(c, p[0], "attr") != 0)
        return -1;
    bool found; /* attributes only, never the item */
    return jget_pyattr(c, v, STR_DATA(p[0]), STR_LEN(p[0]), NULL, out, &found);
}

static int f_batch_or_slice(struct jctx *c, struct jv v, const struct jv *p, bool is_slice,
                            struct jv *out)
{
    int64_t count = 0;
    if (need_int(c, p[0], is_slice ? "slice" : "batch", &count) != 0)
        return -1;
    if (is_slice && count == 0)
        return jfail(c, SHOAL_ERR_INVALID, "integer division or modulo by zero");
    if (is_slice && count > JINJA_MAX_ITEMS)
        return jfail(c, SHOAL_ERR_TOO_BIG, "too many slices");
    int drc;
    if (pass_deferred(c, v, out, &drc))
        return drc;
    if (!jv_is_iterable(v))
        return deferred_gen(c, v, not_iterable, "generator", out);
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    struct jlist *res = gen_new(c, 0, "generator");
    int r = res ? 0 : -1;
    size_t n = items->n;
    bool fill = given(p[1]) && p[1].type != JV_NONE;
    if (!is_slice) {
        /* jinja2's loop: a full batch is yielded when the next item comes */
        struct jlist *tmp = jlist_new(c, 0, JL_LIST);
        if (!tmp)
            r = -1;
        for (size_t i = 0; r == 0 && i < n; i++) {
            if ((int64_t)tmp->n == count) {
                r = jlist_push(c, res, jv_obj(JV_LIST, tmp));
                tmp = r == 0 ? jlist_new(c, 0, JL_LIST) : NULL;
                if (!tmp)
                    r = -1;
            }
            if (r == 0)
                r = jlist_push(c, tmp, jv_ref(items->items[i]));
        }
        if (r == 0 && tmp->n) {
            while (r == 0 && fill && (int64_t)tmp->n < count)
                r = jlist_push(c, tmp, jv_ref(p[1]));
            if (r == 0) {
                r = jlist_push(c, res, jv_obj(JV_LIST, tmp));
                tmp = NULL;
            }
        }
        if (tmp)
            jv_decref(c, jv_obj(JV_LIST, tmp));
    } else {
        int64_t per = (int64_t)n / count, extra = (int64_t)n % count, offset = 0;
        if (count < 0) { /* Python floor division with a negative divisor */
            per = (int64_t)n / count - (((int64_t)n % count) != 0);
            extra = (int64_t)n - per * count;
        }
        for (int64_t sn = 0; r == 0 && sn < count; sn++) {
            int64_t st = offset + sn * per;
            if (sn < extra)
                offset++;
            int64_t en = offset + (sn + 1) * per;
            struct jlist *part = jlist_new(c, 0, JL_LIST);
            if (!part) {
                r = -1;
                break;
            }
            for (int64_t k = st < 0 ? 0 : st; r == 0 && k < en && k < (int64_t)n; k++)
                r = jlist_push(c, part, jv_ref(items->items[k]));
            if (r == 0 && fill && sn >= extra)
                r = jlist_push(c, part, jv_ref(p[1]));
            if (r == 0)
                r = jlist_push(c, res, jv_obj(JV_LIST, part));
            else
                jv_decref(c, jv_obj(JV_LIST, part));
        }
    }
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        if (res)
            jv_decref(c, jv_obj(JV_LIST, res));
        return -1;
    }
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static int f_batch(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)a;
    return f_batch_or_slice(c, v, p, false, out);
}

static int f_slice(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)a;
    return f_batch_or_slice(c, v, p, true, out);
}

static int f_case(struct jctx *c, struct jv v, int mode, struct jv *out)
{
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    int r = map_case(c, s, mode, out);
    jv_decref(c, s);
    return r;
}

static int f_capitalize(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                        struct jv *out)
{
    (void)p;
    (void)a;
    return f_case(c, v, 3, out);
}
static int f_lower(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)p;
    (void)a;
    return f_case(c, v, 0, out);
}
static int f_upper(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)p;
    (void)a;
    return f_case(c, v, 1, out);
}
static bool title_sep(uint32_t cp)
{
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || jpy_isspace(cp);
}

static int f_title(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)p;
    (void)a;
    /* jinja2's title is not str.title(): words split only at whitespace and
     * -({[<, each gets its first character upper-cased, the rest lowered */
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    struct jsb b;
    jsb_init(&b, c);
    struct cpiter it = {(const unsigned char *)STR_DATA(s), STR_LEN(s), 0};
    uint32_t cp;
    size_t at, len;
    bool start = true;
    int r = 0;
    while (r == 0 && cp_next(&it, &cp, &at, &len)) {
        bool sep = title_sep(cp);
        uint32_t m = sep ? cp : start ? jpy_upper(cp) : jpy_lower(cp);
        if (!sep && start && cp == 0xDF)
            r = jsb_add(&b, "Ss", 2);
        else if (!sep && !start && cp == 0x130)
            r = jsb_add(&b, "i\xcc\x87", 3);
        else {
            char enc[4];
            r = jsb_add(&b, enc, jutf8_enc(m, enc));
        }
        start = sep;
    }
    uint8_t fl = s.flags & JVF_MARKUP;
    jv_decref(c, s);
    if (r != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, fl, out);
}

static int f_center(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)a;
    int64_t width = 80;
    if (given(p[0]) && need_int(c, p[0], "center", &width) != 0)
        return -1;
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    int r = pad(c, s, width, " ", 1, 0, out);
    jv_decref(c, s);
    return r;
}

static int f_length(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    (void)a;
    int64_t n = 0;
    if (jv_len(c, v, &n) != 0)
        return -1;
    *out = jv_int(n);
    return 0;
}

static int f_default(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                     struct jv *out)
{
    (void)c;
    (void)a;
    bool use = v.type == JV_UNDEF || (truthy_or(p[1], false) && !jv_truthy(v));
    if (use)
        *out = given(p[0]) ? jv_ref(p[0]) : jstr_empty();
    else
        *out = jv_ref(v);
    return 0;
}

static int f_dictsort(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                      struct jv *out)
{
    (void)a;
    if (v.type != JV_DICT)
        return jfail(c, SHOAL_ERR_INVALID, "dictsort: expected a mapping, not '%s'",
                     jv_type_name(v));
    bool by_value = false;
    if (given(p[1])) {
        if (need_str(c, p[1], "dictsort") != 0)
            return -1;
        if (!strcmp(STR_DATA(p[1]), "value"))
            by_value = true;
        else if (strcmp(STR_DATA(p[1]), "key") != 0)
            return jfail(c, SHOAL_ERR_INVALID, "You can only sort by either \"key\" or \"value\"");
    }
    struct jdict *d = jv_dict(v);
    struct jlist *pairs = jlist_new(c, d->n, JL_LIST);
    if (!pairs)
        return -1;
    struct jv pv = jv_obj(JV_LIST, pairs);
    for (size_t i = 0; i < d->n; i++) {
        struct jlist *t = jlist_new(c, 2, JL_TUPLE);
        if (!t) {
            jv_decref(c, pv);
            return -1;
        }
        t->items[t->n++] = jv_ref(d->e[i].k);
        t->items[t->n++] = jv_ref(d->e[i].v);
        t->h.depth = d->h.depth;
        if (jlist_push(c, pairs, jv_obj(JV_LIST, t)) != 0) {
            jv_decref(c, pv);
            return -1;
        }
    }
    struct jv attr = jv_int(by_value ? 1 : 0);
    struct jlist *res;
    int r = sorted(c, pv, attr, truthy_or(p[0], false), truthy_or(p[2], false), &res);
    jv_decref(c, pv);
    if (r != 0)
        return -1;
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static int f_escape(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    (void)a;
    return jescape(c, v, out);
}

static int f_forceescape(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                         struct jv *out)
{
    (void)p;
    (void)a;
    struct jv plain = v;
    plain.flags &= (uint8_t)~JVF_MARKUP;
    return jescape(c, plain, out);
}

static int f_first(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)p;
    (void)a;
    if (v.type == JV_LIST && jv_list(v)->h.kind == JL_GEN) {
        struct jlist *l = jv_list(v);
        if (jgen_check(c, l) != 0)
            return -1;
        if (l->pos < l->n)
            *out = jv_ref(l->items[l->pos++]);
        else
            *out = jv_undef("No first item, sequence was empty.");
        return 0;
    }
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    *out = items->n ? jv_ref(items->items[0]) : jv_undef("No first item, sequence was empty.");
    jv_decref(c, jv_obj(JV_LIST, items));
    return 0;
}

static int f_last(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)p;
    (void)a;
    if (v.type == JV_LIST && jv_list(v)->h.kind == JL_GEN)
        return jfail(c, SHOAL_ERR_INVALID, "'%s' object is not reversible", jv_type_name(v));
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    *out = items->n ? jv_ref(items->items[items->n - 1])
                    : jv_undef("No last item, sequence was empty.");
    jv_decref(c, jv_obj(JV_LIST, items));
    return 0;
}

/* Python's float(str): optional sign, digits with single underscores, inf, nan. */
static bool parse_py_float(const char *s, size_t n, double *out)
{
    char buf[128];
    size_t o = 0;
    while (n && jpy_isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && jpy_isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '_') {
            if (i == 0 || i + 1 == n || !(s[i - 1] >= '0' && s[i - 1] <= '9') ||
                !(s[i + 1] >= '0' && s[i + 1] <= '9'))
                return false;
            continue;
        }
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
              ch == '-' || (ch | 0x20) == 'i' || (ch | 0x20) == 'n' || (ch | 0x20) == 'f' ||
              (ch | 0x20) == 't' || (ch | 0x20) == 'y' || (ch | 0x20) == 'a'))
            return false;
        buf[o++] = ch;
    }
    buf[o] = 0;
    if (strchr(buf, 'x') || strchr(buf, 'X'))
        return false;
    char *end;
    double d = strtod(buf, &end);
    if (*end || end == buf)
        return false;
    *out = d;
    return true;
}

/* Python's int(str, base). */
static bool parse_py_int(const char *s, size_t n, int64_t base, int64_t *out)
{
    while (n && jpy_isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && jpy_isspace((unsigned char)s[n - 1]))
        n--;
    bool neg = false;
    if (n && (*s == '+' || *s == '-')) {
        neg = *s == '-';
        s++;
        n--;
    }
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (n >= 2 && s[0] == '0') {
            char b = (char)(s[1] | 0x20);
            int64_t pb = b == 'x' ? 16 : b == 'o' ? 8 : b == 'b' ? 2 : 0;
            if (pb && (base == 0 || base == pb)) {
                base = pb;
                s += 2;
                n -= 2;
                if (n && *s == '_') {
                    s++;
                    n--;
                }
            }
        }
        if (base == 0)
            base = 10;
    }
    if (base < 2 || base > 36 || n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '_' && i > 0 && i + 1 < n && s[i + 1] != '_')
            continue;
        int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'
                                                        ? (ch | 0x20) - 'a' + 10 : 99;
        if (d >= base)
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int f_float(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)c;
    (void)a;
    double d;
    if (v.type == JV_FLOAT || v.type == JV_INT || v.type == JV_BOOL) {
        *out = jv_float(v.type == JV_FLOAT ? v.u.f : v.type == JV_BOOL ? v.u.b : (double)v.u.i);
        return 0;
    }
    if (v.type == JV_STR && parse_py_float(STR_DATA(v), STR_LEN(v), &d)) {
        *out = jv_float(d);
        return 0;
    }
    *out = given(p[0]) ? jv_ref(p[0]) : jv_float(0.0);
    return 0;
}

static int f_int(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)a;
    int64_t base = 10, i;
    if (given(p[1]) && need_int(c, p[1], "int base", &base) != 0)
        return -1;
    double d;
    switch (v.type) {
    case JV_INT: *out = v; return 0;
    case JV_BOOL: *out = jv_int(v.u.b); return 0;
    case JV_FLOAT:
        if (isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) {
            *out = jv_int((int64_t)v.u.f);
            return 0;
        }
        break;
    case JV_STR:
        if (parse_py_int(STR_DATA(v), STR_LEN(v), base, &i)) {
            *out = jv_int(i);
            return 0;
        }
        if (parse_py_float(STR_DATA(v), STR_LEN(v), &d) && isfinite(d) && fabs(d) < 9.2e18) {
            *out = jv_int((int64_t)d);
            return 0;
        }
        break;
    default: break;
    }
    *out = given(p[0]) ? jv_ref(p[0]) : jv_int(0);
    return 0;
}

/* Python "%" formatting. */
static int fmt_one(struct jctx *c, struct jsb *b, char conv, const char *flags, int64_t width,
                   int64_t prec, struct jv arg, bool markup)
{
    char spec[128], num[512];
    switch (conv) {
    case 's':
    case 'r':
    case 'a': {
        struct jsb tmp;
        jsb_init(&tmp, c);
        struct jv esc = jv_make(JV_EMPTY);
        struct jv src = arg;
        if (markup && conv == 's') {
            if (jescape(c, arg, &esc) != 0)
                return -1;
            src = esc;
        }
        int r = conv == 's' ? jv_write_str(c, src, &tmp) : jv_write_repr(c, src, &tmp);
        jv_decref(c, esc);
        if (r != 0) {
            jsb_fini(&tmp);
            return -1;
        }
        /* precision truncates, width pads, both in code points */
        const char *s = tmp.buf ? tmp.buf + offsetof(struct jstr, data) : "";
        size_t len = tmp.len, nchars = 0, cut = len;
        struct cpiter it = {(const unsigned char *)s, len, 0};
        uint32_t cp;
        size_t at, l;
        while (cp_next(&it, &cp, &at, &l)) {
            if (prec >= 0 && (int64_t)nchars == prec) {
                cut = at;
                break;
            }
            nchars++;
        }
        bool left = strchr(flags, '-') != NULL;
        r = 0;
        for (int64_t i = (int64_t)nchars; !left && i < width && r == 0; i++)
            r = jsb_addc(b, ' ');
        if (r == 0)
            r = jsb_add(b, s, cut);
        for (int64_t i = (int64_t)nchars; left && i < width && r == 0; i++)
            r = jsb_addc(b, ' ');
        jsb_fini(&tmp);
        return r;
    }
    case 'c': {
        if (arg.type == JV_STR) {
            if (jstr_nchars(jv_str(arg)) != 1)
                return jfail(c, SHOAL_ERR_INVALID, "%%c requires int or char");
            return jsb_add(b, STR_DATA(arg), STR_LEN(arg));
        }
        int64_t x = 0;
        if (need_int(c, arg, "%c", &x) != 0)
            return -1;
        if (x < 0 || x > 0x10FFFF)
            return jfail(c, SHOAL_ERR_INVALID, "%%c arg not in range(0x110000)");
        char enc[4];
        return jsb_add(b, enc, jutf8_enc((uint32_t)x, enc));
    }
    default:
        break;
    }
    if (!jv_is_num(arg))
        return jfail(c, SHOAL_ERR_INVALID, "%%%c format: a real number is required, not %s",
                     conv, jv_type_name(arg));
    if (width > 400 || prec > 400)
        return jfail(c, SHOAL_ERR_TOO_BIG, "format width or precision too large");
    char w[24] = "", pr[24] = "";
    if (width >= 0)
        snprintf(w, sizeof(w), "%" PRId64, width);
    if (prec >= 0)
        snprintf(pr, sizeof(pr), ".%" PRId64, prec);
    int n;
    if (strchr("diouxX", conv)) {
        int64_t x = 0;
        if (arg.type == JV_FLOAT) {
            if (conv != 'd' && conv != 'i' && conv != 'u')
                return jfail(c, SHOAL_ERR_INVALID, "%%%c format: an integer is required, not float",
                             conv);
            if (!isfinite(arg.u.f))
                return jfail(c, SHOAL_ERR_INVALID, "cannot convert float to integer");
            x = (int64_t)arg.u.f;
        } else {
            x = arg.type == JV_BOOL ? arg.u.b : arg.u.i;
        }
        char cv = conv == 'i' || conv == 'u' ? 'd' : conv;
        snprintf(spec, sizeof(spec), "%%%s%s%s" "ll%c", flags, w, pr, cv);
        if (x < 0 && cv != 'd') { /* Python prints -0x1f, C would print two's complement */
            snprintf(spec, sizeof(spec), "-%%%s%s%s" "ll%c", flags, w, pr, cv);
            n = snprintf(num, sizeof(num), spec, (unsigned long long)(-(x + 1)) + 1ull);
        } else {
            n = snprintf(num, sizeof(num), spec, (long long)x);
        }
    } else if (strchr("eEfFgG", conv)) {
        double d = arg.type == JV_FLOAT ? arg.u.f : arg.type == JV_BOOL ? arg.u.b : (double)arg.u.i;
        snprintf(spec, sizeof(spec), "%%%s%s%s%c", flags, w, pr, conv);
        n = snprintf(num, sizeof(num), spec, d);
    } else {
        return jfail(c, SHOAL_ERR_INVALID, "unsupported format character '%c'", conv);
    }
    if (n < 0 || (size_t)n >= sizeof(num))
        return jfail(c, SHOAL_ERR_TOO_BIG, "formatted number too long");
    return jsb_add(b, num, (size_t)n);
}

int jformat_percent(struct jctx *c, struct jv fmt, struct jv args, struct jv *out)
{
    const char *f = STR_DATA(fmt);
    size_t n = STR_LEN(fmt), next = 0;
    bool markup = fmt.flags & JVF_MARKUP;
    const struct jv *pos = &args;
    size_t npos = 1;
    /* a mapping (or anything with __getitem__ such as Undefined) may be
     * left unused without "not all arguments converted" */
    bool is_map = args.type == JV_DICT || args.type == JV_UNDEF ||
                  (args.type == JV_LIST && jv_list(args)->h.kind != JL_TUPLE);
    if (args.type == JV_LIST && jv_list(args)->h.kind == JL_TUPLE) {
        pos = jv_list(args)->items;
        npos = jv_list(args)->n;
    }
    struct jsb b;
    jsb_init(&b, c);
    bool used_map = false;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '%') {
            size_t j = i;
            while (j < n && f[j] != '%')
                j++;
            if (jsb_add(&b, f + i, j - i) != 0)
                goto fail;
            i = j - 1;
            continue;
        }
        i++;
        if (i >= n) {
            jfail(c, SHOAL_ERR_INVALID, "incomplete format");
            goto fail;
        }
        struct jv arg = jv_make(JV_EMPTY);
        if (f[i] == '(') {
            size_t j = i + 1;
            while (j < n && f[j] != ')')
                j++;
            if (j >= n) {
                jfail(c, SHOAL_ERR_INVALID, "incomplete format key");
                goto fail;
            }
            if (!is_map) {
                jfail(c, SHOAL_ERR_INVALID, "format requires a mapping");
                goto fail;
            }
            if (args.type != JV_DICT || !jdict_get_str(jv_dict(args), f + i + 1, j - i - 1, &arg)) {
                jfail(c, SHOAL_ERR_INVALID, "KeyError: '%.*s'", (int)(j - i - 1), f + i + 1);
                goto fail;
            }
            used_map = true;
            i = j + 1;
        }
        char flags[8] = "";
        size_t nf = 0;
        while (i < n && strchr("-+ #0", f[i]) && nf < sizeof(flags) - 1)
            flags[nf++] = f[i++];
        flags[nf] = 0;
        int64_t width = -1, prec = -1;
        if (i < n && f[i] == '*') {
            if (next >= npos || need_int(c, pos[next++], "* width", &width) != 0) {
                if (!c->failed)
                    jfail(c, SHOAL_ERR_INVALID, "not enough arguments for format string");
                goto fail;
            }
            i++;
        } else {
            while (i < n && f[i] >= '0' && f[i] <= '9' && width < 100000)
                width = (width < 0 ? 0 : width * 10) + (f[i++] - '0');
        }
        if (i < n && f[i] == '.') {
            i++;
            prec = 0;
            if (i < n && f[i] == '*') {
                if (next >= npos || need_int(c, pos[next++], "* precision", &prec) != 0) {
                    if (!c->failed)
                        jfail(c, SHOAL_ERR_INVALID, "not enough arguments for format string");
                    goto fail;
                }
                i++;
            } else {
                while (i < n && f[i] >= '0' && f[i] <= '9' && prec < 100000)
                    prec = prec * 10 + (f[i++] - '0');
            }
        }
        while (i < n && (f[i] == 'h' || f[i] == 'l' || f[i] == 'L'))
            i++;
        if (i >= n) {
            jfail(c, SHOAL_ERR_INVALID, "incomplete format");
            goto fail;
        }
        char conv = f[i];
        if (conv == '%') {
            if (jsb_addc(&b, '%') != 0)
                goto fail;
            continue;
        }
        if (arg.type == JV_EMPTY) {
            if (is_map && npos == 1 && next == 0 && !(args.type == JV_LIST)) {
                arg = args;
                next++;
            } else if (next < npos) {
                arg = pos[next++];
            } else {
                jfail(c, SHOAL_ERR_INVALID, "not enough arguments for format string");
                goto fail;
            }
        }
        if (fmt_one(c, &b, conv, flags, width, prec, arg, markup) != 0)
            goto fail;
    }
    if (next < npos && !used_map && !is_map) {
        jfail(c, SHOAL_ERR_INVALID, "not all arguments converted during string formatting");
        goto fail;
    }
    return str_from_sb(&b, markup ? JVF_MARKUP : 0, out);
fail:
    jsb_fini(&b);
    return -1;
}

static int f_format(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    if (a->npos && a->nkw)
        return jfail(c, SHOAL_ERR_INVALID, "can't handle positional and keyword arguments at the "
                                           "same time");
    struct jv s, args;
    if (soft_str(c, v, &s) != 0)
        return -1;
    if (a->nkw) {
        struct jdict *d = jdict_new(c, a->nkw);
        if (!d) {
            jv_decref(c, s);
            return -1;
        }
        args = jv_obj(JV_DICT, d);
        for (size_t k = 0; k < a->nkw; k++) {
            struct jv key;
            if (jstr_new(c, a->kwnames[k], strlen(a->kwnames[k]), &key) != 0 ||
                jdict_set(c, d, key, jv_ref(a->kw[k])) != 0) {
                jv_decref(c, args);
                jv_decref(c, s);
                return -1;
            }
        }
    } else {
        struct jlist *t = jlist_new(c, a->npos, JL_TUPLE);
        if (!t) {
            jv_decref(c, s);
            return -1;
        }
        args = jv_obj(JV_LIST, t);
        for (size_t i = 0; i < a->npos; i++)
            if (jlist_push(c, t, jv_ref(a->pos[i])) != 0) {
                jv_decref(c, args);
                jv_decref(c, s);
                return -1;
            }
    }
    int r = jformat_percent(c, s, args, out);
    jv_decref(c, args);
    jv_decref(c, s);
    return r;
}

static int f_indent(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)a;
    if (v.type == JV_UNDEF)
        return jfail(c, SHOAL_ERR_INVALID, "'%s' is undefined", v.u.hint ? v.u.hint : "value");
    if (v.type != JV_STR)
        return jfail(c, SHOAL_ERR_INVALID, "unsupported operand type(s) for +=: '%s' and 'str'",
                     jv_type_name(v));
    char spaces[256];
    const char *ind = spaces;
    size_t ni;
    if (given(p[0]) && p[0].type == JV_STR) {
        ind = STR_DATA(p[0]);
        ni = STR_LEN(p[0]);
    } else {
        int64_t w = 4;
        if (given(p[0]) && need_int(c, p[0], "indent width", &w) != 0)
            return -1;
        if (w < 0)
            w = 0;
        if (w > (int64_t)sizeof(spaces))
            return jfail(c, SHOAL_ERR_TOO_BIG, "indent width too large");
        memset(spaces, ' ', (size_t)w);
        ni = (size_t)w;
    }
    bool first = truthy_or(p[1], false), blank = truthy_or(p[2], false);
    /* s + "\n", split into lines, rejoined with "\n" + indent */
    struct jv lines, withnl;
    if (jstr_cat(c, STR_DATA(v), STR_LEN(v), "\n", 1, &withnl) != 0)
        return -1;
    int r = splitlines(c, withnl, false, &lines);
    jv_decref(c, withnl);
    if (r != 0)
        return -1;
    struct jlist *l = jv_list(lines);
    struct jsb b;
    jsb_init(&b, c);
    r = 0;
    if (first)
        r = jsb_add(&b, ind, ni);
    for (size_t i = 0; i < l->n && r == 0; i++) {
        struct jstr *ln = jv_str(l->items[i]);
        if (i > 0) {
            r = jsb_addc(&b, '\n');
            if (r == 0 && (blank || ln->len))
                r = jsb_add(&b, ind, ni);
        }
        if (r == 0)
            r = jsb_add(&b, ln->data, ln->len);
    }
    jv_decref(c, lines);
    if (r != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, v.flags & JVF_MARKUP, out);
}

static int f_items(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)p;
    (void)a;
    if (v.type == JV_UNDEF) {
        struct jlist *g = gen_new(c, 0, "generator");
        if (!g)
            return -1;
        *out = jv_obj(JV_LIST, g);
        return 0;
    }
    if (v.type != JV_DICT)
        return deferred_gen(c, v, "%.0sYou can only get the items from mappings.", "generator",
                            out);
    struct jdict *d = jv_dict(v);
    struct jlist *g = gen_new(c, d->n, "generator");
    if (!g)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        struct jlist *t = jlist_new(c, 2, JL_TUPLE);
        if (!t) {
            jv_decref(c, jv_obj(JV_LIST, g));
            return -1;
        }
        t->items[t->n++] = jv_ref(d->e[i].k);
        t->items[t->n++] = jv_ref(d->e[i].v);
        t->h.depth = d->h.depth;
        if (jlist_push(c, g, jv_obj(JV_LIST, t)) != 0) {
            jv_decref(c, jv_obj(JV_LIST, g));
            return -1;
        }
    }
    *out = jv_obj(JV_LIST, g);
    return 0;
}

static int f_join(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)a;
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    struct jv sep = jv_make(JV_EMPTY);
    int r = 0;
    if (given(p[0]))
        r = soft_str(c, p[0], &sep);
    struct jsb b;
    jsb_init(&b, c);
    for (size_t i = 0; i < items->n && r == 0; i++) {
        if (i && sep.type == JV_STR)
            r = jsb_add(&b, STR_DATA(sep), STR_LEN(sep));
        struct jv item = jv_ref(items->items[i]);
        if (r == 0 && given(p[1]) && p[1].type != JV_NONE) {
            struct jv got;
            r = attr_path(c, item, p[1], &got);
            jv_decref(c, item);
            item = r == 0 ? got : jv_make(JV_EMPTY);
        }
        if (r == 0)
            r = jv_write_str(c, item, &b);
        jv_decref(c, item);
    }
    jv_decref(c, sep);
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, 0, out);
}

static int f_list(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)p;
    (void)a;
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    if (items->h.kind == JL_LIST && !(v.type == JV_LIST && jv_list(v) == items)) {
        *out = jv_obj(JV_LIST, items);
        return 0;
    }
    struct jlist *r = jlist_new(c, items->n, JL_LIST);
    if (!r) {
        jv_decref(c, jv_obj(JV_LIST, items));
        return -1;
    }
    for (size_t i = 0; i < items->n; i++)
        r->items[r->n++] = jv_ref(items->items[i]);
    r->h.depth = items->h.depth;
    jv_decref(c, jv_obj(JV_LIST, items));
    *out = jv_obj(JV_LIST, r);
    return 0;
}

static int f_minmax(struct jctx *c, struct jv v, const struct jv *p, bool want_max,
                    struct jv *out)
{
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    bool cs = truthy_or(p[0], false);
    int r = 0;
    struct jv best = jv_make(JV_EMPTY), bestkey = jv_make(JV_EMPTY);
    for (size_t i = 0; i < items->n && r == 0; i++) {
        struct jv k;
        r = sort_key(c, items->items[i], p[1], cs, &k);
        if (r != 0)
            break;
        int cmp = 0;
        if (best.type != JV_EMPTY)
            r = jv_compare(c, k, bestkey, want_max ? ">" : "<", &cmp);
        if (r == 0 && (best.type == JV_EMPTY || cmp == (want_max ? 1 : -1))) {
            jv_decref(c, bestkey);
            bestkey = k;
            best = items->items[i];
        } else {
            jv_decref(c, k);
        }
    }
    if (r == 0)
        *out = best.type == JV_EMPTY ? jv_undef("No aggregated item, sequence was empty.")
                                     : jv_ref(best);
    jv_decref(c, bestkey);
    jv_decref(c, jv_obj(JV_LIST, items));
    return r;
}

static int f_max(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)a;
    return f_minmax(c, v, p, true, out);
}
static int f_min(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)a;
    return f_minmax(c, v, p, false, out);
}

static int f_pprint(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    (void)a;
    struct jsb b;
    jsb_init(&b, c);
    c->repr_sorted = true; /* pprint sorts dict keys */
    int r = jv_write_repr(c, v, &b);
    c->repr_sorted = false;
    if (r != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, 0, out);
}

static int f_replace(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                     struct jv *out)
{
    (void)a;
    int64_t count = -1;
    if (given(p[2]) && p[2].type != JV_NONE && need_int(c, p[2], "replace count", &count) != 0)
        return -1;
    struct jv s, o, nw;
    if (soft_str(c, v, &s) != 0)
        return -1;
    if (soft_str(c, p[0], &o) != 0) {
        jv_decref(c, s);
        return -1;
    }
    if (soft_str(c, p[1], &nw) != 0) {
        jv_decref(c, s);
        jv_decref(c, o);
        return -1;
    }
    int r = replace(c, s, o, nw, count, 0, out);
    jv_decref(c, s);
    jv_decref(c, o);
    jv_decref(c, nw);
    return r;
}

static int reversed_list(struct jctx *c, struct jlist *src, enum jlist_kind kind,
                         const char *name, struct jv *out)
{
    struct jlist *r = jlist_new(c, src->n, kind);
    if (!r)
        return -1;
    r->gname = name;
    size_t from = src->h.kind == JL_GEN ? src->pos : 0;
    for (size_t i = src->n; i-- > from;)
        r->items[r->n++] = jv_ref(src->items[i]);
    r->h.depth = src->h.depth;
    *out = jv_obj(JV_LIST, r);
    return 0;
}

static int f_reverse(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                     struct jv *out)
{
    (void)p;
    (void)a;
    if (v.type == JV_STR) {
        struct jv none = jv_none(), step = jv_int(-1);
        return jslice(c, v, &none, &none, &step, out);
    }
    if (v.type == JV_LIST) {
        struct jlist *l = jv_list(v);
        if (l->h.kind == JL_GEN) { /* reversed() refuses; jinja2 falls back to a list */
            if (jgen_check(c, l) != 0)
                return -1;
            int r = reversed_list(c, l, JL_LIST, "list", out);
            l->pos = l->n;
            return r;
        }
        const char *name = l->h.kind == JL_TUPLE ? "reversed" : l->h.kind == JL_RANGE
                                                                    ? "range_iterator"
                                                                    : "list_reverseiterator";
        return reversed_list(c, l, JL_GEN, name, out);
    }
    if (v.type == JV_DICT || v.type == JV_UNDEF) {
        struct jlist *items;
        if (jiter_items(c, v, &items) != 0)
            return -1;
        int r = reversed_list(c, items, JL_GEN,
                              v.type == JV_DICT ? "dict_reversekeyiterator" : "reversed", out);
        jv_decref(c, jv_obj(JV_LIST, items));
        return r;
    }
    return jfail(c, SHOAL_ERR_INVALID, "argument to reversed() must be a sequence");
}

static int f_round(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                   struct jv *out)
{
    (void)a;
    int64_t prec = 0;
    if (given(p[0]) && need_int(c, p[0], "round precision", &prec) != 0)
        return -1;
    const char *method = "common";
    if (given(p[1])) {
        if (need_str(c, p[1], "round method") != 0)
            return -1;
        method = STR_DATA(p[1]);
    }
    if (!jv_is_num(v))
        return jfail(c, SHOAL_ERR_INVALID, "type %s doesn't define __round__ method",
                     jv_type_name(v));
    if (v.type != JV_FLOAT && !strcmp(method, "common")) {
        /* round(int, n) stays an int: itself, or rounded half to even to a
         * multiple of 10**-n */
        int64_t x = v.type == JV_BOOL ? v.u.b : v.u.i, m = 1;
        for (int64_t k = prec; k < 0 && m <= INT64_MAX / 10; k++)
            m *= 10;
        if (prec < -18) {
            *out = jv_int(0);
            return 0;
        }
        int64_t r = x % m;
        if (r < 0)
            r += m;
        int64_t base = x - r, q = base / m;
        bool up = r > m - r || (r == m - r && (q % 2 != 0));
        if (up && __builtin_add_overflow(base, m, &base))
            return jfail(c, SHOAL_ERR_TOO_BIG, "integer overflow (beyond 64 bits)");
        *out = jv_int(base);
        return 0;
    }
    double d = v.type == JV_FLOAT ? v.u.f : v.type == JV_BOOL ? v.u.b : (double)v.u.i;
    if (prec > 300)
        prec = 300;
    if (prec < -300)
        prec = -300;
    if (!strcmp(method, "common")) {
        if (!isfinite(d)) {
            *out = jv_float(d);
            return 0;
        }
        if (prec >= 0) {
            /* glibc rounds the exact binary value half-to-even, as CPython does */
            char buf[400];
            snprintf(buf, sizeof(buf), "%.*f", (int)prec, d);
            *out = jv_float(strtod(buf, NULL));
        } else {
            double m = pow(10.0, (double)-prec);
            *out = jv_float(nearbyint(d / m) * m);
        }
        return 0;
    }
    double m = pow(10.0, (double)prec);
    if (!strcmp(method, "ceil"))
        *out = jv_float(ceil(d * m) / m);
    else if (!strcmp(method, "floor"))
        *out = jv_float(floor(d * m) / m);
    else
        return jfail(c, SHOAL_ERR_INVALID, "method must be common, ceil or floor");
    return 0;
}

static int f_safe(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)p;
    (void)a;
    if (soft_str(c, v, out) != 0)
        return -1;
    out->flags |= JVF_MARKUP;
    return 0;
}

/* select/reject/selectattr/rejectattr: raw arguments. */
static int select_common(struct jctx *c, struct jv v, const struct jargs *a, bool want,
                         bool by_attr, struct jv *out)
{
    size_t k = 0;
    struct jv attr = jv_make(JV_EMPTY);
    if (a->nkw)
        return jfail(c, SHOAL_ERR_INVALID, "unexpected keyword argument '%s'", a->kwnames[0]);
    if (by_attr) {
        if (a->npos < 1)
            return jfail(c, SHOAL_ERR_INVALID, "Missing parameter for attribute name");
        attr = a->pos[k++];
    }
    int test = -1;
    if (k < a->npos) {
        if (need_str(c, a->pos[k], "test name") != 0)
            return -1;
        test = jtest_lookup(STR_DATA(a->pos[k]));
        if (test < 0)
            return jfail(c, SHOAL_ERR_INVALID, "No test named '%s'.", STR_DATA(a->pos[k]));
        k++;
    }
    struct jargs targs = {a->pos + k, a->npos - k, NULL, NULL, 0};
    struct jlist *items;
    int drc;
    if (pass_deferred(c, v, out, &drc))
        return drc;
    if (jv_truthy(v) && !jv_is_iterable(v))
        return deferred_gen(c, v, not_iterable, "generator", out);
    if (!jv_truthy(v)) /* jinja2 iterates only "if value" */
        items = jlist_new(c, 0, JL_LIST);
    else if (jiter_items(c, v, &items) != 0)
        return -1;
    if (!items)
        return -1;
    struct jlist *res = gen_new(c, 0, "generator");
    int r = res ? 0 : -1;
    for (size_t i = 0; r == 0 && i < items->n; i++) {
        struct jv x = jv_ref(items->items[i]);
        if (by_attr) {
            struct jv got;
            r = attr_path(c, x, attr, &got);
            jv_decref(c, x);
            if (r != 0)
                break;
            x = got;
        }
        bool ok;
        if (test >= 0)
            r = jtest_apply(c, test, x, &targs, &ok);
        else
            ok = jv_truthy(x);
        jv_decref(c, x);
        if (r == 0 && ok == want)
            r = jlist_push(c, res, jv_ref(items->items[i]));
    }
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        if (res)
            jv_decref(c, jv_obj(JV_LIST, res));
        return -1;
    }
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static int f_select(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    return select_common(c, v, a, true, false, out);
}
static int f_reject(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    return select_common(c, v, a, false, false, out);
}
static int f_selectattr(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                        struct jv *out)
{
    (void)p;
    return select_common(c, v, a, true, true, out);
}
static int f_rejectattr(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                        struct jv *out)
{
    (void)p;
    return select_common(c, v, a, false, true, out);
}

static int f_map(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)p;
    struct jv attr = jv_make(JV_EMPTY), def = jv_make(JV_EMPTY);
    int filter = -1;
    struct jargs fargs = {NULL, 0, NULL, NULL, 0};
    if (a->npos == 0) {
        for (size_t k = 0; k < a->nkw; k++) {
            if (!strcmp(a->kwnames[k], "attribute"))
                attr = a->kw[k];
            else if (!strcmp(a->kwnames[k], "default"))
                def = a->kw[k];
            else
                return jfail(c, SHOAL_ERR_INVALID, "Unexpected keyword argument '%s'",
                             a->kwnames[k]);
        }
        if (!given(attr))
            return jfail(c, SHOAL_ERR_INVALID, "map requires a filter argument");
    } else {
        if (need_str(c, a->pos[0], "map filter") != 0)
            return -1;
        filter = jfilter_lookup(STR_DATA(a->pos[0]));
        if (filter < 0)
            return jfail(c, SHOAL_ERR_INVALID, "No filter named '%s'.", STR_DATA(a->pos[0]));
        fargs.pos = a->pos + 1;
        fargs.npos = a->npos - 1;
        fargs.kwnames = a->kwnames;
        fargs.kw = a->kw;
        fargs.nkw = a->nkw;
    }
    struct jlist *items;
    int drc;
    if (pass_deferred(c, v, out, &drc))
        return drc;
    if (jv_truthy(v) && !jv_is_iterable(v))
        return deferred_gen(c, v, not_iterable, "generator", out);
    if (!jv_truthy(v)) /* jinja2 iterates only "if value" */
        items = jlist_new(c, 0, JL_LIST);
    else if (jiter_items(c, v, &items) != 0)
        return -1;
    if (!items)
        return -1;
    struct jlist *res = gen_new(c, items->n, "generator");
    int r = res ? 0 : -1;
    for (size_t i = 0; r == 0 && i < items->n; i++) {
        struct jv x;
        if (filter >= 0) {
            r = jfilter_apply(c, filter, items->items[i], &fargs, &x);
        } else {
            r = attr_path(c, items->items[i], attr, &x);
            if (r == 0 && x.type == JV_UNDEF && given(def)) {
                x = jv_ref(def);
            }
        }
        if (r == 0)
            r = jlist_push(c, res, x);
    }
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        if (res)
            jv_decref(c, jv_obj(JV_LIST, res));
        return -1;
    }
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static int f_sort(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)a;
    struct jlist *res;
    if (sorted(c, v, p[2], truthy_or(p[1], false), truthy_or(p[0], false), &res) != 0)
        return -1;
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static int f_string(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)p;
    (void)a;
    return soft_str(c, v, out);
}

static int f_striptags(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                       struct jv *out)
{
    (void)p;
    (void)a;
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    const char *t = STR_DATA(s);
    size_t n = STR_LEN(s);
    struct jsb b;
    jsb_init(&b, c);
    int r = 0;
    bool space = false, any = false;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (t[i] == '<') {
            const char *end = i + 3 < n && !memcmp(t + i, "<!--", 4)
                                  ? memmem(t + i + 4, n - i - 4, "-->", 3) : memchr(t + i, '>', n - i);
            if (end) {
                i = (size_t)(end - t) + (t[i + 1] == '!' && end[0] == '-' ? 2 : 0);
                space = any;
                continue;
            }
        }
        if (jpy_isspace((unsigned char)t[i])) {
            space = any;
            continue;
        }
        if (space) {
            r = jsb_addc(&b, ' ');
            space = false;
        }
        any = true;
        if (r == 0 && t[i] == '&') {
            static const char *const ents[][2] = {{"&amp;", "&"},  {"&lt;", "<"},  {"&gt;", ">"},
                                                  {"&#34;", "\""}, {"&#39;", "'"}, {"&quot;", "\""}};
            bool done = false;
            for (size_t k = 0; k < SHOAL_ARRAY_LEN(ents) && !done; k++) {
                size_t el = strlen(ents[k][0]);
                if (n - i >= el && !memcmp(t + i, ents[k][0], el)) {
                    r = jsb_adds(&b, ents[k][1]);
                    i += el - 1;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        if (r == 0)
            r = jsb_addc(&b, t[i]);
    }
    jv_decref(c, s);
    if (r != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, 0, out);
}

static int f_sum(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                 struct jv *out)
{
    (void)a;
    struct jlist *items;
    if (jiter_items(c, v, &items) != 0)
        return -1;
    struct jv acc = given(p[1]) ? jv_ref(p[1]) : jv_int(0);
    int r = 0;
    for (size_t i = 0; i < items->n && r == 0; i++) {
        struct jv x = jv_ref(items->items[i]), sum;
        if (given(p[0]) && p[0].type != JV_NONE) {
            struct jv got;
            r = attr_path(c, x, p[0], &got);
            jv_decref(c, x);
            if (r != 0)
                break;
            x = got;
        }
        r = jbinop(c, JOP_ADD, acc, x, &sum);
        jv_decref(c, x);
        if (r == 0) {
            jv_decref(c, acc);
            acc = sum;
        }
    }
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        jv_decref(c, acc);
        return -1;
    }
    *out = acc;
    return 0;
}

static int f_tojson(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)a;
    /* transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
    struct jjson_opts o = {0};
    char spaces[128];
    o.ensure_ascii = truthy_or(p[0], false);
    o.sort_keys = truthy_or(p[3], false);
    if (given(p[1]) && p[1].type != JV_NONE) {
        o.has_indent = true;
        if (p[1].type == JV_STR) {
            o.indent = STR_DATA(p[1]);
            o.indent_len = STR_LEN(p[1]);
        } else {
            int64_t w = 0;
            if (need_int(c, p[1], "tojson indent", &w) != 0)
                return -1;
            if (w < 0)
                w = 0;
            if (w > (int64_t)sizeof(spaces))
                return jfail(c, SHOAL_ERR_TOO_BIG, "tojson indent too large");
            memset(spaces, ' ', (size_t)w);
            o.indent = spaces;
            o.indent_len = (size_t)w;
        }
    }
    o.item_sep = o.has_indent ? "," : ", ";
    o.item_sep_len = strlen(o.item_sep);
    o.key_sep = ": ";
    o.key_sep_len = 2;
    if (given(p[2]) && p[2].type != JV_NONE) {
        struct jv s = p[2];
        if (s.type != JV_LIST || (jv_list(s)->h.kind != JL_LIST && jv_list(s)->h.kind != JL_TUPLE) ||
            jv_list(s)->n != 2 || jv_list(s)->items[0].type != JV_STR ||
            jv_list(s)->items[1].type != JV_STR)
            return jfail(c, SHOAL_ERR_INVALID, "tojson separators must be a pair of strings");
        o.item_sep = STR_DATA(jv_list(s)->items[0]);
        o.item_sep_len = STR_LEN(jv_list(s)->items[0]);
        o.key_sep = STR_DATA(jv_list(s)->items[1]);
        o.key_sep_len = STR_LEN(jv_list(s)->items[1]);
    }
    struct jsb b;
    jsb_init(&b, c);
    if (jv_write_json(c, v, &o, &b) != 0) {
        jsb_fini(&b);
        return -1;
    }
    return str_from_sb(&b, 0, out);
}

static int f_trim(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                  struct jv *out)
{
    (void)a;
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    int r = strip(c, s, p[0], true, true, out);
    jv_decref(c, s);
    return r;
}

static int f_truncate(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                      struct jv *out)
{
    (void)a;
    int64_t length = 255, leeway = 5;
    if (given(p[0]) && need_int(c, p[0], "truncate length", &length) != 0)
        return -1;
    if (given(p[3]) && p[3].type != JV_NONE && need_int(c, p[3], "truncate leeway", &leeway) != 0)
        return -1;
    if (v.type != JV_STR) {
        /* jinja2 measures the value itself, not its str() */
        int64_t len = 0;
        if (jv_len(c, v, &len) != 0)
            return -1;
        if (len <= length + leeway) {
            *out = jv_ref(v);
            return 0;
        }
        return jfail(c, SHOAL_ERR_INVALID, "truncate: expected a string, not '%s'",
                     jv_type_name(v));
    }
    struct jv s, end;
    if (soft_str(c, v, &s) != 0)
        return -1;
    if (given(p[2])) {
        if (soft_str(c, p[2], &end) != 0) {
            jv_decref(c, s);
            return -1;
        }
    } else if (jstr_new(c, "...", 3, &end) != 0) {
        jv_decref(c, s);
        return -1;
    }
    int64_t n = (int64_t)jstr_nchars(jv_str(s)), ne = (int64_t)jstr_nchars(jv_str(end));
    int r = 0;
    if (length < ne || leeway < 0) {
        r = jfail(c, SHOAL_ERR_INVALID, "truncate: length must be at least the end marker's");
    } else if (n <= length + leeway) {
        *out = jv_ref(s);
    } else {
        struct jv none = jv_none(), stop = jv_int(length - ne), head;
        r = jslice(c, s, &none, &stop, &none, &head);
        if (r == 0 && !truthy_or(p[1], false)) {
            /* cut back to the last space */
            struct jstr *h = jv_str(head);
            size_t k = h->len;
            while (k > 0 && h->data[k - 1] != ' ')
                k--;
            if (k > 0) {
                struct jv cut;
                r = jstr_new(c, h->data, k - 1, &cut);
                jv_decref(c, head);
                head = r == 0 ? cut : jv_make(JV_EMPTY);
            }
        }
        if (r == 0) {
            r = jstr_cat(c, STR_DATA(head), STR_LEN(head), STR_DATA(end), STR_LEN(end), out);
            jv_decref(c, head);
        }
    }
    jv_decref(c, s);
    jv_decref(c, end);
    return r;
}

static int f_unique(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                    struct jv *out)
{
    (void)a;
    struct jlist *items;
    int drc;
    if (pass_deferred(c, v, out, &drc))
        return drc;
    if (!jv_is_iterable(v))
        return deferred_gen(c, v, not_iterable, "generator", out);
    if (jiter_items(c, v, &items) != 0)
        return -1;
    struct jdict *seen = jdict_new(c, 0);
    struct jlist *res = gen_new(c, 0, "generator");
    int r = seen && res ? 0 : -1;
    for (size_t i = 0; i < items->n && r == 0; i++) {
        struct jv k, tmp;
        r = sort_key(c, items->items[i], p[1], truthy_or(p[0], false), &k);
        if (r != 0)
            break;
        uint64_t h;
        if (!jv_hash(k, &h)) {
            r = jfail(c, SHOAL_ERR_INVALID, "unhashable type: '%s'", jv_type_name(k));
            jv_decref(c, k);
            break;
        }
        if (jdict_get(seen, k, &tmp)) {
            jv_decref(c, k);
            continue;
        }
        r = jdict_set(c, seen, k, jv_none());
        if (r == 0)
            r = jlist_push(c, res, jv_ref(items->items[i]));
    }
    if (seen)
        jv_decref(c, jv_obj(JV_DICT, seen));
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        if (res)
            jv_decref(c, jv_obj(JV_LIST, res));
        return -1;
    }
    *out = jv_obj(JV_LIST, res);
    return 0;
}

/* Python's \w beyond ASCII, approximately: letters and digits of any
 * script, not punctuation, symbols, emoji, marks or spaces. */
static bool word_char(uint32_t cp)
{
    if (cp < 0x80 || jpy_isspace(cp) || !jpy_isprintable(cp))
        return false;
    if (cp < 0xC0)
        return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 ||
               cp == 0xBA || (cp >= 0xBC && cp <= 0xBE);
    if (cp == 0xD7 || cp == 0xF7 || (cp >= 0x300 && cp <= 0x36F))
        return false;
    static const uint32_t nonword[][2] = {
        {0x2000, 0x2BFF}, {0x2E00, 0x2E7F}, {0x3000, 0x3004}, {0x3008, 0x3020},
        {0x3030, 0x3030}, {0xFE00, 0xFE0F}, {0xFE30, 0xFE4F}, {0xFF00, 0xFF0F},
        {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0x1F000, 0x1FBFF},
        {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20FF}, {0xE0000, 0xE0FFF},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(nonword); i++)
        if (cp >= nonword[i][0] && cp <= nonword[i][1])
            return false;
    return true;
}

static int f_wordcount(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                       struct jv *out)
{
    (void)p;
    (void)a;
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    struct cpiter it = {(const unsigned char *)STR_DATA(s), STR_LEN(s), 0};
    uint32_t cp;
    size_t at, len;
    int64_t words = 0;
    bool in = false;
    while (cp_next(&it, &cp, &at, &len)) {
        bool w = cp == '_' || (cp >= '0' && cp <= '9') || jpy_isalpha(cp) || word_char(cp);
        if (w && !in)
            words++;
        in = w;
    }
    jv_decref(c, s);
    *out = jv_int(words);
    return 0;
}

const char jgroup_name[] = "_GroupTuple";

static int f_groupby(struct jctx *c, struct jv v, const struct jv *p, const struct jargs *a,
                     struct jv *out)
{
    (void)a;
    /* groupby(attribute, default=None, case_sensitive=False): sort by the
     * attribute, then one (grouper, list) tuple per run of equal keys */
    bool cs = truthy_or(p[2], false);
    struct jlist *items;
    if (sorted(c, v, p[0], cs, false, &items) != 0)
        return -1;
    struct jlist *res = jlist_new(c, 0, JL_LIST);
    int r = res ? 0 : -1;
    struct jlist *group = NULL;
    struct jv gkey = jv_make(JV_EMPTY);
    for (size_t i = 0; i <= items->n && r == 0; i++) {
        struct jv k = jv_make(JV_EMPTY);
        bool same = false;
        if (i < items->n) {
            r = sort_key(c, items->items[i], p[0], cs, &k);
            if (r == 0 && k.type == JV_UNDEF && given(p[1]) && p[1].type != JV_NONE) {
                k = cs ? jv_ref(p[1]) : jv_make(JV_EMPTY);
                if (!cs)
                    r = lower_if_str(c, p[1], &k);
            }
            if (r == 0 && group)
                r = jv_equal(c, k, gkey, &same);
        }
        if (r == 0 && group && !same) {
            /* close the group: the grouper is the first item's real key */
            struct jv grouper;
            r = attr_path(c, group->items[0], p[0], &grouper);
            if (r == 0 && grouper.type == JV_UNDEF && given(p[1]) && p[1].type != JV_NONE)
                grouper = jv_ref(p[1]);
            struct jlist *t = r == 0 ? jlist_new(c, 2, JL_TUPLE) : NULL;
            if (!t) {
                if (r == 0)
                    jv_decref(c, grouper);
                r = -1;
            } else {
                t->gname = jgroup_name;
                t->items[t->n++] = grouper;
                t->items[t->n++] = jv_obj(JV_LIST, group);
                t->h.depth = (uint16_t)(group->h.depth + 1);
                group = NULL;
                r = jlist_push(c, res, jv_obj(JV_LIST, t));
            }
        }
        if (r == 0 && i < items->n) {
            if (!group) {
                group = jlist_new(c, 0, JL_LIST);
                jv_decref(c, gkey);
                gkey = jv_ref(k);
                if (!group)
                    r = -1;
            }
            if (r == 0)
                r = jlist_push(c, group, jv_ref(items->items[i]));
        }
        jv_decref(c, k);
    }
    if (group)
        jv_decref(c, jv_obj(JV_LIST, group));
    jv_decref(c, gkey);
    jv_decref(c, jv_obj(JV_LIST, items));
    if (r != 0) {
        if (res)
            jv_decref(c, jv_obj(JV_LIST, res));
        return -1;
    }
    *out = jv_obj(JV_LIST, res);
    return 0;
}

static const struct filter_def filters[] = {
    {"abs", f_abs, 0, false, 0, {0}},
    {"attr", f_attr, 1, false, 1, {"name"}},
    {"batch", f_batch, 2, false, 1, {"linecount", "fill_with"}},
    {"capitalize", f_capitalize, 0, false, 0, {0}},
    {"center", f_center, 1, false, 0, {"width"}},
    {"count", f_length, 0, false, 0, {0}},
    {"d", f_default, 2, false, 0, {"default_value", "boolean"}},
    {"default", f_default, 2, false, 0, {"default_value", "boolean"}},
    {"dictsort", f_dictsort, 3, false, 0, {"case_sensitive", "by", "reverse"}},
    {"e", f_escape, 0, false, 0, {0}},
    {"escape", f_escape, 0, false, 0, {0}},
    {"first", f_first, 0, false, 0, {0}},
    {"float", f_float, 1, false, 0, {"default"}},
    {"forceescape", f_forceescape, 0, false, 0, {0}},
    {"format", f_format, 0, true, 0, {0}},
    {"groupby", f_groupby, 3, false, 1, {"attribute", "default", "case_sensitive"}},
    {"indent", f_indent, 3, false, 0, {"width", "first", "blank"}},
    {"int", f_int, 2, false, 0, {"default", "base"}},
    {"items", f_items, 0, false, 0, {0}},
    {"join", f_join, 2, false, 0, {"d", "attribute"}},
    {"last", f_last, 0, false, 0, {0}},
    {"length", f_length, 0, false, 0, {0}},
    {"list", f_list, 0, false, 0, {0}},
    {"lower", f_lower, 0, false, 0, {0}},
    {"map", f_map, 0, true, 0, {0}},
    {"max", f_max, 2, false, 0, {"case_sensitive", "attribute"}},
    {"min", f_min, 2, false, 0, {"case_sensitive", "attribute"}},
    {"pprint", f_pprint, 0, false, 0, {0}},
    {"reject", f_reject, 0, true, 0, {0}},
    {"rejectattr", f_rejectattr, 0, true, 0, {0}},
    {"replace", f_replace, 3, false, 2, {"old", "new", "count"}},
    {"reverse", f_reverse, 0, false, 0, {0}},
    {"round", f_round, 2, false, 0, {"precision", "method"}},
    {"safe", f_safe, 0, false, 0, {0}},
    {"select", f_select, 0, true, 0, {0}},
    {"selectattr", f_selectattr, 0, true, 0, {0}},
    {"slice", f_slice, 2, false, 1, {"slices", "fill_with"}},
    {"sort", f_sort, 3, false, 0, {"reverse", "case_sensitive", "attribute"}},
    {"string", f_string, 0, false, 0, {0}},
    {"striptags", f_striptags, 0, false, 0, {0}},
    {"sum", f_sum, 2, false, 0, {"attribute", "start"}},
    {"title", f_title, 0, false, 0, {0}},
    {"tojson", f_tojson, 4, false, 0, {"ensure_ascii", "indent", "separators", "sort_keys"}},
    {"trim", f_trim, 1, false, 0, {"chars"}},
    {"truncate", f_truncate, 4, false, 0, {"length", "killwords", "end", "leeway"}},
    {"unique", f_unique, 2, false, 0, {"case_sensitive", "attribute"}},
    {"upper", f_upper, 0, false, 0, {0}},
    {"wordcount", f_wordcount, 0, false, 0, {0}},
};

int jfilter_lookup(const char *name)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(filters); i++)
        if (!strcmp(filters[i].name, name))
            return (int)i;
    return -1;
}

int jfilter_apply(struct jctx *c, int id, struct jv v, const struct jargs *a, struct jv *out)
{
    const struct filter_def *f = &filters[id];
    *out = jv_make(JV_EMPTY);
    if (jstep(c, 1) != 0)
        return -1;
    if (f->raw)
        return f->fn(c, v, NULL, a, out);
    struct jv p[5];
    if (bind(c, f->name, f->params, f->np, a, p) != 0)
        return -1;
    for (size_t i = 0; i < f->nreq; i++)
        if (!given(p[i]))
            return jfail(c, SHOAL_ERR_INVALID, "%s() missing required argument '%s'", f->name,
                         f->params[i]);
    return f->fn(c, v, p, a, out);
}

/* ---- Tests ---- */

enum {
    T_BOOLEAN, T_CALLABLE, T_DEFINED, T_DIVISIBLEBY, T_EQ, T_ESCAPED, T_EVEN, T_FALSE, T_FILTER,
    T_FLOAT, T_GE, T_GT, T_IN, T_INTEGER, T_ITERABLE, T_LE, T_LOWER, T_LT, T_MAPPING, T_NE,
    T_NONE, T_NUMBER, T_ODD, T_SAMEAS, T_SEQUENCE, T_STRING, T_TEST, T_TRUE, T_UNDEFINED,
    T_UPPER,
};

static const struct {
    const char *name;
    int id;
    int nargs; /* required positional arguments */
} tests[] = {
    {"boolean", T_BOOLEAN, 0},   {"callable", T_CALLABLE, 0}, {"defined", T_DEFINED, 0},
    {"divisibleby", T_DIVISIBLEBY, 1}, {"eq", T_EQ, 1},       {"equalto", T_EQ, 1},
    {"==", T_EQ, 1},             {"escaped", T_ESCAPED, 0},   {"even", T_EVEN, 0},
    {"false", T_FALSE, 0},       {"filter", T_FILTER, 0},     {"float", T_FLOAT, 0},
    {"ge", T_GE, 1},             {">=", T_GE, 1},             {"gt", T_GT, 1},
    {"greaterthan", T_GT, 1},    {">", T_GT, 1},              {"in", T_IN, 1},
    {"integer", T_INTEGER, 0},   {"iterable", T_ITERABLE, 0}, {"le", T_LE, 1},
    {"<=", T_LE, 1},             {"lower", T_LOWER, 0},       {"lt", T_LT, 1},
    {"lessthan", T_LT, 1},       {"<", T_LT, 1},              {"mapping", T_MAPPING, 0},
    {"ne", T_NE, 1},             {"!=", T_NE, 1},             {"none", T_NONE, 0},
    {"number", T_NUMBER, 0},     {"odd", T_ODD, 0},           {"sameas", T_SAMEAS, 1},
    {"sequence", T_SEQUENCE, 0}, {"string", T_STRING, 0},     {"test", T_TEST, 0},
    {"true", T_TRUE, 0},         {"undefined", T_UNDEFINED, 0}, {"upper", T_UPPER, 0},
};

int jtest_lookup(const char *name)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(tests); i++)
        if (!strcmp(tests[i].name, name))
            return (int)i;
    return -1;
}

static int case_test(struct jctx *c, struct jv v, bool want_lower, bool *out)
{
    struct jv s;
    if (soft_str(c, v, &s) != 0)
        return -1;
    struct cpiter it = {(const unsigned char *)STR_DATA(s), STR_LEN(s), 0};
    uint32_t cp;
    size_t at, len;
    bool cased = false, ok = true;
    while (cp_next(&it, &cp, &at, &len)) {
        bool is_upper = jpy_lower(cp) != cp, is_lower = jpy_upper(cp) != cp;
        if (is_upper || is_lower)
            cased = true;
        if (want_lower ? is_upper : is_lower)
            ok = false;
    }
    jv_decref(c, s);
    *out = cased && ok;
    return 0;
}

int jtest_apply(struct jctx *c, int id, struct jv v, const struct jargs *a, bool *out)
{
    int t = tests[id].id;
    if (a->nkw)
        return jfail(c, SHOAL_ERR_INVALID, "test '%s' takes no keyword arguments",
                     tests[id].name);
    if ((int)a->npos != tests[id].nargs)
        return jfail(c, SHOAL_ERR_INVALID, "test '%s' takes %d argument(s), %zu given",
                     tests[id].name, tests[id].nargs, a->npos);
    struct jv arg = a->npos ? a->pos[0] : jv_make(JV_EMPTY);
    int cmp = 0;
    switch (t) {
    case T_BOOLEAN: *out = v.type == JV_BOOL; return 0;
    case T_CALLABLE:
        *out = v.type == JV_MACRO || v.type == JV_FUNC || v.type == JV_METHOD ||
               v.type == JV_LOOP || v.type == JV_JOINER || v.type == JV_UNDEF;
        return 0;
    case T_DEFINED: *out = v.type != JV_UNDEF; return 0;
    case T_UNDEFINED: *out = v.type == JV_UNDEF; return 0;
    case T_DIVISIBLEBY:
    case T_EVEN:
    case T_ODD: {
        struct jv m;
        struct jv d = t == T_DIVISIBLEBY ? arg : jv_int(2);
        if (jbinop(c, JOP_MOD, v, d, &m) != 0)
            return -1;
        bool eq;
        jv_equal(c, m, jv_int(t == T_ODD ? 1 : 0), &eq);
        jv_decref(c, m);
        *out = eq;
        return 0;
    }
    case T_EQ: return jv_equal(c, v, arg, out);
    case T_NE:
        if (jv_equal(c, v, arg, out) != 0)
            return -1;
        *out = !*out;
        return 0;
    case T_ESCAPED: *out = v.type == JV_STR && (v.flags & JVF_MARKUP); return 0;
    case T_FALSE: *out = v.type == JV_BOOL && !v.u.b; return 0;
    case T_TRUE: *out = v.type == JV_BOOL && v.u.b; return 0;
    case T_FILTER: /* "name" is filter: a filter of that name exists */
        *out = v.type == JV_STR && jfilter_lookup(STR_DATA(v)) >= 0;
        return 0;
    case T_TEST:
        *out = v.type == JV_STR && jtest_lookup(STR_DATA(v)) >= 0;
        return 0;
    case T_FLOAT: *out = v.type == JV_FLOAT; return 0;
    case T_INTEGER: *out = v.type == JV_INT; return 0;
    case T_NUMBER: *out = jv_is_num(v); return 0;
    case T_GE:
    case T_GT:
    case T_LE:
    case T_LT: {
        static const char *const ops[] = {[T_GE] = ">=", [T_GT] = ">", [T_LE] = "<=", [T_LT] = "<"};
        if (jv_compare(c, v, arg, ops[t], &cmp) != 0)
            return -1;
        *out = t == T_GE ? (cmp == 0 || cmp == 1) : t == T_GT ? cmp == 1
               : t == T_LE ? (cmp == 0 || cmp == -1) : cmp == -1;
        return 0;
    }
    case T_IN: return jv_contains(c, arg, v, out);
    case T_ITERABLE:
        *out = v.type == JV_STR || v.type == JV_LIST || v.type == JV_DICT || v.type == JV_UNDEF ||
               v.type == JV_LOOP;
        return 0;
    case T_SEQUENCE:
        *out = v.type == JV_STR || v.type == JV_DICT || v.type == JV_UNDEF ||
               (v.type == JV_LIST && jv_list(v)->h.kind != JL_GEN && jv_list(v)->h.kind != JL_VIEW);
        return 0;
    case T_LOWER: return case_test(c, v, true, out);
    case T_UPPER: return case_test(c, v, false, out);
    case T_MAPPING: *out = v.type == JV_DICT; return 0;
    case T_NONE: *out = v.type == JV_NONE; return 0;
    case T_SAMEAS:
        if (v.type != arg.type)
            *out = false;
        else if (jv_is_heap(v))
            *out = v.u.o == arg.u.o;
        else
            return jv_equal(c, v, arg, out);
        return 0;
    case T_STRING: *out = v.type == JV_STR; return 0;
    default: break;
    }
    return jfail(c, SHOAL_ERR_INTERNAL, "unknown test");
}

/* ---- Methods ---- */

enum jmeth {
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT, M_SPLITLINES, M_STARTSWITH, M_ENDSWITH,
    M_REPLACE, M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE, M_SWAPCASE, M_CASEFOLD, M_FIND, M_RFIND,
    M_INDEX, M_RINDEX, M_COUNT, M_JOIN, M_FORMAT, M_CENTER, M_LJUST, M_RJUST, M_ZFILL,
    M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE, M_ISLOWER, M_ISUPPER, M_ISNUMERIC, M_ISDECIMAL,
    M_ISTITLE, M_ISASCII, M_PARTITION, M_RPARTITION, M_REMOVEPREFIX, M_REMOVESUFFIX,
    /* dict */
    M_ITEMS, M_KEYS, M_VALUES, M_GET, M_COPY,
    /* list/tuple */
    M_LCOUNT, M_LINDEX,
    /* loop / cycler */
    M_CYCLE, M_CHANGED, M_NEXT, M_RESET,
};

static const struct {
    const char *name;
    uint8_t type;
    uint16_t id;
} methods[] = {
    {"strip", JV_STR, M_STRIP},           {"lstrip", JV_STR, M_LSTRIP},
    {"rstrip", JV_STR, M_RSTRIP},         {"split", JV_STR, M_SPLIT},
    {"rsplit", JV_STR, M_RSPLIT},         {"splitlines", JV_STR, M_SPLITLINES},
    {"startswith", JV_STR, M_STARTSWITH}, {"endswith", JV_STR, M_ENDSWITH},
    {"replace", JV_STR, M_REPLACE},       {"upper", JV_STR, M_UPPER},
    {"lower", JV_STR, M_LOWER},           {"title", JV_STR, M_TITLE},
    {"capitalize", JV_STR, M_CAPITALIZE}, {"swapcase", JV_STR, M_SWAPCASE},
    {"casefold", JV_STR, M_CASEFOLD},     {"find", JV_STR, M_FIND},
    {"rfind", JV_STR, M_RFIND},           {"index", JV_STR, M_INDEX},
    {"rindex", JV_STR, M_RINDEX},         {"count", JV_STR, M_COUNT},
    {"join", JV_STR, M_JOIN},             {"format", JV_STR, M_FORMAT},
    {"center", JV_STR, M_CENTER},         {"ljust", JV_STR, M_LJUST},
    {"rjust", JV_STR, M_RJUST},           {"zfill", JV_STR, M_ZFILL},
    {"isdigit", JV_STR, M_ISDIGIT},       {"isalpha", JV_STR, M_ISALPHA},
    {"isalnum", JV_STR, M_ISALNUM},       {"isspace", JV_STR, M_ISSPACE},
    {"islower", JV_STR, M_ISLOWER},       {"isupper", JV_STR, M_ISUPPER},
    {"isnumeric", JV_STR, M_ISNUMERIC},   {"isdecimal", JV_STR, M_ISDECIMAL},
    {"istitle", JV_STR, M_ISTITLE},       {"isascii", JV_STR, M_ISASCII},
    {"partition", JV_STR, M_PARTITION},   {"rpartition", JV_STR, M_RPARTITION},
    {"removeprefix", JV_STR, M_REMOVEPREFIX}, {"removesuffix", JV_STR, M_REMOVESUFFIX},
    {"items", JV_DICT, M_ITEMS},          {"keys", JV_DICT, M_KEYS},
    {"values", JV_DICT, M_VALUES},        {"get", JV_DICT, M_GET},
    {"copy", JV_DICT, M_COPY},            {"count", JV_LIST, M_LCOUNT},
    {"index", JV_LIST, M_LINDEX},         {"copy", JV_LIST, M_COPY},
    {"cycle", JV_LOOP, M_CYCLE},          {"changed", JV_LOOP, M_CHANGED},
    {"next", JV_CYCLER, M_NEXT},          {"reset", JV_CYCLER, M_RESET},
};

/* Methods the immutable sandbox refuses (they would modify a value). */
static const char *const unsafe_list[] = {"append", "clear", "extend", "insert", "pop",
                                          "remove", "reverse", "sort"};
static const char *const unsafe_dict[] = {"clear", "pop", "popitem", "setdefault", "update"};

static bool name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(name, lit, n) == 0;
}

int jmethod_lookup(struct jv obj, const char *name, size_t n, bool *unsafe)
{
    *unsafe = false;
    uint8_t type = obj.type;
    if (type == JV_LIST) {
        uint8_t kind = jv_list(obj)->h.kind;
        if (kind == JL_GEN || kind == JL_VIEW)
            return -1;
        if (kind == JL_LIST) {
            for (size_t i = 0; i < SHOAL_ARRAY_LEN(unsafe_list); i++)
                if (name_is(name, n, unsafe_list[i])) {
                    *unsafe = true;
                    return -1;
                }
        } else if (name_is(name, n, "copy")) {
            return -1;
        }
    }
    if (type == JV_DICT)
        for (size_t i = 0; i < SHOAL_ARRAY_LEN(unsafe_dict); i++)
            if (name_is(name, n, unsafe_dict[i])) {
                *unsafe = true;
                return -1;
            }
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(methods); i++)
        if (methods[i].type == type && name_is(name, n, methods[i].name))
            return methods[i].id;
    return -1;
}

static int str_arg(struct jctx *c, const struct jargs *a, size_t i, const char *what,
                   struct jv *out)
{
    if (i >= a->npos)
        return jfail(c, SHOAL_ERR_INVALID, "%s() missing a required argument", what);
    if (need_str(c, a->pos[i], what) != 0)
        return -1;
    *out = a->pos[i];
    return 0;
}

/* Code point index -> byte offsets with Python's clamping of start/end. */
static void str_range(struct jstr *s, const struct jargs *a, size_t first, size_t *lo, size_t *hi)
{
    int64_t n = (int64_t)jstr_nchars(s), st = 0, en = n;
    if (a->npos > first && (a->pos[first].type == JV_INT || a->pos[first].type == JV_BOOL)) {
        st = a->pos[first].type == JV_BOOL ? a->pos[first].u.b : a->pos[first].u.i;
        if (st < 0)
            st = st + n < 0 ? 0 : st + n;
    }
    if (a->npos > first + 1 &&
        (a->pos[first + 1].type == JV_INT || a->pos[first + 1].type == JV_BOOL)) {
        en = a->pos[first + 1].type == JV_BOOL ? a->pos[first + 1].u.b : a->pos[first + 1].u.i;
        if (en < 0)
            en = en + n < 0 ? 0 : en + n;
    }
    if (st > n)
        st = n;
    if (en > n)
        en = n;
    /* byte offsets */
    const unsigned char *p = (const unsigned char *)s->data;
    size_t off = 0, cp = 0;
    *lo = *hi = s->len;
    if (en < st)
        en = st;
    while (off <= s->len) {
        if ((int64_t)cp == st)
            *lo = off;
        if ((int64_t)cp == en) {
            *hi = off;
            break;
        }
        if (off == s->len)
            break;
        size_t len = 1;
        if (p[off] >= 0x80)
            jutf8_dec(p + off, s->len - off, &len);
        off += len;
        cp++;
    }
}

static size_t cp_index(struct jstr *s, size_t byte_off)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s->data;
    for (size_t i = 0; i < byte_off;) {
        size_t len = 1;
        if (p[i] >= 0x80)
            jutf8_dec(p + i, s->len - i, &len);
        i += len;
        n++;
    }
    return n;
}

static bool affix_match(struct jstr *s, size_t lo, size_t hi, struct jv affix, bool end)
{
    struct jstr *x = jv_str(affix);
    if (x->len > hi - lo)
        return false;
    return memcmp(s->data + (end ? hi - x->len : lo), x->data, x->len) == 0;
}

static int str_predicate(struct jctx *c, int id, struct jv self, bool *out)
{
    struct cpiter it = {(const unsigned char *)STR_DATA(self), STR_LEN(self), 0};
    uint32_t cp;
    size_t at, len;
    bool any = false, ok = true;
    if (id == M_ISLOWER || id == M_ISUPPER)
        return case_test(c, self, id == M_ISLOWER, out);
    if (id == M_ISTITLE) {
        bool prev = false, cased = false;
        while (cp_next(&it, &cp, &at, &len)) {
            bool up = jpy_lower(cp) != cp, lo = jpy_upper(cp) != cp;
            if (up) {
                if (prev)
                    ok = false;
                prev = true;
                cased = true;
            } else if (lo) {
                if (!prev)
                    ok = false;
                prev = true;
                cased = true;
            } else {
                prev = false;
            }
        }
        *out = ok && cased;
        return 0;
    }
    while (cp_next(&it, &cp, &at, &len)) {
        any = true;
        bool digit = cp >= '0' && cp <= '9';
        switch (id) {
        case M_ISDIGIT:
        case M_ISNUMERIC:
        case M_ISDECIMAL: ok = ok && digit; break;
        case M_ISALPHA: ok = ok && jpy_isalpha(cp); break;
        case M_ISALNUM: ok = ok && (digit || jpy_isalpha(cp)); break;
        case M_ISSPACE: ok = ok && jpy_isspace(cp); break;
        case M_ISASCII: ok = ok && cp < 0x80; break;
        default: break;
        }
    }
    *out = id == M_ISASCII ? ok : any && ok;
    return 0;
}

static int make_view(struct jctx *c, struct jdict *d, int which, struct jv *out)
{
    static const char *const names[] = {"dict_items", "dict_keys", "dict_values"};
    struct jlist *l = jlist_new(c, d->n, JL_VIEW);
    if (!l)
        return -1;
    l->gname = names[which];
    for (size_t i = 0; i < d->n; i++) {
        if (which == 0) {
            struct jlist *t = jlist_new(c, 2, JL_TUPLE);
            if (!t) {
                jv_decref(c, jv_obj(JV_LIST, l));
                return -1;
            }
            t->items[t->n++] = jv_ref(d->e[i].k);
            t->items[t->n++] = jv_ref(d->e[i].v);
            t->h.depth = d->h.depth;
            l->items[l->n++] = jv_obj(JV_LIST, t);
        } else {
            l->items[l->n++] = jv_ref(which == 1 ? d->e[i].k : d->e[i].v);
        }
    }
    l->h.depth = (uint16_t)(d->h.depth + 1);
    *out = jv_obj(JV_LIST, l);
    return jstep_out(c, d->n, out);
}

static int str_method(struct jctx *c, int id, struct jv self, const struct jargs *a,
                      struct jv *out)
{
    struct jstr *s = jv_str(self);
    uint8_t fl = self.flags & JVF_MARKUP;
    struct jv x = jv_none(), y = jv_none(); /* set by str_arg before use */
    if (a->nkw && id != M_FORMAT && id != M_SPLIT && id != M_RSPLIT)
        return jfail(c, SHOAL_ERR_INVALID, "str method takes no keyword arguments");
    switch (id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        if (a->npos > 1)
            return jfail(c, SHOAL_ERR_INVALID, "strip expected at most 1 argument");
        return strip(c, self, a->npos ? a->pos[0] : jv_make(JV_EMPTY), id != M_RSTRIP,
                     id != M_LSTRIP, out);
    case M_SPLIT:
    case M_RSPLIT: {
        struct jv p[2];
        static const char *const names[] = {"sep", "maxsplit"};
        if (bind(c, id == M_SPLIT ? "split" : "rsplit", names, 2, a, p) != 0)
            return -1;
        return split(c, self, p[0], p[1], id == M_RSPLIT, out);
    }
    case M_SPLITLINES:
        return splitlines(c, self, a->npos && jv_truthy(a->pos[0]), out);
    case M_STARTSWITH:
    case M_ENDSWITH: {
        if (a->npos < 1)
            return jfail(c, SHOAL_ERR_INVALID, "startswith() takes at least 1 argument");
        size_t lo, hi;
        str_range(s, a, 1, &lo, &hi);
        struct jv pre = a->pos[0];
        bool end = id == M_ENDSWITH, res = false;
        if (pre.type == JV_LIST && jv_list(pre)->h.kind == JL_TUPLE) {
            for (size_t i = 0; i < jv_list(pre)->n && !res; i++) {
                if (need_str(c, jv_list(pre)->items[i], "startswith") != 0)
                    return -1;
                res = affix_match(s, lo, hi, jv_list(pre)->items[i], end);
            }
        } else {
            if (need_str(c, pre, end ? "endswith first arg" : "startswith first arg") != 0)
                return -1;
            res = affix_match(s, lo, hi, pre, end);
        }
        *out = jv_bool(res);
        return 0;
    }
    case M_REPLACE: {
        int64_t count = -1;
        if (str_arg(c, a, 0, "replace", &x) != 0 || str_arg(c, a, 1, "replace", &y) != 0)
            return -1;
        if (a->npos > 2 && need_int(c, a->pos[2], "replace count", &count) != 0)
            return -1;
        return replace(c, self, x, y, count, fl, out);
    }
    case M_UPPER: return map_case(c, self, 1, out);
    case M_LOWER:
    case M_CASEFOLD: return map_case(c, self, 0, out);
    case M_TITLE: return map_case(c, self, 2, out);
    case M_CAPITALIZE: return map_case(c, self, 3, out);
    case M_SWAPCASE: return map_case(c, self, 4, out);
    case M_FIND:
    case M_RFIND:
    case M_INDEX:
    case M_RINDEX:
    case M_COUNT: {
        if (str_arg(c, a, 0, "find", &x) != 0)
            return -1;
        size_t lo, hi;
        str_range(s, a, 1, &lo, &hi);
        struct jstr *nd = jv_str(x);
        int64_t found = -1, count = 0;
        if (nd->len <= hi - lo) {
            if (id == M_RFIND || id == M_RINDEX) {
                for (size_t k = hi - nd->len + 1; k-- > lo;)
                    if (memcmp(s->data + k, nd->data, nd->len) == 0) {
                        found = (int64_t)k;
                        break;
                    }
            } else if (id == M_COUNT) {
                if (nd->len == 0) {
                    count = (int64_t)(cp_index(s, hi) - cp_index(s, lo)) + 1;
                } else {
                    for (size_t k = lo; k + nd->len <= hi;) {
                        const char *h = memmem(s->data + k, hi - k, nd->data, nd->len);
                        if (!h)
                            break;
                        count++;
                        k = (size_t)(h - s->data) + nd->len;
                    }
                }
            } else {
                const char *h = nd->len ? memmem(s->data + lo, hi - lo, nd->data, nd->len)
                                        : s->data + lo;
                if (h)
                    found = (int64_t)(h - s->data);
            }
        }
        if (id == M_COUNT) {
            *out = jv_int(count);
            return 0;
        }
        if (found < 0 && (id == M_INDEX || id == M_RINDEX))
            return jfail(c, SHOAL_ERR_INVALID, "substring not found");
        *out = jv_int(found < 0 ? -1 : (int64_t)cp_index(s, (size_t)found));
        return 0;
    }
    case M_JOIN: {
        if (a->npos != 1)
            return jfail(c, SHOAL_ERR_INVALID, "join() takes exactly one argument");
        struct jlist *items;
        if (jiter_items(c, a->pos[0], &items) != 0)
            return -1;
        struct jsb b;
        jsb_init(&b, c);
        int r = 0;
        for (size_t i = 0; i < items->n && r == 0; i++) {
            struct jv it = items->items[i];
            if (it.type != JV_STR) {
                r = jfail(c, SHOAL_ERR_INVALID, "sequence item %zu: expected str instance, %s found",
                          i, jv_type_name(it));
                break;
            }
            if (i)
                r = jsb_add(&b, s->data, s->len);
            if (r == 0)
                r = jsb_add(&b, STR_DATA(it), STR_LEN(it));
        }
        jv_decref(c, jv_obj(JV_LIST, items));
        if (r != 0) {
            jsb_fini(&b);
            return -1;
        }
        return str_from_sb(&b, fl, out);
    }
    case M_FORMAT:
        return jformat_braces(c, self, a, out);
    case M_CENTER:
    case M_LJUST:
    case M_RJUST: {
        int64_t w = 0;
        if (a->npos < 1 || need_int(c, a->pos[0], "width", &w) != 0)
            return c->failed ? -1 : jfail(c, SHOAL_ERR_INVALID, "missing width");
        const char *fill = " ";
        size_t fn = 1;
        if (a->npos > 1) {
            if (need_str(c, a->pos[1], "fillchar") != 0 || jstr_nchars(jv_str(a->pos[1])) != 1)
                return c->failed ? -1 : jfail(c, SHOAL_ERR_INVALID,
                                              "The fill character must be exactly one character long");
            fill = STR_DATA(a->pos[1]);
            fn = STR_LEN(a->pos[1]);
        }
        return pad(c, self, w, fill, fn, id == M_CENTER ? 0 : id == M_LJUST ? -1 : 1, out);
    }
    case M_ZFILL: {
        int64_t w = 0;
        if (a->npos < 1 || need_int(c, a->pos[0], "width", &w) != 0)
            return c->failed ? -1 : jfail(c, SHOAL_ERR_INVALID, "missing width");
        size_t len = jstr_nchars(s);
        if (w <= (int64_t)len) {
            *out = jv_ref(self);
            return 0;
        }
        if ((uint64_t)w > c->lim.max_output)
            return jfail(c, SHOAL_ERR_TOO_BIG, "string longer than %zu bytes", c->lim.max_output);
        struct jsb b;
        jsb_init(&b, c);
        size_t skip = s->len && (s->data[0] == '+' || s->data[0] == '-') ? 1 : 0;
        int r = jsb_add(&b, s->data, skip);
        for (int64_t i = (int64_t)len; i < w && r == 0; i++)
            r = jsb_addc(&b, '0');
        if (r == 0)
            r = jsb_add(&b, s->data + skip, s->len - skip);
        if (r != 0) {
            jsb_fini(&b);
            return -1;
        }
        return str_from_sb(&b, fl, out);
    }
    case M_ISDIGIT:
    case M_ISALPHA:
    case M_ISALNUM:
    case M_ISSPACE:
    case M_ISLOWER:
    case M_ISUPPER:
    case M_ISNUMERIC:
    case M_ISDECIMAL:
    case M_ISTITLE:
    case M_ISASCII: {
        bool res;
        if (str_predicate(c, id, self, &res) != 0)
            return -1;
        *out = jv_bool(res);
        return 0;
    }
    case M_PARTITION:
    case M_RPARTITION: {
        if (str_arg(c, a, 0, "partition", &x) != 0)
            return -1;
        struct jstr *sep = jv_str(x);
        if (sep->len == 0)
            return jfail(c, SHOAL_ERR_INVALID, "empty separator");
        const char *h = NULL;
        if (id == M_PARTITION) {
            h = memmem(s->data, s->len, sep->data, sep->len);
        } else if (s->len >= sep->len) {
            for (size_t k = s->len - sep->len + 1; k-- > 0;)
                if (memcmp(s->data + k, sep->data, sep->len) == 0) {
                    h = s->data + k;
                    break;
                }
        }
        struct jlist *t = jlist_new(c, 3, JL_TUPLE);
        if (!t)
            return -1;
        struct jv tv = jv_obj(JV_LIST, t), parts[3];
        int r;
        if (!h) {
            bool right = id == M_RPARTITION;
            parts[0] = right ? jstr_empty() : jv_ref(self);
            parts[1] = jstr_empty();
            parts[2] = right ? jv_ref(self) : jstr_empty();
            r = 0;
        } else {
            size_t at = (size_t)(h - s->data);
            r = new_str(c, s->data, at, fl, &parts[0]);
            parts[1] = jv_ref(x);
            if (r == 0)
                r = new_str(c, s->data + at + sep->len, s->len - at - sep->len, fl, &parts[2]);
            else
                parts[2] = jv_make(JV_EMPTY);
            if (r != 0) {
                jv_decref(c, parts[0]);
                jv_decref(c, parts[1]);
                jv_decref(c, tv);
                return -1;
            }
        }
        for (int k = 0; k < 3; k++)
            t->items[t->n++] = parts[k];
        *out = tv;
        return r;
    }
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        if (str_arg(c, a, 0, "removeprefix", &x) != 0)
            return -1;
        bool end = id == M_REMOVESUFFIX;
        if (STR_LEN(x) && affix_match(s, 0, s->len, x, end)) {
            size_t k = STR_LEN(x);
            return new_str(c, s->data + (end ? 0 : k), s->len - k, fl, out);
        }
        *out = jv_ref(self);
        return 0;
    }
    default:
        break;
    }
    return jfail(c, SHOAL_ERR_INTERNAL, "unknown str method");
}

int jmethod_call(struct jctx *c, int id, struct jv self, const struct jargs *a, struct jv *out)
{
    *out = jv_make(JV_EMPTY);
    if (jstep(c, 1) != 0)
        return -1;
    if (self.type == JV_STR)
        return str_method(c, id, self, a, out);
    switch (id) {
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES:
        if (a->npos || a->nkw)
            return jfail(c, SHOAL_ERR_INVALID, "dict view methods take no arguments");
        return make_view(c, jv_dict(self), id == M_ITEMS ? 0 : id == M_KEYS ? 1 : 2, out);
    case M_GET: {
        if (a->npos < 1 || a->npos > 2 || a->nkw)
            return jfail(c, SHOAL_ERR_INVALID, "get expected 1 or 2 arguments");
        struct jv v;
        if (jdict_get(jv_dict(self), a->pos[0], &v))
            *out = jv_ref(v);
        else
            *out = a->npos > 1 ? jv_ref(a->pos[1]) : jv_none();
        return 0;
    }
    case M_COPY:
        if (self.type == JV_DICT) {
            struct jdict *d = jv_dict(self), *r = jdict_new(c, d->n);
            if (!r)
                return -1;
            for (size_t i = 0; i < d->n; i++)
                if (jdict_set(c, r, jv_ref(d->e[i].k), jv_ref(d->e[i].v)) != 0) {
                    jv_decref(c, jv_obj(JV_DICT, r));
                    return -1;
                }
            *out = jv_obj(JV_DICT, r);
            return 0;
        } else {
            struct jlist *l = jv_list(self), *r = jlist_new(c, l->n, JL_LIST);
            if (!r)
                return -1;
            for (size_t i = 0; i < l->n; i++)
                r->items[r->n++] = jv_ref(l->items[i]);
            r->h.depth = l->h.depth;
            *out = jv_obj(JV_LIST, r);
            return 0;
        }
    case M_LCOUNT:
    case M_LINDEX: {
        if (a->npos < 1)
            return jfail(c, SHOAL_ERR_INVALID, "expected an argument");
        struct jlist *l = jv_list(self);
        int64_t count = 0, found = -1;
        for (size_t i = 0; i < l->n; i++) {
            bool eq;
            if (jv_equal(c, l->items[i], a->pos[0], &eq) != 0)
                return -1;
            if (eq) {
                count++;
                if (found < 0)
                    found = (int64_t)i;
            }
        }
        if (id == M_LCOUNT) {
            *out = jv_int(count);
            return 0;
        }
        if (found < 0)
            return jfail(c, SHOAL_ERR_INVALID, "value is not in list");
        *out = jv_int(found);
        return 0;
    }
    case M_CYCLE: {
        struct jloop *l = (struct jloop *)self.u.o;
        if (a->npos == 0)
            return jfail(c, SHOAL_ERR_INVALID, "no items for cycling given");
        *out = jv_ref(a->pos[l->index0 % a->npos]);
        return 0;
    }
    case M_CHANGED: {
        struct jloop *l = (struct jloop *)self.u.o;
        struct jlist *t = jlist_new(c, a->npos, JL_TUPLE);
        if (!t)
            return -1;
        for (size_t i = 0; i < a->npos; i++)
            t->items[t->n++] = jv_ref(a->pos[i]);
        struct jv tv = jv_obj(JV_LIST, t);
        bool eq = false;
        if (l->changed_last.type != JV_EMPTY && jv_equal(c, tv, l->changed_last, &eq) != 0) {
            jv_decref(c, tv);
            return -1;
        }
        if (!eq) {
            jv_decref(c, l->changed_last);
            l->changed_last = tv;
        } else {
            jv_decref(c, tv);
        }
        *out = jv_bool(!eq);
        return 0;
    }
    case M_NEXT: {
        struct jcycler *cy = (struct jcycler *)self.u.o;
        *out = jv_ref(cy->items->items[cy->pos]);
        cy->pos = (cy->pos + 1) % cy->items->n;
        return 0;
    }
    case M_RESET: {
        struct jcycler *cy = (struct jcycler *)self.u.o;
        cy->pos = 0;
        *out = jv_none();
        return 0;
    }
    default:
        break;
    }
    return jfail(c, SHOAL_ERR_INTERNAL, "unknown method");
}

/* ---- str.format ---- */

static int format_spec(struct jctx *c, struct jv v, const char *spec, size_t n, struct jsb *b)
{
    /* [[fill]align][sign][#][0][width][,|_][.precision][type] */
    char fill[4] = " ";
    size_t filln = 1, i = 0;
    char align = 0, sign = 0, type = 0;
    bool alt = false, zero = false;
    char group = 0;
    int64_t width = -1, prec = -1;
    if (n >= 2) {
        size_t len;
        jutf8_dec((const unsigned char *)spec, n, &len);
        if (len < n && strchr("<>^=", spec[len])) {
            memcpy(fill, spec, len);
            filln = len;
            align = spec[len];
            i = len + 1;
        }
    }
    if (!align && i < n && strchr("<>^=", spec[i]))
        align = spec[i++];
    if (i < n && strchr("+- ", spec[i]))
        sign = spec[i++];
    if (i < n && spec[i] == '#') {
        alt = true;
        i++;
    }
    if (i < n && spec[i] == '0') {
        zero = true;
        i++;
    }
    while (i < n && spec[i] >= '0' && spec[i] <= '9' && width < 100000)
        width = (width < 0 ? 0 : width * 10) + (spec[i++] - '0');
    if (i < n && (spec[i] == ',' || spec[i] == '_'))
        group = spec[i++];
    if (i < n && spec[i] == '.') {
        prec = 0;
        i++;
        while (i < n && spec[i] >= '0' && spec[i] <= '9' && prec < 100000)
            prec = prec * 10 + (spec[i++] - '0');
    }
    if (i < n)
        type = spec[i++];
    if (i != n)
        return jfail(c, SHOAL_ERR_INVALID, "Invalid format specifier");
    if (width > 4096 || prec > 400)
        return jfail(c, SHOAL_ERR_TOO_BIG, "format width or precision too large");
    /* the body */
    struct jsb body;
    jsb_init(&body, c);
    int r = 0;
    bool numeric = jv_is_num(v) && type != 's';
    if (!numeric) {
        if (type && type != 's')
            r = jfail(c, SHOAL_ERR_INVALID, "Unknown format code '%c' for object of type '%s'",
                      type, jv_type_name(v));
        else
            r = jv_write_str(c, v, &body);
        if (r == 0 && prec >= 0) {
            const char *s = body.buf ? body.buf + offsetof(struct jstr, data) : "";
            struct cpiter it = {(const unsigned char *)s, body.len, 0};
            uint32_t cp;
            size_t at, len;
            int64_t k = 0;
            while (cp_next(&it, &cp, &at, &len))
                if (k++ == prec) {
                    body.len = at;
                    break;
                }
        }
        if (!align)
            align = '<';
    } else {
        char cfmt[32], num[512];
        char fl[8] = "";
        size_t o = 0;
        if (sign == '+' || sign == ' ')
            fl[o++] = sign;
        if (alt)
            fl[o++] = '#';
        fl[o] = 0;
        bool is_float = v.type == JV_FLOAT;
        if (!type)
            type = is_float ? (prec >= 0 ? 'g' : 0) : 'd';
        int w = 0;
        if (type == 0) {
            jfloat_repr(v.u.f, num);
            w = (int)strlen(num);
            if (sign == '+' && v.u.f >= 0) {
                memmove(num + 1, num, (size_t)w + 1);
                num[0] = '+';
                w++;
            }
        } else if (strchr("dxXob", type)) {
            if (is_float) {
                r = jfail(c, SHOAL_ERR_INVALID, "Unknown format code '%c' for object of type 'float'",
                          type);
            } else {
                int64_t x = v.type == JV_BOOL ? v.u.b : v.u.i;
                if (type == 'b') {
                    char bits[80];
                    int k = 0;
                    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
                    do {
                        bits[k++] = (char)('0' + (u & 1));
                        u >>= 1;
                    } while (u);
                    o = 0;
                    if (x < 0)
                        num[o++] = '-';
                    else if (sign == '+' || sign == ' ')
                        num[o++] = sign;
                    if (alt) {
                        num[o++] = '0';
                        num[o++] = 'b';
                    }
                    while (k)
                        num[o++] = bits[--k];
                    num[o] = 0;
                    w = (int)o;
                } else {
                    char cv = type == 'o' ? 'o' : type;
                    snprintf(cfmt, sizeof(cfmt), "%%%sll%c", fl, cv);
                    if (x < 0 && cv != 'd') {
                        snprintf(cfmt, sizeof(cfmt), "-%%%sll%c", fl, cv);
                        w = snprintf(num, sizeof(num), cfmt, (unsigned long long)(-(x + 1)) + 1ull);
                    } else {
                        w = snprintf(num, sizeof(num), cfmt, (long long)x);
                    }
                    if (alt && type == 'o' && w > 0) { /* Python writes 0o17 */
                        char *z = strchr(num, '0');
                        if (z) {
                            memmove(z + 2, z + 1, strlen(z + 1) + 1);
                            z[1] = 'o';
                            w++;
                        }
                    }
                }
            }
        } else if (strchr("eEfFgG%", type)) {
            double d = v.type == JV_FLOAT ? v.u.f : v.type == JV_BOOL ? v.u.b : (double)v.u.i;
            char cv = type == '%' ? 'f' : type;
            if (type == '%')
                d *= 100;
            snprintf(cfmt, sizeof(cfmt), "%%%s.%" PRId64 "%c", fl, prec >= 0 ? prec : 6, cv);
            w = snprintf(num, sizeof(num), cfmt, d);
            if (type == '%' && w > 0 && (size_t)w + 1 < sizeof(num)) {
                num[w++] = '%';
                num[w] = 0;
            }
        } else {
            r = jfail(c, SHOAL_ERR_INVALID, "Unknown format code '%c' for object of type '%s'",
                      type, jv_type_name(v));
        }
        if (r == 0 && (w < 0 || (size_t)w >= sizeof(num)))
            r = jfail(c, SHOAL_ERR_TOO_BIG, "formatted number too long");
        if (r == 0 && group && strchr("dfFeEgG%", type ? type : 'g')) {
            /* thousands separators in the integer digits */
            char *dg = num;
            while (*dg && (*dg < '0' || *dg > '9'))
                dg++;
            size_t nd = 0;
            while (dg[nd] >= '0' && dg[nd] <= '9')
                nd++;
            size_t extra = nd > 3 ? (nd - 1) / 3 : 0;
            if (extra && (size_t)w + extra < sizeof(num)) {
                size_t tail = strlen(dg + nd);
                memmove(dg + nd + extra, dg + nd, tail + 1);
                size_t src = nd, dst = nd + extra, k = 0;
                while (src > 0) {
                    dg[--dst] = dg[--src];
                    if (++k % 3 == 0 && src > 0)
                        dg[--dst] = group;
                }
                w += (int)extra;
            }
        }
        if (r == 0 && zero && !align) {
            /* zero padding goes after the sign */
            size_t sl = (num[0] == '-' || num[0] == '+' || num[0] == ' ') ? 1 : 0;
            r = jsb_add(&body, num, sl);
            for (int64_t k = w; r == 0 && k < width; k++)
                r = jsb_addc(&body, '0');
            if (r == 0)
                r = jsb_add(&body, num + sl, (size_t)w - sl);
            width = -1;
        } else if (r == 0) {
            r = jsb_add(&body, num, (size_t)w);
        }
        if (!align)
            align = '>';
    }
    if (r == 0) {
        const char *s = body.buf ? body.buf + offsetof(struct jstr, data) : "";
        struct cpiter it = {(const unsigned char *)s, body.len, 0};
        uint32_t cp;
        size_t at, len;
        int64_t nc = 0;
        while (cp_next(&it, &cp, &at, &len))
            nc++;
        int64_t padn = width > nc ? width - nc : 0, left = 0;
        if (align == '>' || align == '=')
            left = padn;
        else if (align == '^')
            left = padn / 2;
        for (int64_t k = 0; k < left && r == 0; k++)
            r = jsb_add(b, fill, filln);
        if (r == 0)
            r = jsb_add(b, s, body.len);
        for (int64_t k = left; k < padn && r == 0; k++)
            r = jsb_add(b, fill, filln);
    }
    jsb_fini(&body);
    return r;
}

int jformat_braces(struct jctx *c, struct jv fmt, const struct jargs *a, struct jv *out)
{
    const char *f = STR_DATA(fmt);
    size_t n = STR_LEN(fmt), autoidx = 0;
    bool manual = false, automatic = false;
    struct jsb b;
    jsb_init(&b, c);
    for (size_t i = 0; i < n; i++) {
        if (f[i] == '}') {
            if (i + 1 < n && f[i + 1] == '}') {
                if (jsb_addc(&b, '}') != 0)
                    goto fail;
                i++;
                continue;
            }
            jfail(c, SHOAL_ERR_INVALID, "Single '}' encountered in format string");
            goto fail;
        }
        if (f[i] != '{') {
            if (jsb_addc(&b, f[i]) != 0)
                goto fail;
            continue;
        }
        if (i + 1 < n && f[i + 1] == '{') {
            if (jsb_addc(&b, '{') != 0)
                goto fail;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && f[j] != '}')
            j++;
        if (j >= n) {
            jfail(c, SHOAL_ERR_INVALID, "expected '}' before end of string");
            goto fail;
        }
        /* field [.attr|[idx]]* [!conv] [:spec] */
        const char *fld = f + i + 1;
        size_t fl = j - i - 1, name_end = 0;
        while (name_end < fl && fld[name_end] != '.' && fld[name_end] != '[' &&
               fld[name_end] != '!' && fld[name_end] != ':')
            name_end++;
        struct jv v = jv_make(JV_EMPTY);
        if (name_end == 0) {
            if (manual) {
                jfail(c, SHOAL_ERR_INVALID,
                      "cannot switch from manual field specification to automatic field numbering");
                goto fail;
            }
            automatic = true;
            if (autoidx >= a->npos) {
                jfail(c, SHOAL_ERR_INVALID, "Replacement index %zu out of range", autoidx);
                goto fail;
            }
            v = jv_ref(a->pos[autoidx++]);
        } else if (fld[0] >= '0' && fld[0] <= '9') {
            int64_t k = 0;
            if (automatic) {
                jfail(c, SHOAL_ERR_INVALID,
                      "cannot switch from automatic field numbering to manual field specification");
                goto fail;
            }
            manual = true;
            if (shoal_parse_i64(fld, name_end, 0, INT32_MAX, &k) != SHOAL_OK ||
                (size_t)k >= a->npos) {
                jfail(c, SHOAL_ERR_INVALID, "Replacement index %.*s out of range", (int)name_end,
                      fld);
                goto fail;
            }
            v = jv_ref(a->pos[k]);
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (strlen(a->kwnames[k]) == name_end && !memcmp(a->kwnames[k], fld, name_end))
                    v = jv_ref(a->kw[k]);
            if (v.type == JV_EMPTY) {
                jfail(c, SHOAL_ERR_INVALID, "KeyError: '%.*s'", (int)name_end, fld);
                goto fail;
            }
        }
        size_t k = name_end;
        while (k < fl && (fld[k] == '.' || fld[k] == '[')) {
            size_t e = k + 1;
            char close = fld[k] == '[' ? ']' : 0;
            while (e < fl && (close ? fld[e] != ']' : (fld[e] != '.' && fld[e] != '[' &&
                                                       fld[e] != '!' && fld[e] != ':')))
                e++;
            struct jv next, key;
            int r;
            bool digits = e > k + 1;
            for (size_t q = k + 1; q < e; q++)
                if (fld[q] < '0' || fld[q] > '9')
                    digits = false;
            if (close && digits) {
                int64_t idx = 0;
                shoal_parse_i64(fld + k + 1, e - k - 1, 0, INT64_MAX, &idx);
                r = jget_item(c, v, jv_int(idx), &next);
            } else if (close) {
                r = jstr_new(c, fld + k + 1, e - k - 1, &key);
                if (r == 0) {
                    r = jget_item(c, v, key, &next);
                    jv_decref(c, key);
                }
            } else {
                r = jget_attr(c, v, fld + k + 1, e - k - 1, NULL, &next);
            }
            jv_decref(c, v);
            if (r != 0)
                goto fail;
            v = next;
            k = close ? e + 1 : e;
        }
        char conv = 0;
        if (k + 1 < fl && fld[k] == '!') {
            conv = fld[k + 1];
            k += 2;
        }
        const char *spec = "";
        size_t sn = 0;
        if (k < fl && fld[k] == ':') {
            spec = fld + k + 1;
            sn = fl - k - 1;
        } else if (k != fl) {
            jv_decref(c, v);
            jfail(c, SHOAL_ERR_INVALID, "expected ':' after conversion specifier");
            goto fail;
        }
        if (conv == 'r' || conv == 'a' || conv == 's') {
            struct jsb t;
            jsb_init(&t, c);
            int r = conv == 's' ? jv_write_str(c, v, &t) : jv_write_repr(c, v, &t);
            jv_decref(c, v);
            if (r != 0 || jsb_finish(&t, &v) != 0) {
                jsb_fini(&t);
                goto fail;
            }
        }
        int r = format_spec(c, v, spec, sn, &b);
        jv_decref(c, v);
        if (r != 0)
            goto fail;
        i = j;
    }
    return str_from_sb(&b, fmt.flags & JVF_MARKUP, out);
fail:
    jsb_fini(&b);
    return -1;
}

/* ---- strftime (C locale, as the reference renders) ---- */

static const char *const wday_names[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char *const mon_names[] = {"January", "February", "March",     "April",
                                        "May",     "June",     "July",      "August",
                                        "September", "October", "November", "December"};

static int iso_week(const struct tm *tm, int *year)
{
    int wday = (tm->tm_wday + 6) % 7; /* Monday = 0 */
    int yday = tm->tm_yday, y = tm->tm_year + 1900;
    int week = (yday - wday + 10) / 7;
    if (week < 1) {
        y--;
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int pyday = yday + 365 + leap;
        week = (pyday - wday + 10) / 7;
    } else {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (week == 53 && (yday - wday + 3) >= 365 + leap) {
            week = 1;
            y++;
        }
    }
    *year = y;
    return week;
}

static int strftime_into(struct jctx *c, const char *f, size_t n, const struct tm *tm,
                         struct jsb *b)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (f[i] != '%' || i + 1 >= n) {
            r = jsb_addc(b, f[i]);
            continue;
        }
        char pad = 0; /* glibc flags: '-' no padding, '_' spaces, '0' zeros */
        size_t j = i + 1;
        if (f[j] == '-' || f[j] == '_' || f[j] == '0') {
            pad = f[j];
            j++;
            if (j >= n) {
                r = jsb_add(b, f + i, n - i);
                break;
            }
        }
        char d = f[j];
        int val = -1, width = 2;
        char defpad = '0';
        const char *s = NULL;
        char buf[64];
        int y;
        switch (d) {
        case 'a': snprintf(buf, sizeof(buf), "%.3s", wday_names[tm->tm_wday]); s = buf; break;
        case 'A': s = wday_names[tm->tm_wday]; break;
        case 'b':
        case 'h': snprintf(buf, sizeof(buf), "%.3s", mon_names[tm->tm_mon]); s = buf; break;
        case 'B': s = mon_names[tm->tm_mon]; break;
        case 'c':
            snprintf(buf, sizeof(buf), "%.3s %.3s %2d %02d:%02d:%02d %d", wday_names[tm->tm_wday],
                     mon_names[tm->tm_mon], tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
                     tm->tm_year + 1900);
            s = buf;
            break;
        case 'C': val = (tm->tm_year + 1900) / 100; break;
        case 'd': val = tm->tm_mday; break;
        case 'e': val = tm->tm_mday; defpad = ' '; break;
        case 'D':
        case 'x':
            snprintf(buf, sizeof(buf), "%02d/%02d/%02d", tm->tm_mon + 1, tm->tm_mday,
                     tm->tm_year % 100);
            s = buf;
            break;
        case 'F':
            snprintf(buf, sizeof(buf), "%d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                     tm->tm_mday);
            s = buf;
            break;
        case 'f': s = "000000"; break;
        case 'G': iso_week(tm, &y); val = y; width = 1; break;
        case 'g': iso_week(tm, &y); val = y % 100; break;
        case 'H': val = tm->tm_hour; break;
        case 'I': val = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12; break;
        case 'j': val = tm->tm_yday + 1; width = 3; break;
        case 'k': val = tm->tm_hour; defpad = ' '; break;
        case 'l': val = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12; defpad = ' '; break;
        case 'm': val = tm->tm_mon + 1; break;
        case 'M': val = tm->tm_min; break;
        case 'n': s = "\n"; break;
        case 't': s = "\t"; break;
        case 'p': s = tm->tm_hour < 12 ? "AM" : "PM"; break;
        case 'P': s = tm->tm_hour < 12 ? "am" : "pm"; break;
        case 'r':
            snprintf(buf, sizeof(buf), "%02d:%02d:%02d %s", tm->tm_hour % 12 ? tm->tm_hour % 12 : 12,
                     tm->tm_min, tm->tm_sec, tm->tm_hour < 12 ? "AM" : "PM");
            s = buf;
            break;
        case 'R':
            snprintf(buf, sizeof(buf), "%02d:%02d", tm->tm_hour, tm->tm_min);
            s = buf;
            break;
        case 'S': val = tm->tm_sec; break;
        case 's': {
            struct tm copy = *tm;
            snprintf(buf, sizeof(buf), "%lld", (long long)(c->utc ? timegm(&copy) : mktime(&copy)));
            s = buf;
            break;
        }
        case 'T':
        case 'X':
            snprintf(buf, sizeof(buf), "%02d:%02d:%02d", tm->tm_hour, tm->tm_min, tm->tm_sec);
            s = buf;
            break;
        case 'u': val = tm->tm_wday ? tm->tm_wday : 7; width = 1; break;
        case 'w': val = tm->tm_wday; width = 1; break;
        case 'U': val = (tm->tm_yday + 7 - tm->tm_wday) / 7; break;
        case 'W': val = (tm->tm_yday + 7 - (tm->tm_wday + 6) % 7) / 7; break;
        case 'V': val = iso_week(tm, &y); break;
        case 'y': val = tm->tm_year % 100; break;
        case 'Y': val = tm->tm_year + 1900; width = 1; break;
        case 'z':
        case 'Z': s = ""; break; /* the reference's datetime is naive */
        case '%': s = "%"; break;
        default:
            s = NULL;
            break;
        }
        if (val >= 0) {
            char p = pad ? pad : defpad;
            if (p == '-')
                snprintf(buf, sizeof(buf), "%d", val);
            else if (p == '_' || p == ' ')
                snprintf(buf, sizeof(buf), "%*d", width, val);
            else
                snprintf(buf, sizeof(buf), "%0*d", width, val);
            r = jsb_adds(b, buf);
        } else if (s) {
            r = jsb_adds(b, s);
        } else {
            r = jsb_add(b, f + i, j + 1 - i); /* unknown: kept as written */
        }
        i = j;
    }
    return r;
}

/* ---- Global functions ---- */

static const char *const func_names[JF_COUNT_] = {
    [JF_RANGE] = "range",       [JF_DICT] = "dict",     [JF_NAMESPACE] = "namespace",
    [JF_CYCLER] = "cycler",     [JF_JOINER] = "joiner", [JF_RAISE] = "raise_exception",
    [JF_STRFTIME] = "strftime_now",
};

int jfunc_lookup(const char *name)
{
    for (int i = 0; i < JF_COUNT_; i++)
        if (!strcmp(func_names[i], name))
            return i;
    return -1;
}

const char *jfunc_name(int id) { return id >= 0 && id < JF_COUNT_ ? func_names[id] : "?"; }

/* dict(mapping_or_pairs, **kw) into a new dict. */
static int build_dict(struct jctx *c, const struct jargs *a, const char *what, struct jdict **out)
{
    if (a->npos > 1)
        return jfail(c, SHOAL_ERR_INVALID, "%s expected at most 1 argument, got %zu", what,
                     a->npos);
    struct jdict *d = jdict_new(c, a->nkw);
    if (!d)
        return -1;
    if (a->npos == 1) {
        struct jv src = a->pos[0];
        if (src.type == JV_DICT || src.type == JV_NS) {
            struct jdict *s = jv_dict(src);
            for (size_t i = 0; i < s->n; i++)
                if (jdict_set(c, d, jv_ref(s->e[i].k), jv_ref(s->e[i].v)) != 0)
                    goto fail;
        } else {
            struct jlist *items;
            if (jiter_items(c, src, &items) != 0)
                goto fail;
            for (size_t i = 0; i < items->n; i++) {
                struct jlist *pairs;
                if (jiter_items(c, items->items[i], &pairs) != 0) {
                    jv_decref(c, jv_obj(JV_LIST, items));
                    goto fail;
                }
                int r = pairs->n == 2 ? jdict_set(c, d, jv_ref(pairs->items[0]),
                                                  jv_ref(pairs->items[1]))
                                      : jfail(c, SHOAL_ERR_INVALID,
                                              "dictionary update sequence element #%zu has length "
                                              "%zu; 2 is required", i, pairs->n);
                jv_decref(c, jv_obj(JV_LIST, pairs));
                if (r != 0) {
                    jv_decref(c, jv_obj(JV_LIST, items));
                    goto fail;
                }
            }
            jv_decref(c, jv_obj(JV_LIST, items));
        }
    }
    for (size_t k = 0; k < a->nkw; k++) {
        struct jv key;
        if (jstr_new(c, a->kwnames[k], strlen(a->kwnames[k]), &key) != 0 ||
            jdict_set(c, d, key, jv_ref(a->kw[k])) != 0)
            goto fail;
    }
    *out = d;
    return 0;
fail:
    jv_decref(c, jv_obj(JV_DICT, d));
    return -1;
}

int jfunc_call(struct jctx *c, int id, const struct jargs *a, struct jv *out)
{
    *out = jv_make(JV_EMPTY);
    if (jstep(c, 1) != 0)
        return -1;
    switch (id) {
    case JF_RANGE: {
        if (a->nkw || a->npos < 1 || a->npos > 3)
            return jfail(c, SHOAL_ERR_INVALID, "range expected 1 to 3 integer arguments");
        int64_t v[3] = {0, 0, 1};
        for (size_t i = 0; i < a->npos; i++)
            if (need_int(c, a->pos[i], "range", &v[i]) != 0)
                return -1;
        int64_t start = a->npos == 1 ? 0 : v[0], stop = a->npos == 1 ? v[0] : v[1];
        int64_t step = a->npos == 3 ? v[2] : 1;
        if (step == 0)
            return jfail(c, SHOAL_ERR_INVALID, "range() arg 3 must not be zero");
        int64_t len = 0;
        if (step > 0 && stop > start)
            len = (int64_t)(((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step) + 1;
        else if (step < 0 && start > stop)
            len = (int64_t)(((uint64_t)start - (uint64_t)stop - 1) / ((uint64_t)0 - (uint64_t)step)) + 1;
        if (len > JINJA_MAX_RANGE)
            return jfail(c, SHOAL_ERR_TOO_BIG,
                         "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
                         JINJA_MAX_RANGE);
        struct jlist *l = jlist_new(c, (size_t)len, JL_RANGE);
        if (!l)
            return -1;
        l->start = start;
        l->stop = stop;
        l->step = step;
        for (int64_t i = 0; i < len; i++)
            l->items[l->n++] = jv_int(start + i * step);
        *out = jv_obj(JV_LIST, l);
        return jstep_out(c, (uint64_t)len, out);
    }
    case JF_DICT:
    case JF_NAMESPACE: {
        struct jdict *d = NULL;
        if (build_dict(c, a, func_names[id], &d) != 0)
            return -1;
        if (id == JF_NAMESPACE) {
            d->h.type = JV_NS;
            d->h.depth = 0;
            if (jns_register(c, d) != 0) {
                jv_decref(c, jv_obj(JV_NS, d));
                return -1;
            }
            *out = jv_obj(JV_NS, d);
        } else {
            *out = jv_obj(JV_DICT, d);
        }
        return 0;
    }
    case JF_CYCLER: {
        if (a->npos == 0)
            return jfail(c, SHOAL_ERR_INVALID, "at least one item has to be provided");
        struct jcycler *cy = jalloc(c, sizeof(*cy));
        if (!cy)
            return -1;
        memset(cy, 0, sizeof(*cy));
        cy->h.rc = 1;
        cy->h.type = JV_CYCLER;
        cy->h.bytes = sizeof(*cy);
        cy->items = jlist_new(c, a->npos, JL_TUPLE);
        struct jv cv = jv_obj(JV_CYCLER, cy);
        if (!cy->items) {
            jv_decref(c, cv);
            return -1;
        }
        for (size_t i = 0; i < a->npos; i++)
            if (jlist_push(c, cy->items, jv_ref(a->pos[i])) != 0) {
                jv_decref(c, cv);
                return -1;
            }
        cy->h.depth = (uint16_t)(cy->items->h.depth + 1);
        *out = cv;
        return 0;
    }
    case JF_JOINER: {
        struct jv p[1];
        static const char *const names[] = {"sep"};
        if (bind(c, "joiner", names, 1, a, p) != 0)
            return -1;
        struct jjoiner *j = jalloc(c, sizeof(*j));
        if (!j)
            return -1;
        memset(j, 0, sizeof(*j));
        j->h.rc = 1;
        j->h.type = JV_JOINER;
        j->h.bytes = sizeof(*j);
        j->sep = jv_make(JV_EMPTY);
        struct jv jv = jv_obj(JV_JOINER, j);
        if (given(p[0])) {
            if (soft_str(c, p[0], &j->sep) != 0) {
                jv_decref(c, jv);
                return -1;
            }
        } else if (jstr_new(c, ", ", 2, &j->sep) != 0) {
            jv_decref(c, jv);
            return -1;
        }
        *out = jv;
        return 0;
    }
    case JF_RAISE: {
        struct jv msg;
        if (a->npos < 1)
            return jfail(c, SHOAL_ERR_INVALID, "raise_exception() missing 1 required argument");
        if (jv_to_str(c, a->pos[0], &msg) != 0)
            return -1;
        jfail(c, SHOAL_ERR_INVALID, "%s", STR_DATA(msg));
        jv_decref(c, msg);
        return -1;
    }
    case JF_STRFTIME: {
        if (a->npos != 1 || a->nkw || need_str(c, a->pos[0], "strftime_now") != 0)
            return c->failed ? -1 : jfail(c, SHOAL_ERR_INVALID, "strftime_now(format) takes one string");
        struct tm tm;
        time_t now = c->now;
        if (!(c->utc ? gmtime_r(&now, &tm) : localtime_r(&now, &tm)))
            return jfail(c, SHOAL_ERR_INVALID, "cannot convert the current time");
        struct jsb b;
        jsb_init(&b, c);
        if (strftime_into(c, STR_DATA(a->pos[0]), STR_LEN(a->pos[0]), &tm, &b) != 0) {
            jsb_fini(&b);
            return -1;
        }
        return str_from_sb(&b, 0, out);
    }
    default:
        break;
    }
    return jfail(c, SHOAL_ERR_INTERNAL, "unknown function");
}
