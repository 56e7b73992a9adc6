/* jinja_parse.c: recursive-descent parser from tokens to the AST, with
 * jinja2's grammar and precedence (filters bind tighter than any operator,
 * `is` tests sit at the unary level, ** is left-associative); nodes and
 * constants live in the template's arena. Invariant: recursion is bounded
 * by JINJA_MAX_PARSE_DEPTH, so no template can blow the C stack. */
#include "jinja.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Arena ---- */

struct jarena_block {
    struct jarena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(struct jarena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct jarena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 32768 ? n : 32768;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strdup(struct jarena *a, const char *p, size_t n)
{
    char *s = jarena_alloc(a, n + 1);
    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

void jarena_free(struct jarena *a)
{
    struct jarena_block *b = a->head;
    while (b) {
        struct jarena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- Parser state ---- */

struct symtab {
    const char **names;
    size_t n, cap;
    uint32_t *hash; /* open addressing: symbol id + 1, 0 = free */
    size_t hcap;
};

struct parser {
    struct jtmpl *t;
    struct jarena *a;
    struct jtok *tk;
    size_t ntk, i;
    struct shoal_diag *d;
    unsigned depth;
    unsigned loops;  /* enclosing for loops (break/continue are legal) */
    bool soft;       /* inside an if or inline if: unknown filters fail at run time */
    struct jnode *macro; /* the innermost macro being parsed, or NULL */
    bool failed;
    enum shoal_err err;
    struct symtab st;
};

static struct jtok *cur(struct parser *p) { return &p->tk[p->i]; }
static struct jtok *peek(struct parser *p, size_t k)
{
    size_t j = p->i + k;
    return &p->tk[j < p->ntk ? j : p->ntk - 1];
}
static void next(struct parser *p)
{
    if (p->i + 1 < p->ntk)
        p->i++;
}

static void *perr(struct parser *p, const struct jtok *t, enum shoal_err err, const char *fmt, ...)
    SHOAL_PRINTF(4, 5);
static void *perr(struct parser *p, const struct jtok *t, enum shoal_err err, const char *fmt, ...)
{
    if (!p->failed) {
        p->failed = true;
        p->err = err;
        va_list ap;
        va_start(ap, fmt);
        shoal_diag_setv(p->d, err, fmt, ap);
        va_end(ap);
        shoal_diag_at(p->d, NULL, t->line, t->col);
    }
    return NULL;
}

static void *oom(struct parser *p) { return perr(p, cur(p), SHOAL_ERR_NOMEM, "out of memory"); }

/* Describe a token for messages, like jinja2's "expected 'x', got 'y'". */
static void describe(const struct jtok *t, char *buf, size_t n)
{
    switch (t->type) {
    case JT_EOF: snprintf(buf, n, "end of template"); break;
    case JT_VAR_END: snprintf(buf, n, "end of print statement"); break;
    case JT_BLOCK_END: snprintf(buf, n, "end of statement block"); break;
    case JT_STRING: snprintf(buf, n, "string"); break;
    case JT_INT: snprintf(buf, n, "integer"); break;
    case JT_FLOAT: snprintf(buf, n, "float"); break;
    case JT_DATA: snprintf(buf, n, "template data"); break;
    case JT_VAR_BEGIN: snprintf(buf, n, "begin of print statement"); break;
    case JT_BLOCK_BEGIN: snprintf(buf, n, "begin of statement block"); break;
    default: snprintf(buf, n, "%.*s", (int)(t->n > 40 ? 40 : t->n), t->p); break;
    }
}

static bool is_op(const struct jtok *t, uint8_t op) { return t->type == JT_OP && t->op == op; }
static bool is_name(const struct jtok *t, const char *name)
{
    return t->type == JT_NAME && strlen(name) == t->n && memcmp(t->p, name, t->n) == 0;
}

static bool expect_op(struct parser *p, uint8_t op, const char *what)
{
    if (is_op(cur(p), op)) {
        next(p);
        return true;
    }
    char got[64];
    describe(cur(p), got, sizeof(got));
    perr(p, cur(p), SHOAL_ERR_INVALID, "expected '%s', got '%s'", what, got);
    return false;
}

static bool expect_type(struct parser *p, uint8_t type, const char *what)
{
    if (cur(p)->type == type) {
        next(p);
        return true;
    }
    char got[64];
    describe(cur(p), got, sizeof(got));
    perr(p, cur(p), SHOAL_ERR_INVALID, "expected %s, got '%s'", what, got);
    return false;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Intern a name: its symbol id, or UINT32_MAX when out of memory. */
static uint32_t intern(struct parser *p, const char *s, size_t n)
{
    struct symtab *st = &p->st;
    if (st->n * 2 >= st->hcap) {
        size_t hcap = st->hcap ? st->hcap * 2 : 64;
        uint32_t *h = calloc(hcap, sizeof(*h));
        if (!h)
            return UINT32_MAX;
        for (size_t k = 0; k < st->n; k++) {
            size_t j = hash_name(st->names[k], strlen(st->names[k])) & (hcap - 1);
            while (h[j])
                j = (j + 1) & (hcap - 1);
            h[j] = (uint32_t)k + 1;
        }
        free(st->hash);
        st->hash = h;
        st->hcap = hcap;
    }
    size_t j = hash_name(s, n) & (st->hcap - 1);
    while (st->hash[j]) {
        const char *nm = st->names[st->hash[j] - 1];
        if (strlen(nm) == n && memcmp(nm, s, n) == 0)
            return st->hash[j] - 1;
        j = (j + 1) & (st->hcap - 1);
    }
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 32;
        const char **nn = realloc(st->names, cap * sizeof(*nn));
        if (!nn)
            return UINT32_MAX;
        st->names = nn;
        st->cap = cap;
    }
    char *copy = jarena_strdup(p->a, s, n);
    if (!copy)
        return UINT32_MAX;
    st->names[st->n] = copy;
    st->hash[j] = (uint32_t)st->n + 1;
    return (uint32_t)st->n++;
}

static struct jnode *mk(struct parser *p, uint16_t kind, const struct jtok *at)
{
    struct jnode *n = jarena_alloc(p->a, sizeof(*n));
    if (!n)
        return oom(p);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable list of nodes, copied into the arena when done. */
struct nlist {
    struct jnode **v;
    uint32_t n, cap;
    const char **names; /* parallel, for keyword arguments */
};

static bool nl_push(struct parser *p, struct nlist *l, struct jnode *n, const char *name)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        struct jnode **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            oom(p);
            return false;
        }
        l->v = v;
        const char **nm = realloc(l->names, cap * sizeof(*nm));
        if (!nm) {
            oom(p);
            return false;
        }
        l->names = nm;
        l->cap = cap;
    }
    l->v[l->n] = n;
    l->names[l->n] = name;
    l->n++;
    return true;
}

static struct jnode **nl_done(struct parser *p, struct nlist *l, uint32_t *count,
                              const char ***names)
{
    struct jnode **out = NULL;
    *count = l->n;
    if (l->n) {
        out = jarena_alloc(p->a, l->n * sizeof(*out));
        if (out)
            memcpy(out, l->v, l->n * sizeof(*out));
        else
            oom(p);
        if (names) {
            *names = jarena_alloc(p->a, l->n * sizeof(**names));
            if (*names)
                memcpy((void *)*names, l->names, l->n * sizeof(**names));
            else
                oom(p);
        }
    }
    free(l->v);
    free(l->names);
    memset(l, 0, sizeof(*l));
    return out;
}

static void nl_free(struct nlist *l)
{
    free(l->v);
    free(l->names);
    memset(l, 0, sizeof(*l));
}

static bool enter(struct parser *p)
{
    if (++p->depth > JINJA_MAX_PARSE_DEPTH) {
        perr(p, cur(p), SHOAL_ERR_TOO_BIG, "template nested too deeply (more than %u levels)",
             JINJA_MAX_PARSE_DEPTH);
        return false;
    }
    return true;
}
static void leave(struct parser *p) { p->depth--; }

/* ---- Expressions ---- */

static struct jnode *parse_expression(struct parser *p, bool with_condexpr);
static struct jnode *parse_tuple(struct parser *p, bool simplified, bool with_condexpr,
                                 const char *extra_end, bool explicit_parens);
static struct jnode *parse_unary(struct parser *p, bool with_filter);
static struct jnode *parse_primary(struct parser *p);
static struct jnode *parse_postfix(struct parser *p, struct jnode *node);
static struct jnode *parse_filter(struct parser *p, struct jnode *node, bool start_inline);

static struct jnode *mk_const(struct parser *p, const struct jtok *at, struct jv v)
{
    struct jnode *n = mk(p, E_CONST, at);
    if (n)
        n->cval = v;
    return n;
}

/* An immortal string constant in the arena. */
static struct jnode *mk_str_const(struct parser *p, const struct jtok *at, const char *s,
                                  size_t len)
{
    struct jstr *js = jarena_alloc(p->a, sizeof(*js) + len + 1);
    if (!js)
        return oom(p);
    js->h.rc = JRC_IMMORTAL;
    js->h.type = JV_STR;
    js->len = len;
    js->nchars = -1;
    if (len)
        memcpy(js->data, s, len);
    js->data[len] = 0;
    return mk_const(p, at, jv_obj(JV_STR, js));
}

static struct jnode *bin(struct parser *p, uint16_t kind, uint16_t op, const struct jtok *at,
                         struct jnode *a, struct jnode *b)
{
    struct jnode *n = mk(p, kind, at);
    if (n) {
        n->op = op;
        n->a = a;
        n->b = b;
    }
    return n;
}

/* Call arguments after '(' up to ')': positional then keyword. */
static bool parse_call_args(struct parser *p, struct jnode *n)
{
    if (!expect_op(p, '(', "("))
        return false;
    struct nlist args = {0}, kw = {0};
    bool first = true;
    while (!is_op(cur(p), ')')) {
        if (!first && !expect_op(p, ',', ","))
            goto fail;
        first = false;
        if (is_op(cur(p), ')'))
            break;
        if (is_op(cur(p), '*') || is_op(cur(p), JT_OP_POW)) {
            /* f(*seq) / f(**mapping): at most one of each */
            bool star2 = is_op(cur(p), JT_OP_POW);
            struct jnode **slot = star2 ? &n->c : &n->b;
            if (*slot) {
                perr(p, cur(p), SHOAL_ERR_INVALID, "only one %s argument is allowed",
                     star2 ? "**" : "*");
                goto fail;
            }
            next(p);
            if (!(*slot = parse_expression(p, true)))
                goto fail;
            continue;
        }
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), '=')) {
            const char *name = jarena_strdup(p->a, cur(p)->p, cur(p)->n);
            if (!name) {
                oom(p);
                goto fail;
            }
            next(p);
            next(p);
            struct jnode *v = parse_expression(p, true);
            if (!v || !nl_push(p, &kw, v, name))
                goto fail;
        } else {
            if (kw.n || n->b || n->c) {
                perr(p, cur(p), SHOAL_ERR_INVALID, "invalid syntax for function call expression "
                                                    "(positional argument after keyword argument)");
                goto fail;
            }
            struct jnode *v = parse_expression(p, true);
            if (!v || !nl_push(p, &args, v, NULL))
                goto fail;
        }
    }
    next(p);
    n->args = nl_done(p, &args, &n->nargs, NULL);
    n->kwargs = nl_done(p, &kw, &n->nkwargs, &n->kwnames);
    return !p->failed;
fail:
    nl_free(&args);
    nl_free(&kw);
    return false;
}

static struct jnode *parse_test(struct parser *p, struct jnode *node)
{
    struct jtok *at = cur(p);
    next(p); /* is */
    bool negated = false;
    if (is_name(cur(p), "not")) {
        next(p);
        negated = true;
    }
    struct jtok *nt = cur(p);
    if (!expect_type(p, JT_NAME, "test name"))
        return NULL;
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(nt->n < 63 ? nt->n : 63), nt->p);
    while (is_op(cur(p), '.')) {
        /* dotted test names are jinja2 syntax but no built-in test has one */
        return perr(p, cur(p), SHOAL_ERR_INVALID, "No test named '%s.%.*s'.", name,
                    (int)peek(p, 1)->n, peek(p, 1)->p);
    }
    struct jnode *n = mk(p, E_TEST, at);
    if (!n)
        return NULL;
    n->a = node;
    int id = jtest_lookup(name);
    if (id < 0) {
        if (!p->soft)
            return perr(p, nt, SHOAL_ERR_INVALID, "No test named '%s'.", name);
        n->str = jarena_strdup(p->a, name, strlen(name));
    }
    n->op = (uint16_t)(id < 0 ? UINT16_MAX : id);
    struct jtok *c = cur(p);
    if (is_op(c, '(')) {
        if (!parse_call_args(p, n))
            return NULL;
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT ||
                c->type == JT_FLOAT || is_op(c, '[') || is_op(c, '{')) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is"))
            return perr(p, c, SHOAL_ERR_INVALID, "You cannot chain multiple tests with is");
        struct jnode *arg = parse_primary(p);
        if (!arg || !(arg = parse_postfix(p, arg)))
            return NULL;
        n->args = jarena_alloc(p->a, sizeof(*n->args));
        if (!n->args)
            return oom(p);
        n->args[0] = arg;
        n->nargs = 1;
    }
    if (negated) {
        struct jnode *neg = mk(p, E_NOT, at);
        if (neg)
            neg->a = n;
        return neg;
    }
    return n;
}

/* One filter application: '|' already consumed unless start_inline. */
static struct jnode *parse_filter(struct parser *p, struct jnode *node, bool start_inline)
{
    while (is_op(cur(p), '|') || start_inline) {
        if (!start_inline)
            next(p);
        start_inline = false;
        struct jtok *nt = cur(p);
        if (!expect_type(p, JT_NAME, "filter name"))
            return NULL;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(nt->n < 63 ? nt->n : 63), nt->p);
        if (is_op(cur(p), '.'))
            return perr(p, cur(p), SHOAL_ERR_INVALID, "No filter named '%s.%.*s'.", name,
                        (int)peek(p, 1)->n, peek(p, 1)->p);
        struct jnode *n = mk(p, E_FILTER, nt);
        if (!n)
            return NULL;
        n->a = node;
        int id = jfilter_lookup(name);
        if (id < 0) {
            if (!p->soft)
                return perr(p, nt, SHOAL_ERR_INVALID, "No filter named '%s'.", name);
            n->str = jarena_strdup(p->a, name, strlen(name));
        }
        n->op = (uint16_t)(id < 0 ? UINT16_MAX : id);
        if (is_op(cur(p), '(') && !parse_call_args(p, n))
            return NULL;
        node = n;
    }
    return node;
}

static struct jnode *parse_filter_expr(struct parser *p, struct jnode *node)
{
    for (;;) {
        if (!node)
            return NULL;
        if (is_op(cur(p), '|')) {
            node = parse_filter(p, node, false);
        } else if (is_name(cur(p), "is")) {
            node = parse_test(p, node);
        } else if (is_op(cur(p), '(')) {
            struct jnode *call = mk(p, E_CALL, cur(p));
            if (!call)
                return NULL;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            return node;
        }
    }
}

/* One subscript inside [...]: an expression or a slice. */
static struct jnode *parse_subscribed(struct parser *p)
{
    struct jtok *at = cur(p);
    struct jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(p), ':')) {
        next(p);
    } else {
        struct jnode *e = parse_expression(p, true);
        if (!e)
            return NULL;
        if (!is_op(cur(p), ':'))
            return e;
        next(p);
        parts[0] = e;
    }
    if (!is_op(cur(p), ']') && !is_op(cur(p), ',') && !is_op(cur(p), ':')) {
        if (!(parts[1] = parse_expression(p, true)))
            return NULL;
    }
    if (is_op(cur(p), ':')) {
        next(p);
        if (!is_op(cur(p), ']') && !is_op(cur(p), ',')) {
            if (!(parts[2] = parse_expression(p, true)))
                return NULL;
        }
    }
    struct jnode *n = mk(p, E_SLICE, at);
    if (!n)
        return NULL;
    n->args = jarena_alloc(p->a, 3 * sizeof(*n->args));
    if (!n->args)
        return oom(p);
    memcpy(n->args, parts, sizeof(parts));
    n->nargs = 3;
    return n;
}

static struct jnode *parse_postfix(struct parser *p, struct jnode *node)
{
    for (;;) {
        if (!node)
            return NULL;
        struct jtok *at = cur(p);
        if (is_op(at, '.')) {
            next(p);
            struct jtok *nt = cur(p);
            if (nt->type == JT_NAME) {
                struct jnode *n = mk(p, E_ATTR, at);
                if (!n)
                    return NULL;
                n->a = node;
                n->str = jarena_strdup(p->a, nt->p, nt->n);
                n->len = nt->n;
                if (!n->str)
                    return oom(p);
                next(p);
                node = n;
            } else if (nt->type == JT_INT) {
                struct jnode *k = mk_const(p, nt, jv_int(nt->i));
                next(p);
                node = bin(p, E_ITEM, 0, at, node, k);
            } else {
                char got[64];
                describe(nt, got, sizeof(got));
                return perr(p, nt, SHOAL_ERR_INVALID, "expected name or number, got '%s'", got);
            }
        } else if (is_op(at, '[')) {
            next(p);
            struct nlist subs = {0};
            bool tuple = false;
            while (!is_op(cur(p), ']')) {
                if (subs.n) {
                    if (!expect_op(p, ',', ",")) {
                        nl_free(&subs);
                        return NULL;
                    }
                    tuple = true;
                    if (is_op(cur(p), ']'))
                        break;
                }
                struct jnode *s = parse_subscribed(p);
                if (!s || !nl_push(p, &subs, s, NULL)) {
                    nl_free(&subs);
                    return NULL;
                }
            }
            if (subs.n == 0) {
                nl_free(&subs);
                return perr(p, cur(p), SHOAL_ERR_INVALID, "expected an expression in []");
            }
            next(p);
            struct jnode *key;
            for (uint32_t k = 0; tuple && k < subs.n; k++) {
                if (subs.v[k]->kind == E_SLICE) {
                    nl_free(&subs);
                    return perr(p, at, SHOAL_ERR_UNSUPPORTED,
                                "a slice inside a tuple subscript is not supported");
                }
            }
            if (tuple) {
                key = mk(p, E_TUPLE, at);
                if (!key) {
                    nl_free(&subs);
                    return NULL;
                }
                key->args = nl_done(p, &subs, &key->nargs, NULL);
            } else {
                key = subs.v[0];
                nl_free(&subs);
            }
            if (key->kind == E_SLICE) {
                key->a = node;
                node = key;
            } else {
                node = bin(p, E_ITEM, 0, at, node, key);
            }
        } else if (is_op(at, '(')) {
            struct jnode *call = mk(p, E_CALL, at);
            if (!call)
                return NULL;
            /* a failed call is reported where the callee starts */
            call->line = node->line;
            call->col = node->col;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            return node;
        }
    }
}

static struct jnode *parse_primary(struct parser *p)
{
    struct jtok *t = cur(p);
    switch (t->type) {
    case JT_NAME: {
        next(p);
        if (is_name(t, "true") || is_name(t, "True"))
            return mk_const(p, t, jv_bool(true));
        if (is_name(t, "false") || is_name(t, "False"))
            return mk_const(p, t, jv_bool(false));
        if (is_name(t, "none") || is_name(t, "None"))
            return mk_const(p, t, jv_none());
        struct jnode *n = mk(p, E_NAME, t);
        if (!n)
            return NULL;
        n->sym = intern(p, t->p, t->n);
        if (n->sym == UINT32_MAX)
            return oom(p);
        if (p->macro && n->sym == p->t->sym_varargs)
            p->macro->op |= MACRO_VARARGS;
        if (p->macro && n->sym == p->t->sym_kwargs)
            p->macro->op |= MACRO_KWARGS;
        n->str = p->st.names[n->sym];
        n->len = t->n;
        return n;
    }
    case JT_STRING: {
        /* adjacent literals concatenate */
        size_t total = 0, k = 0;
        while (peek(p, k)->type == JT_STRING)
            total += peek(p, k++)->n;
        if (k == 1) {
            next(p);
            return mk_str_const(p, t, t->p, t->n);
        }
        char *buf = jarena_alloc(p->a, total + 1);
        if (!buf)
            return oom(p);
        size_t o = 0;
        while (cur(p)->type == JT_STRING) {
            memcpy(buf + o, cur(p)->p, cur(p)->n);
            o += cur(p)->n;
            next(p);
        }
        return mk_str_const(p, t, buf, o);
    }
    case JT_INT:
        next(p);
        return mk_const(p, t, jv_int(t->i));
    case JT_FLOAT:
        next(p);
        return mk_const(p, t, jv_float(t->f));
    case JT_OP:
        if (t->op == '(') {
            next(p);
            struct jnode *n = parse_tuple(p, false, true, NULL, true);
            if (!n || !expect_op(p, ')', ")"))
                return NULL;
            return n;
        }
        if (t->op == '[') {
            next(p);
            struct nlist items = {0};
            while (!is_op(cur(p), ']')) {
                if (items.n && !expect_op(p, ',', ",")) {
                    nl_free(&items);
                    return NULL;
                }
                if (is_op(cur(p), ']'))
                    break;
                struct jnode *e = parse_expression(p, true);
                if (!e || !nl_push(p, &items, e, NULL)) {
                    nl_free(&items);
                    return NULL;
                }
            }
            next(p);
            struct jnode *n = mk(p, E_LIST, t);
            if (!n) {
                nl_free(&items);
                return NULL;
            }
            n->args = nl_done(p, &items, &n->nargs, NULL);
            return n;
        }
        if (t->op == '{') {
            next(p);
            struct nlist keys = {0}, vals = {0};
            while (!is_op(cur(p), '}')) {
                if (keys.n && !expect_op(p, ',', ","))
                    goto dict_fail;
                if (is_op(cur(p), '}'))
                    break;
                struct jnode *k = parse_expression(p, true);
                if (!k || !expect_op(p, ':', ":"))
                    goto dict_fail;
                struct jnode *v = parse_expression(p, true);
                if (!v || !nl_push(p, &keys, k, NULL) || !nl_push(p, &vals, v, NULL))
                    goto dict_fail;
            }
            next(p);
            struct jnode *n = mk(p, E_DICT, t);
            if (!n)
                goto dict_fail;
            n->args = nl_done(p, &keys, &n->nargs, NULL);
            n->kwargs = nl_done(p, &vals, &n->nkwargs, NULL);
            return n;
        dict_fail:
            nl_free(&keys);
            nl_free(&vals);
            return NULL;
        }
        break;
    default:
        break;
    }
    char got[64];
    describe(t, got, sizeof(got));
    if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF)
        return perr(p, t, SHOAL_ERR_INVALID, "Expected an expression, got '%s'", got);
    return perr(p, t, SHOAL_ERR_INVALID, "unexpected '%s'", got);
}

static struct jnode *parse_unary(struct parser *p, bool with_filter)
{
    if (!enter(p))
        return NULL;
    struct jtok *t = cur(p);
    struct jnode *node;
    if (is_op(t, '-') || is_op(t, '+')) {
        next(p);
        struct jnode *inner = parse_unary(p, false);
        node = inner ? mk(p, is_op(t, '-') ? E_NEG : E_POS, t) : NULL;
        if (node)
            node->a = inner;
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    leave(p);
    return node;
}

static struct jnode *parse_pow(struct parser *p)
{
    struct jnode *left = parse_unary(p, true);
    while (left && is_op(cur(p), JT_OP_POW)) {
        struct jtok *at = cur(p);
        next(p);
        struct jnode *right = parse_unary(p, true);
        left = right ? bin(p, E_BINOP, JOP_POW, at, left, right) : NULL;
    }
    return left;
}

static struct jnode *parse_math2(struct parser *p)
{
    struct jnode *left = parse_pow(p);
    for (;;) {
        struct jtok *at = cur(p);
        uint16_t op = is_op(at, '*') ? JOP_MUL : is_op(at, '/') ? JOP_DIV
                      : is_op(at, JT_OP_FLOORDIV) ? JOP_FLOORDIV : is_op(at, '%') ? JOP_MOD
                                                                                   : JOP_NONE;
        if (!left || op == JOP_NONE)
            return left;
        next(p);
        struct jnode *right = parse_pow(p);
        left = right ? bin(p, E_BINOP, op, at, left, right) : NULL;
    }
}

static struct jnode *parse_concat(struct parser *p)
{
    struct jnode *left = parse_math2(p);
    while (left && is_op(cur(p), '~')) {
        struct jtok *at = cur(p);
        next(p);
        struct jnode *right = parse_math2(p);
        left = right ? bin(p, E_BINOP, JOP_CONCAT, at, left, right) : NULL;
    }
    return left;
}

static struct jnode *parse_math1(struct parser *p)
{
    struct jnode *left = parse_concat(p);
    for (;;) {
        struct jtok *at = cur(p);
        uint16_t op = is_op(at, '+') ? JOP_ADD : is_op(at, '-') ? JOP_SUB : JOP_NONE;
        if (!left || op == JOP_NONE)
            return left;
        next(p);
        struct jnode *right = parse_concat(p);
        left = right ? bin(p, E_BINOP, op, at, left, right) : NULL;
    }
}

static struct jnode *parse_compare(struct parser *p)
{
    struct jtok *at = cur(p);
    struct jnode *expr = parse_math1(p);
    if (!expr)
        return NULL;
    struct nlist ops = {0};
    uint16_t opv[64];
    for (;;) {
        struct jtok *t = cur(p);
        uint16_t op = JOP_NONE;
        if (is_op(t, JT_OP_EQ)) op = JOP_EQ;
        else if (is_op(t, JT_OP_NE)) op = JOP_NE;
        else if (is_op(t, '<')) op = JOP_LT;
        else if (is_op(t, JT_OP_LE)) op = JOP_LE;
        else if (is_op(t, '>')) op = JOP_GT;
        else if (is_op(t, JT_OP_GE)) op = JOP_GE;
        else if (is_name(t, "in")) op = JOP_IN;
        else if (is_name(t, "not") && is_name(peek(p, 1), "in")) op = JOP_NOTIN;
        if (op == JOP_NONE)
            break;
        if (ops.n >= SHOAL_ARRAY_LEN(opv)) {
            nl_free(&ops);
            return perr(p, t, SHOAL_ERR_TOO_BIG, "comparison chain too long");
        }
        next(p);
        if (op == JOP_NOTIN)
            next(p);
        struct jnode *e = parse_math1(p);
        if (!e || !nl_push(p, &ops, e, NULL)) {
            nl_free(&ops);
            return NULL;
        }
        opv[ops.n - 1] = op;
    }
    if (!ops.n)
        return expr;
    struct jnode *n = mk(p, E_COMPARE, at);
    if (!n) {
        nl_free(&ops);
        return NULL;
    }
    n->a = expr;
    n->ops = jarena_alloc(p->a, ops.n * sizeof(*n->ops));
    if (!n->ops) {
        nl_free(&ops);
        return oom(p);
    }
    memcpy(n->ops, opv, ops.n * sizeof(*n->ops));
    n->args = nl_done(p, &ops, &n->nargs, NULL);
    return n;
}

static struct jnode *parse_not(struct parser *p)
{
    struct jtok *t = cur(p);
    if (is_name(t, "not")) {
        if (!enter(p))
            return NULL;
        next(p);
        struct jnode *inner = parse_not(p);
        leave(p);
        struct jnode *n = inner ? mk(p, E_NOT, t) : NULL;
        if (n)
            n->a = inner;
        return n;
    }
    return parse_compare(p);
}

static struct jnode *parse_and(struct parser *p)
{
    struct jnode *left = parse_not(p);
    while (left && is_name(cur(p), "and")) {
        struct jtok *at = cur(p);
        next(p);
        struct jnode *right = parse_not(p);
        left = right ? bin(p, E_AND, 0, at, left, right) : NULL;
    }
    return left;
}

static struct jnode *parse_or(struct parser *p)
{
    struct jnode *left = parse_and(p);
    while (left && is_name(cur(p), "or")) {
        struct jtok *at = cur(p);
        next(p);
        struct jnode *right = parse_and(p);
        left = right ? bin(p, E_OR, 0, at, left, right) : NULL;
    }
    return left;
}

static struct jnode *parse_condexpr(struct parser *p)
{
    if (!enter(p))
        return NULL;
    struct jnode *expr1 = parse_or(p);
    bool soft = p->soft;
    while (expr1 && is_name(cur(p), "if")) {
        struct jtok *at = cur(p);
        next(p);
        p->soft = true;
        struct jnode *expr2 = parse_or(p);
        struct jnode *expr3 = NULL;
        if (expr2 && is_name(cur(p), "else")) {
            next(p);
            expr3 = parse_condexpr(p);
            if (!expr3) {
                expr1 = NULL;
                break;
            }
        }
        struct jnode *n = expr2 ? mk(p, E_COND, at) : NULL;
        if (n) {
            n->a = expr1;
            n->b = expr2;
            n->c = expr3;
        }
        expr1 = n;
    }
    p->soft = soft;
    leave(p);
    return expr1;
}

static struct jnode *parse_expression(struct parser *p, bool with_condexpr)
{
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

static bool is_tuple_end(struct parser *p, const char *extra_end)
{
    struct jtok *t = cur(p);
    if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || is_op(t, ')') || t->type == JT_EOF)
        return true;
    return extra_end && is_name(t, extra_end);
}

static struct jnode *parse_tuple(struct parser *p, bool simplified, bool with_condexpr,
                                 const char *extra_end, bool explicit_parens)
{
    struct jtok *at = cur(p);
    struct nlist items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n && !expect_op(p, ',', ","))
            goto fail;
        if (is_tuple_end(p, extra_end))
            break;
        struct jnode *e;
        if (simplified) {
            e = parse_primary(p);
        } else {
            e = parse_expression(p, with_condexpr);
        }
        if (!e || !nl_push(p, &items, e, NULL))
            goto fail;
        if (is_op(cur(p), ','))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) {
            struct jnode *e = items.v[0];
            nl_free(&items);
            return e;
        }
        if (!explicit_parens) {
            char got[64];
            describe(cur(p), got, sizeof(got));
            perr(p, cur(p), SHOAL_ERR_INVALID, "Expected an expression, got '%s'", got);
            goto fail;
        }
    }
    struct jnode *n = mk(p, E_TUPLE, at);
    if (!n)
        goto fail;
    n->args = nl_done(p, &items, &n->nargs, NULL);
    return n;
fail:
    nl_free(&items);
    return NULL;
}

/* ---- Statements ---- */

static bool subparse(struct parser *p, const char *const *end_names, struct jnode ***body,
                     uint32_t *nbody);

static bool expect_block_end(struct parser *p)
{
    return expect_type(p, JT_BLOCK_END, "end of statement block");
}

static struct jnode *name_target(struct parser *p)
{
    struct jtok *t = cur(p);
    if (t->type != JT_NAME) {
        char got[64];
        describe(t, got, sizeof(got));
        return perr(p, t, SHOAL_ERR_INVALID, "expected name, got '%s'", got);
    }
    if (is_name(t, "true") || is_name(t, "false") || is_name(t, "none") || is_name(t, "True") ||
        is_name(t, "False") || is_name(t, "None"))
        return perr(p, t, SHOAL_ERR_INVALID, "Can't assign to constant '%.*s'", (int)t->n, t->p);
    return parse_primary(p);
}

/* for/set/with targets: a name, a namespace attribute (with_ns) or a tuple
 * of names. */
static struct jnode *parse_assign_target(struct parser *p, bool with_tuple, bool with_ns,
                                         const char *extra_end)
{
    struct jtok *t = cur(p);
    if (with_ns && t->type == JT_NAME && is_op(peek(p, 1), '.') && peek(p, 2)->type == JT_NAME) {
        struct jnode *n = mk(p, E_NSREF, t);
        if (!n)
            return NULL;
        n->sym = intern(p, t->p, t->n);
        if (n->sym == UINT32_MAX)
            return oom(p);
        n->str = p->st.names[n->sym];
        struct jtok *attr = peek(p, 2);
        struct jnode *k = mk_str_const(p, attr, attr->p, attr->n);
        if (!k)
            return NULL;
        n->cval = k->cval;
        n->str2 = jv_str(k->cval)->data;
        next(p);
        next(p);
        next(p);
        return n;
    }
    struct jnode *target;
    if (with_tuple) {
        struct nlist items = {0};
        bool is_tuple = false, paren = false;
        if (is_op(cur(p), '(')) {
            paren = true;
            next(p);
        }
        for (;;) {
            if (items.n && !expect_op(p, ',', ",")) {
                nl_free(&items);
                return NULL;
            }
            if (is_tuple_end(p, extra_end) || is_op(cur(p), '='))
                break;
            struct jnode *e = name_target(p);
            if (!e || !nl_push(p, &items, e, NULL)) {
                nl_free(&items);
                return NULL;
            }
            if (is_op(cur(p), ','))
                is_tuple = true;
            else
                break;
        }
        if (paren && !expect_op(p, ')', ")")) {
            nl_free(&items);
            return NULL;
        }
        if (!items.n) {
            nl_free(&items);
            return perr(p, t, SHOAL_ERR_INVALID, "expected an assignment target");
        }
        if (!is_tuple && !paren) {
            target = items.v[0];
            nl_free(&items);
        } else if (!is_tuple && items.n == 1) {
            target = items.v[0];
            nl_free(&items);
        } else {
            target = mk(p, E_TUPLE, t);
            if (!target) {
                nl_free(&items);
                return NULL;
            }
            target->args = nl_done(p, &items, &target->nargs, NULL);
        }
    } else {
        target = name_target(p);
    }
    return target;
}

static struct jnode *parse_if(struct parser *p, struct jtok *at)
{
    struct jnode *top = mk(p, S_IF, at), *node = top;
    if (!top)
        return NULL;
    bool soft = p->soft;
    p->soft = true;
    for (;;) {
        node->a = parse_tuple(p, false, false, NULL, false);
        if (!node->a || !expect_block_end(p))
            goto fail;
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        if (!subparse(p, ends, &node->body, &node->nbody))
            goto fail;
        struct jtok *t = cur(p);
        next(p);
        if (is_name(t, "elif")) {
            struct jnode *n = mk(p, S_IF, t);
            if (!n)
                goto fail;
            node->body2 = jarena_alloc(p->a, sizeof(*node->body2));
            if (!node->body2) {
                oom(p);
                goto fail;
            }
            node->body2[0] = n;
            node->nbody2 = 1;
            node = n;
            continue;
        }
        if (is_name(t, "else")) {
            static const char *const endif[] = {"endif", NULL};
            if (!expect_block_end(p) || !subparse(p, endif, &node->body2, &node->nbody2))
                goto fail;
            next(p);
        }
        break;
    }
    p->soft = soft;
    return expect_block_end(p) ? top : NULL;
fail:
    p->soft = soft;
    return NULL;
}

static struct jnode *parse_for(struct parser *p, struct jtok *at)
{
    struct jnode *n = mk(p, S_FOR, at);
    if (!n)
        return NULL;
    if (!(n->tgt = parse_assign_target(p, true, false, "in")))
        return NULL;
    if (!is_name(cur(p), "in")) {
        char got[64];
        describe(cur(p), got, sizeof(got));
        return perr(p, cur(p), SHOAL_ERR_INVALID, "expected 'in', got '%s'", got);
    }
    next(p);
    if (!(n->a = parse_tuple(p, false, false, "recursive", false)))
        return NULL;
    if (is_name(cur(p), "if")) {
        next(p);
        if (!(n->b = parse_expression(p, true)))
            return NULL;
    }
    if (is_name(cur(p), "recursive")) {
        next(p);
        n->flag = true;
    }
    if (!expect_block_end(p))
        return NULL;
    bool soft = p->soft;
    p->soft = false;
    p->loops++;
    static const char *const ends[] = {"endfor", "else", NULL};
    bool ok = subparse(p, ends, &n->body, &n->nbody);
    p->loops--;
    if (ok && is_name(cur(p), "else")) {
        next(p);
        static const char *const endfor[] = {"endfor", NULL};
        ok = expect_block_end(p) && subparse(p, endfor, &n->body2, &n->nbody2);
    }
    p->soft = soft;
    if (!ok)
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
}

/* Macro or caller parameters "(a, b=1)": fills n->p*. */
static bool parse_signature(struct parser *p, struct jnode *n)
{
    if (!expect_op(p, '(', "("))
        return false;
    struct nlist defs = {0};
    uint32_t syms[256];
    while (!is_op(cur(p), ')')) {
        if (defs.n && !expect_op(p, ',', ","))
            goto fail;
        if (is_op(cur(p), ')'))
            break;
        struct jtok *t = cur(p);
        if (t->type != JT_NAME) {
            perr(p, t, SHOAL_ERR_INVALID, "expected a parameter name");
            goto fail;
        }
        if (defs.n >= SHOAL_ARRAY_LEN(syms)) {
            perr(p, t, SHOAL_ERR_TOO_BIG, "too many parameters");
            goto fail;
        }
        uint32_t sym = intern(p, t->p, t->n);
        if (sym == UINT32_MAX) {
            oom(p);
            goto fail;
        }
        for (uint32_t k = 0; k < defs.n; k++)
            if (syms[k] == sym) {
                perr(p, t, SHOAL_ERR_INVALID, "duplicate parameter '%s'", p->st.names[sym]);
                goto fail;
            }
        next(p);
        struct jnode *def = NULL;
        if (is_op(cur(p), '=')) {
            next(p);
            if (!(def = parse_expression(p, true)))
                goto fail;
        }
        syms[defs.n] = sym;
        if (!nl_push(p, &defs, def, p->st.names[sym]))
            goto fail;
    }
    next(p);
    n->nparams = defs.n;
    if (defs.n) {
        n->psyms = jarena_alloc(p->a, defs.n * sizeof(*n->psyms));
        if (!n->psyms) {
            oom(p);
            goto fail;
        }
        memcpy(n->psyms, syms, defs.n * sizeof(*syms));
    }
    uint32_t cnt;
    n->pdefaults = nl_done(p, &defs, &cnt, &n->pnames);
    return !p->failed;
fail:
    nl_free(&defs);
    return false;
}

static struct jnode *parse_macro(struct parser *p, struct jtok *at)
{
    struct jnode *n = mk(p, S_MACRO, at);
    if (!n)
        return NULL;
    struct jtok *t = cur(p);
    if (!expect_type(p, JT_NAME, "macro name"))
        return NULL;
    n->sym = intern(p, t->p, t->n);
    if (n->sym == UINT32_MAX)
        return oom(p);
    n->str = p->st.names[n->sym];
    if (!parse_signature(p, n) || !expect_block_end(p))
        return NULL;
    unsigned loops = p->loops;
    bool soft = p->soft;
    struct jnode *outer = p->macro;
    p->loops = 0;
    p->soft = false;
    p->macro = n;
    static const char *const ends[] = {"endmacro", NULL};
    bool ok = subparse(p, ends, &n->body, &n->nbody);
    p->loops = loops;
    p->soft = soft;
    p->macro = outer;
    if (!ok)
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
}

static struct jnode *parse_set(struct parser *p, struct jtok *at)
{
    struct jnode *target = parse_assign_target(p, true, true, NULL);
    if (!target)
        return NULL;
    if (is_op(cur(p), '=')) {
        next(p);
        struct jnode *n = mk(p, S_SET, at);
        if (!n)
            return NULL;
        n->tgt = target;
        if (!(n->a = parse_tuple(p, false, true, NULL, false)))
            return NULL;
        return expect_block_end(p) ? n : NULL;
    }
    if (target->kind == E_TUPLE)
        return perr(p, cur(p), SHOAL_ERR_INVALID, "expected '=' after a tuple target");
    struct jnode *n = mk(p, S_SETBLOCK, at);
    if (!n)
        return NULL;
    n->tgt = target;
    if (is_op(cur(p), '|') && !(n->b = parse_filter(p, NULL, false)))
        return NULL;
    if (!expect_block_end(p))
        return NULL;
    static const char *const ends[] = {"endset", NULL};
    if (!subparse(p, ends, &n->body, &n->nbody))
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
}

static struct jnode *parse_call_block(struct parser *p, struct jtok *at)
{
    struct jnode *n = mk(p, S_CALLBLOCK, at);
    if (!n)
        return NULL;
    if (is_op(cur(p), '(') && !parse_signature(p, n))
        return NULL;
    struct jnode *call = parse_expression(p, true);
    if (!call)
        return NULL;
    if (call->kind != E_CALL)
        return perr(p, at, SHOAL_ERR_INVALID, "expected call");
    n->a = call;
    if (!expect_block_end(p))
        return NULL;
    unsigned loops = p->loops;
    p->loops = 0;
    static const char *const ends[] = {"endcall", NULL};
    bool ok = subparse(p, ends, &n->body, &n->nbody);
    p->loops = loops;
    if (!ok)
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
}

static struct jnode *parse_filter_block(struct parser *p, struct jtok *at)
{
    struct jnode *n = mk(p, S_FILTERBLOCK, at);
    if (!n)
        return NULL;
    if (!(n->b = parse_filter(p, NULL, true)) || !expect_block_end(p))
        return NULL;
    static const char *const ends[] = {"endfilter", NULL};
    if (!subparse(p, ends, &n->body, &n->nbody))
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
}

static struct jnode *parse_with(struct parser *p, struct jtok *at)
{
    struct jnode *n = mk(p, S_WITH, at);
    if (!n)
        return NULL;
    struct nlist tg = {0}, vals = {0};
    while (cur(p)->type != JT_BLOCK_END) {
        if (tg.n && !expect_op(p, ',', ","))
            goto fail;
        struct jnode *t = parse_assign_target(p, true, false, NULL);
        if (!t || !expect_op(p, '=', "="))
            goto fail;
        struct jnode *v = parse_expression(p, true);
        if (!v || !nl_push(p, &tg, t, NULL) || !nl_push(p, &vals, v, NULL))
            goto fail;
    }
    next(p);
    n->args = nl_done(p, &tg, &n->nargs, NULL);
    n->kwargs = nl_done(p, &vals, &n->nkwargs, NULL);
    static const char *const ends[] = {"endwith", NULL};
    if (!subparse(p, ends, &n->body, &n->nbody))
        return NULL;
    next(p);
    return expect_block_end(p) ? n : NULL;
fail:
    nl_free(&tg);
    nl_free(&vals);
    return NULL;
}

/* {% block name %}: without template inheritance a block renders in place. */
static struct jnode *parse_block(struct parser *p, struct jtok *at)
{
    if (!expect_type(p, JT_NAME, "block name"))
        return NULL;
    while (is_name(cur(p), "scoped") || is_name(cur(p), "required"))
        next(p);
    if (!expect_block_end(p))
        return NULL;
    struct jnode *n = mk(p, S_IF, at);
    if (!n || !(n->a = mk_const(p, at, jv_bool(true))))
        return NULL;
    static const char *const ends[] = {"endblock", NULL};
    if (!subparse(p, ends, &n->body, &n->nbody))
        return NULL;
    next(p);
    if (cur(p)->type == JT_NAME)
        next(p);
    return expect_block_end(p) ? n : NULL;
}

static struct jnode *parse_statement(struct parser *p)
{
    struct jtok *t = cur(p);
    if (t->type != JT_NAME)
        return perr(p, t, SHOAL_ERR_INVALID, "tag name expected");
    if (!enter(p))
        return NULL;
    next(p);
    struct jnode *n = NULL;
    if (is_name(t, "if")) {
        n = parse_if(p, t);
    } else if (is_name(t, "for")) {
        n = parse_for(p, t);
    } else if (is_name(t, "set")) {
        n = parse_set(p, t);
    } else if (is_name(t, "macro")) {
        n = parse_macro(p, t);
    } else if (is_name(t, "call")) {
        n = parse_call_block(p, t);
    } else if (is_name(t, "filter")) {
        n = parse_filter_block(p, t);
    } else if (is_name(t, "with")) {
        n = parse_with(p, t);
    } else if (is_name(t, "block")) {
        n = parse_block(p, t);
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        if (!p->loops) {
            perr(p, t, SHOAL_ERR_INVALID, "'%.*s' outside of a loop", (int)t->n, t->p);
        } else if ((n = mk(p, is_name(t, "break") ? S_BREAK : S_CONTINUE, t)) &&
                   !expect_block_end(p)) {
            n = NULL;
        }
    } else if (is_name(t, "include") || is_name(t, "import") || is_name(t, "from") ||
               is_name(t, "extends")) {
        perr(p, t, SHOAL_ERR_UNSUPPORTED,
             "tag '%.*s' is not supported: a chat template cannot load other templates",
             (int)t->n, t->p);
    } else {
        perr(p, t, SHOAL_ERR_INVALID, "Encountered unknown tag '%.*s'.", (int)t->n, t->p);
    }
    leave(p);
    return n;
}

/* Statements until one of end_names (left as the current token) or EOF. */
static bool subparse(struct parser *p, const char *const *end_names, struct jnode ***body,
                     uint32_t *nbody)
{
    struct nlist out = {0};
    for (;;) {
        struct jtok *t = cur(p);
        struct jnode *n = NULL;
        if (t->type == JT_EOF) {
            if (end_names) {
                char want[160] = "";
                size_t o = 0;
                for (const char *const *e = end_names; *e; e++)
                    o += (size_t)snprintf(want + o, sizeof(want) - o, "%s'%s'",
                                          e == end_names ? "" : " or ", *e);
                perr(p, t, SHOAL_ERR_INVALID,
                     "Unexpected end of template. Jinja was looking for the following tags: %s.",
                     want);
                goto fail;
            }
            break;
        }
        if (t->type == JT_DATA) {
            n = mk(p, S_DATA, t);
            if (!n)
                goto fail;
            n->str = t->p;
            n->len = t->n;
            next(p);
        } else if (t->type == JT_VAR_BEGIN) {
            next(p);
            n = mk(p, S_OUTPUT, t);
            if (!n || !(n->a = parse_tuple(p, false, true, NULL, false)) ||
                !expect_type(p, JT_VAR_END, "end of print statement"))
                goto fail;
        } else if (t->type == JT_BLOCK_BEGIN) {
            next(p);
            struct jtok *name = cur(p);
            if (end_names && name->type == JT_NAME) {
                for (const char *const *e = end_names; *e; e++)
                    if (is_name(name, *e))
                        goto done;
            }
            if (name->type == JT_NAME && name->n > 3 && memcmp(name->p, "end", 3) == 0) {
                perr(p, name, SHOAL_ERR_INVALID, "Encountered unknown tag '%.*s'.%s",
                     (int)name->n, name->p,
                     end_names ? "" : " (no block is open here)");
                goto fail;
            }
            if (!(n = parse_statement(p)))
                goto fail;
        } else {
            char got[64];
            describe(t, got, sizeof(got));
            perr(p, t, SHOAL_ERR_INVALID, "unexpected '%s'", got);
            goto fail;
        }
        if (!nl_push(p, &out, n, NULL))
            goto fail;
    }
done:
    *body = nl_done(p, &out, nbody, NULL);
    return !p->failed;
fail:
    nl_free(&out);
    return false;
}

enum shoal_err jinja_parse(const char *src, size_t n, struct jtmpl **out, struct shoal_diag *d)
{
    if (n > JINJA_MAX_SOURCE)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG, "template is %zu bytes, more than %u", n,
                              JINJA_MAX_SOURCE);
    struct jtmpl *t = calloc(1, sizeof(*t));
    if (!t)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    struct parser p = {.t = t, .a = &t->arena, .d = d};
    enum shoal_err rc = jinja_lex(&t->arena, src, n, &p.tk, &p.ntk, d);
    if (rc != SHOAL_OK)
        goto fail;
    /* names the evaluator needs by id */
    t->sym_loop = intern(&p, "loop", 4);
    t->sym_caller = intern(&p, "caller", 6);
    t->sym_varargs = intern(&p, "varargs", 7);
    t->sym_kwargs = intern(&p, "kwargs", 6);
    if (t->sym_kwargs == UINT32_MAX) {
        oom(&p);
    } else if (subparse(&p, NULL, &t->body, &t->nbody)) {
        t->nsyms = (uint32_t)p.st.n;
        t->syms = jarena_alloc(&t->arena, (p.st.n + 1) * sizeof(*t->syms));
        t->sym_global = jarena_alloc(&t->arena, (p.st.n + 1) * sizeof(*t->sym_global));
        if (!t->syms || !t->sym_global) {
            oom(&p);
        } else {
            for (size_t k = 0; k < p.st.n; k++) {
                t->syms[k] = p.st.names[k];
                t->sym_global[k] = (int16_t)jfunc_lookup(p.st.names[k]);
            }
            t->sym_hcap = p.st.hcap;
            t->sym_hash = jarena_alloc(&t->arena, p.st.hcap * sizeof(*t->sym_hash));
            if (t->sym_hash)
                memcpy(t->sym_hash, p.st.hash, p.st.hcap * sizeof(*t->sym_hash));
            else
                oom(&p);
        }
    }
    free(p.tk);
    free(p.st.names);
    free(p.st.hash);
    if (p.failed) {
        rc = p.err;
        goto fail;
    }
    *out = t;
    return SHOAL_OK;
fail:
    jinja_free(t);
    return rc;
}

uint32_t jinja_symbol(const struct jtmpl *t, const char *name, size_t n)
{
    if (!t->sym_hcap)
        return UINT32_MAX;
    size_t j = hash_name(name, n) & (t->sym_hcap - 1);
    while (t->sym_hash[j]) {
        const char *nm = t->syms[t->sym_hash[j] - 1];
        if (strlen(nm) == n && memcmp(nm, name, n) == 0)
            return t->sym_hash[j] - 1;
        j = (j + 1) & (t->sym_hcap - 1);
    }
    return UINT32_MAX;
}

void jinja_free(struct jtmpl *t)
{
    if (!t)
        return;
    jarena_free(&t->arena);
    free(t);
}
