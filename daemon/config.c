/* config.c: the shoal.yaml loader. libyaml's event API builds a small node
 * tree of our own (line/col marks, aliases kept as references); a schema
 * walk turns it into an immutable struct config, reporting every problem.
 * Invariants: a secret's value never reaches a diagnostic or config_print;
 * no document expands past SHOAL_CAP_CONFIG_NODES nodes or _DEPTH levels. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#define DEFAULTS_SOURCE "(built-in defaults)"
#define SUN_PATH_BYTES  sizeof(((struct sockaddr_un *)0)->sun_path)

/* ---- Report ---- */

void config_report_init(struct config_report *r)
{
    memset(r, 0, sizeof(*r));
}

void config_report_fini(struct config_report *r)
{
    if (!r)
        return;
    free(r->items);
    memset(r, 0, sizeof(*r));
}

static void report_add(struct config_report *r, const struct shoal_diag *d)
{
    if (r->n >= CONFIG_REPORT_MAX) {
        r->dropped++;
        return;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > CONFIG_REPORT_MAX)
            cap = CONFIG_REPORT_MAX;
        struct shoal_diag *p = realloc(r->items, cap * sizeof(*p));
        if (!p) {
            /* Losing a message beats losing the count: the caller still
             * learns the load failed and how many problems there were. */
            r->dropped++;
            return;
        }
        r->items = p;
        r->cap = cap;
    }
    r->items[r->n++] = *d;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void config_report_print(const struct config_report *r, int fd)
{
    char line[1280];
    for (size_t i = 0; i < r->n; i++) {
        size_t k = shoal_diag_format(&r->items[i], line, sizeof(line) - 1);
        if (k > sizeof(line) - 2)
            k = strlen(line);
        line[k++] = '\n';
        write_all(fd, line, k);
    }
    if (r->dropped) {
        int k = snprintf(line, sizeof(line), "... and %zu more problems\n", r->dropped);
        if (k > 0)
            write_all(fd, line, (size_t)k);
    }
}

/* ---- Load context: where problems go ---- */

struct ctx {
    const char *name;        /* file name for diagnostics */
    struct config_report *r; /* may be NULL: problems are then only counted */
    size_t nerr;             /* problems found in this load */
    bool nomem;
    bool skip_secrets;  /* check a secret's shape but do not read its value */
    const char *secrets_model; /* with skip_secrets: this model's api_key is read anyway */
    const char *source; /* what config->source records; name when NULL */
    char path[sizeof(((struct shoal_diag *)0)->path)]; /* key path being checked */
};

static void vproblem(struct ctx *c, enum shoal_err err, const char *path, unsigned line,
                     unsigned col, const char *fmt, va_list ap) SHOAL_PRINTF(6, 0);
static void vproblem(struct ctx *c, enum shoal_err err, const char *path, unsigned line,
                     unsigned col, const char *fmt, va_list ap)
{
    c->nerr++;
    if (err == SHOAL_ERR_NOMEM)
        c->nomem = true;
    if (!c->r)
        return;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    shoal_diag_at(&d, c->name, line, col);
    shoal_diag_path(&d, path);
    shoal_diag_setv(&d, err, fmt, ap);
    report_add(c->r, &d);
}

static void problem_at(struct ctx *c, enum shoal_err err, const char *path, unsigned line,
                       unsigned col, const char *fmt, ...) SHOAL_PRINTF(6, 7);
static void problem_at(struct ctx *c, enum shoal_err err, const char *path, unsigned line,
                       unsigned col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(c, err, path, line, col, fmt, ap);
    va_end(ap);
}

static void nomem(struct ctx *c)
{
    problem_at(c, SHOAL_ERR_NOMEM, c->path, 0, 0, "out of memory");
}

/* Copy user text into out for a message: control bytes become \xNN and long
 * text is cut with "...", so a diagnostic is always one printable line. */
static const char *show(char *out, size_t n, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o + 8 >= n) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(out + o, n - o, "\\x%02X", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
    return out;
}

/* ---- Node tree ---- */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ, NODE_ALIAS };

struct node {
    enum node_kind kind;
    unsigned line, col; /* 1-based start of the node in the file */
    bool null;          /* a plain "", "~" or "null": an unset value */
    bool done;          /* the end event was seen (aliases may point here) */
    char *text;         /* scalar: NUL-terminated, contains no NUL */
    size_t len;
    struct node **kids; /* map: key, value, key, value, ...; seq: items */
    size_t n, cap;
    struct node *target; /* alias: the anchored node, never itself an alias */
    uint32_t weight;     /* nodes in this subtree with aliases expanded */
    uint32_t height;     /* container levels in this subtree, aliases expanded */
    struct node *next;   /* every node of the tree, for freeing */
};

struct anchor {
    char *name;
    struct node *node; /* the latest node with this anchor */
};

struct builder {
    struct ctx *c;
    const char *text; /* the input, for locating reader errors */
    size_t text_len;
    struct node *all;
    struct node *root;
    struct node *stack[SHOAL_CAP_CONFIG_DEPTH];
    size_t depth;
    struct anchor *anchors;
    size_t nanchors, anchors_cap;
    uint32_t *slots; /* open-addressing hash: anchor index + 1, 0 = empty */
    size_t nslots;
    uint64_t total; /* nodes so far with aliases expanded */
    bool stop;      /* stop reading events */
    bool broken;    /* the tree is incomplete: do not validate it */
};

static const struct node *deref(const struct node *nd)
{
    return nd && nd->kind == NODE_ALIAS ? nd->target : nd;
}

static const char *kind_name(enum node_kind k)
{
    switch (k) {
    case NODE_MAP:
        return "a mapping";
    case NODE_SEQ:
        return "a list";
    default:
        return "a scalar";
    }
}

/* "a mapping", "a list" or the scalar's text in quotes, for "got ..." */
static const char *describe(const struct node *nd, char *out, size_t n)
{
    nd = deref(nd);
    if (nd->kind != NODE_SCALAR)
        return kind_name(nd->kind);
    char tmp[80];
    snprintf(out, n, "'%s'", show(tmp, sizeof(tmp), nd->text, nd->len));
    return out;
}

static void tree_free(struct node *all)
{
    while (all) {
        struct node *next = all->next;
        free(all->text);
        free(all->kids);
        free(all);
        all = next;
    }
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h;
}

static struct anchor *anchor_find(const struct builder *b, const char *name)
{
    if (!b->nslots)
        return NULL;
    size_t mask = b->nslots - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        uint32_t s = b->slots[i];
        if (!s)
            return NULL;
        if (strcmp(b->anchors[s - 1].name, name) == 0)
            return &b->anchors[s - 1];
    }
}

static void slot_insert(uint32_t *slots, size_t nslots, const char *name, uint32_t idx)
{
    size_t mask = nslots - 1, i = hash_str(name) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = idx + 1;
}

/* Point anchor name at nd (a later anchor of the same name wins, as YAML
 * says). False when out of memory. */
static bool anchor_set(struct builder *b, const char *name, struct node *nd)
{
    struct anchor *a = anchor_find(b, name);
    if (a) {
        a->node = nd;
        return true;
    }
    if ((b->nanchors + 1) * 2 > b->nslots) {
        size_t ns = b->nslots ? b->nslots * 2 : 16;
        uint32_t *slots = calloc(ns, sizeof(*slots));
        if (!slots)
            return false;
        for (size_t i = 0; i < b->nanchors; i++)
            slot_insert(slots, ns, b->anchors[i].name, (uint32_t)i);
        free(b->slots);
        b->slots = slots;
        b->nslots = ns;
    }
    if (b->nanchors == b->anchors_cap) {
        size_t cap = b->anchors_cap ? b->anchors_cap * 2 : 8;
        struct anchor *p = realloc(b->anchors, cap * sizeof(*p));
        if (!p)
            return false;
        b->anchors = p;
        b->anchors_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return false;
    b->anchors[b->nanchors] = (struct anchor){copy, nd};
    slot_insert(b->slots, b->nslots, copy, (uint32_t)b->nanchors);
    b->nanchors++;
    return true;
}

static void path_append(char *out, size_t n, size_t *len, const char *seg, bool dot)
{
    int k = snprintf(out + *len, n - *len, "%s%s", dot && *len ? "." : "", seg);
    if (k > 0)
        *len = *len + (size_t)k < n ? *len + (size_t)k : n - 1;
}

/* The key path of the node about to be attached, from the open containers. */
static void build_path(const struct builder *b, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < b->depth; i++) {
        const struct node *f = b->stack[i];
        bool top = i + 1 == b->depth;
        /* Below the top the child container is already the last kid. */
        size_t pos = top ? f->n : f->n - 1;
        char seg[80];
        if (f->kind == NODE_SEQ) {
            snprintf(seg, sizeof(seg), "[%zu]", pos);
            path_append(out, n, &len, seg, false);
            continue;
        }
        if (pos % 2 == 0)
            return; /* inside a key, not a value */
        const struct node *key = deref(f->kids[pos - 1]);
        if (key->kind == NODE_SCALAR)
            show(seg, sizeof(seg), key->text, key->len);
        else
            shoal_strlcpy(seg, "?", sizeof(seg));
        path_append(out, n, &len, seg, true);
    }
}

static void build_problem(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
    SHOAL_PRINTF(3, 4);
static void build_problem(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    char path[sizeof(b->c->path)];
    build_path(b, path, sizeof(path));
    va_list ap;
    va_start(ap, fmt);
    vproblem(b->c, SHOAL_ERR_INVALID, path, (unsigned)m->line + 1, (unsigned)m->column + 1, fmt,
             ap);
    va_end(ap);
}

static void build_nomem(struct builder *b)
{
    nomem(b->c);
    b->stop = b->broken = true;
}

static struct node *node_new(struct builder *b, enum node_kind kind, const yaml_mark_t *m)
{
    struct node *nd = calloc(1, sizeof(*nd));
    if (!nd)
        return NULL;
    nd->kind = kind;
    nd->line = (unsigned)m->line + 1;
    nd->col = (unsigned)m->column + 1;
    nd->next = b->all;
    b->all = nd;
    return nd;
}

static bool attach(struct builder *b, struct node *nd)
{
    if (b->depth == 0) {
        b->root = nd;
        return true;
    }
    struct node *p = b->stack[b->depth - 1];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        struct node **k = realloc(p->kids, cap * sizeof(*k));
        if (!k)
            return false;
        p->kids = k;
        p->cap = cap;
    }
    p->kids[p->n++] = nd;
    return true;
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static void tag_problem(struct builder *b, const yaml_mark_t *m, const char *tag)
{
    static const char core[] = "tag:yaml.org,2002:";
    char shown[80], full[96];
    if (!strncmp(tag, core, sizeof(core) - 1))
        snprintf(full, sizeof(full), "!!%s", tag + sizeof(core) - 1);
    else
        shoal_strlcpy(full, tag, sizeof(full));
    build_problem(b, m, "YAML tags are not allowed (found %s)",
                  show(shown, sizeof(shown), full, strlen(full)));
}

/* A scalar, or the start of a sequence or mapping. */
static void on_node(struct builder *b, enum node_kind kind, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    const char *anchor, *tag;
    if (kind == NODE_SCALAR) {
        anchor = (const char *)ev->data.scalar.anchor;
        tag = (const char *)ev->data.scalar.tag;
    } else if (kind == NODE_SEQ) {
        anchor = (const char *)ev->data.sequence_start.anchor;
        tag = (const char *)ev->data.sequence_start.tag;
    } else {
        anchor = (const char *)ev->data.mapping_start.anchor;
        tag = (const char *)ev->data.mapping_start.tag;
    }
    if (++b->total > SHOAL_CAP_CONFIG_NODES) {
        build_problem(b, m, "the document has more than %u nodes", SHOAL_CAP_CONFIG_NODES);
        b->stop = b->broken = true;
        return;
    }
    if (kind != NODE_SCALAR && b->depth >= SHOAL_CAP_CONFIG_DEPTH) {
        build_problem(b, m, "nesting is deeper than %u levels", SHOAL_CAP_CONFIG_DEPTH);
        b->stop = b->broken = true;
        return;
    }
    if (kind == NODE_SCALAR && memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
        build_problem(b, m, "strings may not contain NUL characters");
        b->stop = b->broken = true;
        return;
    }
    if (tag)
        tag_problem(b, m, tag); /* reported; the node is still checked */
    struct node *nd = node_new(b, kind, m);
    if (!nd)
        return build_nomem(b);
    if (kind == NODE_SCALAR) {
        nd->len = ev->data.scalar.length;
        nd->text = malloc(nd->len + 1);
        if (!nd->text)
            return build_nomem(b);
        memcpy(nd->text, ev->data.scalar.value, nd->len);
        nd->text[nd->len] = '\0';
        nd->null =
            ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag && is_null_text(nd->text);
        nd->weight = 1;
        nd->done = true;
    }
    if ((anchor && !anchor_set(b, anchor, nd)) || !attach(b, nd))
        return build_nomem(b);
    if (kind != NODE_SCALAR)
        b->stack[b->depth++] = nd;
}

static void on_end(struct builder *b)
{
    if (b->depth == 0)
        return;
    struct node *nd = b->stack[--b->depth];
    uint64_t w = 1;
    uint32_t h = 0;
    for (size_t i = 0; i < nd->n; i++) {
        const struct node *k = deref(nd->kids[i]);
        w += k->weight;
        if (k->height > h)
            h = k->height;
    }
    /* w <= total <= SHOAL_CAP_CONFIG_NODES: every node and alias was
     * counted into total before it got here. */
    nd->weight = (uint32_t)w;
    nd->height = h + 1;
    nd->done = true;
}

/* Aliases are expanded by reference: the alias node points at the anchored
 * node and walks follow it. The expanded size and depth are known when the
 * alias is read (each finished node knows its weight and height), so an
 * alias bomb is refused right there, before anything walks it. */
static void on_alias(struct builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    const char *name = (const char *)ev->data.alias.anchor;
    char shown[80];
    show(shown, sizeof(shown), name, strlen(name));
    struct anchor *a = anchor_find(b, name);
    if (!a) {
        build_problem(b, m, "alias *%s has no anchor &%s before it", shown, shown);
        b->stop = b->broken = true;
        return;
    }
    const struct node *t = a->node;
    if (!t->done) {
        build_problem(b, m, "alias *%s refers to a node that contains it", shown);
        b->stop = b->broken = true;
        return;
    }
    if (b->total + t->weight > SHOAL_CAP_CONFIG_NODES) {
        build_problem(b, m, "alias *%s expands the document past %u nodes (alias bomb?)", shown,
                      SHOAL_CAP_CONFIG_NODES);
        b->stop = b->broken = true;
        return;
    }
    if (b->depth + t->height > SHOAL_CAP_CONFIG_DEPTH) {
        build_problem(b, m, "alias *%s nests deeper than %u levels", shown, SHOAL_CAP_CONFIG_DEPTH);
        b->stop = b->broken = true;
        return;
    }
    b->total += t->weight;
    struct node *nd = node_new(b, NODE_ALIAS, m);
    if (!nd)
        return build_nomem(b);
    nd->target = a->node;
    nd->done = true;
    if (!attach(b, nd))
        return build_nomem(b);
}

/* 1-based line and column of a byte offset, counting columns in characters
 * as libyaml does. */
static void offset_linecol(const char *text, size_t n, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    if (off > n)
        off = n;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= n || text[i + 1] != '\n'))) {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80 && ch != '\r') {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* The byte at a 0-based libyaml mark, or -1 past the end. */
static int byte_at(const char *text, size_t n, size_t line, size_t col)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < n; i++)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= n || text[i + 1] != '\n')))
            l++;
    for (size_t c = 0; i < n; i++) {
        if (((unsigned char)text[i] & 0xC0) == 0x80)
            continue;
        if (c++ == col)
            return (unsigned char)text[i];
    }
    return -1;
}

static void syntax_problem(struct builder *b, const yaml_parser_t *p)
{
    struct ctx *c = b->c;
    if (p->error == YAML_MEMORY_ERROR)
        return nomem(c);
    const char *what = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        unsigned line, col;
        offset_linecol(b->text, b->text_len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            problem_at(c, SHOAL_ERR_INVALID, "", line, col, "%s (0x%X)", what,
                       (unsigned)p->problem_value);
        else
            problem_at(c, SHOAL_ERR_INVALID, "", line, col, "%s", what);
        return;
    }
    unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
    const char *hint = "";
    if (byte_at(b->text, b->text_len, p->problem_mark.line, p->problem_mark.column) == '\t')
        hint = "; tabs cannot indent YAML, use spaces";
    if (p->context)
        problem_at(c, SHOAL_ERR_INVALID, "", line, col,
                   "YAML syntax error: %s %s (started at line %u, column %u)%s", what, p->context,
                   (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1, hint);
    else
        problem_at(c, SHOAL_ERR_INVALID, "", line, col, "YAML syntax error: %s%s", what, hint);
}

struct tree {
    struct node *root; /* NULL for an empty stream */
    struct node *all;
};

/* Parse text into t. False when the tree cannot be validated (a syntax
 * error, a cap, an alias problem, out of memory); problems are in c. */
static bool build_tree(struct ctx *c, const char *text, size_t n, struct tree *t)
{
    struct builder b;
    memset(&b, 0, sizeof(b));
    b.c = c;
    b.text = text;
    b.text_len = n;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        nomem(c);
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    /* Forced UTF-8 (a UTF-8 BOM is still skipped): a reader error's byte
     * offset then maps straight onto the text for line:col. */
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    int docs = 0;
    bool done = false;
    while (!done && !b.stop) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_problem(&b, &p);
            b.broken = true;
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                problem_at(c, SHOAL_ERR_INVALID, "", (unsigned)ev.start_mark.line + 1,
                           (unsigned)ev.start_mark.column + 1,
                           "a second YAML document starts here; a config file holds one");
                b.stop = true; /* the first document is still checked */
            }
            break;
        case YAML_SCALAR_EVENT:
            on_node(&b, NODE_SCALAR, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            on_node(&b, NODE_SEQ, &ev);
            break;
        case YAML_MAPPING_START_EVENT:
            on_node(&b, NODE_MAP, &ev);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            on_end(&b);
            break;
        case YAML_ALIAS_EVENT:
            on_alias(&b, &ev);
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (size_t i = 0; i < b.nanchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    free(b.slots);
    t->root = b.root;
    t->all = b.all;
    return !b.broken;
}

/* ---- Schema walk helpers ---- */

static size_t path_push(struct ctx *c, const char *seg, size_t len)
{
    size_t old = strlen(c->path), cur = old;
    char shown[80];
    /* An index ("[3]") follows its list directly: tools.dirs[3]. */
    path_append(c->path, sizeof(c->path), &cur, show(shown, sizeof(shown), seg, len),
                !(len && seg[0] == '['));
    return old;
}

static void path_pop(struct ctx *c, size_t old)
{
    c->path[old] = '\0';
}

static void problem(struct ctx *c, enum shoal_err err, const struct node *at, const char *fmt, ...)
    SHOAL_PRINTF(4, 5);
static void problem(struct ctx *c, enum shoal_err err, const struct node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(c, err, c->path, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
}

static bool is_null(const struct node *nd)
{
    nd = deref(nd);
    return !nd || (nd->kind == NODE_SCALAR && nd->null);
}

/* The closest of names to key: a case-insensitive match, or an edit
 * distance of at most 2 that is less than the name's length. */
static const char *suggest(const char *key, const char *const *names, size_t count)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < count; i++) {
        if (!strcasecmp(key, names[i]))
            return names[i];
        unsigned d = shoal_edit_distance(key, names[i], 2);
        if (d < best_d && d < strlen(names[i])) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

static void unknown_key(struct ctx *c, const struct node *key, const char *const *names,
                        size_t count)
{
    const struct node *k = deref(key);
    char shown[80];
    show(shown, sizeof(shown), k->text, k->len);
    size_t mark = path_push(c, k->text, k->len);
    const char *s = suggest(k->text, names, count);
    if (s) {
        problem(c, SHOAL_ERR_INVALID, key, "unknown key '%s'; did you mean '%s'?", shown, s);
    } else {
        char list[256];
        size_t len = 0;
        list[0] = '\0';
        for (size_t i = 0; i < count; i++) {
            int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
            if (w < 0 || (size_t)w >= sizeof(list) - len)
                break;
            len += (size_t)w;
        }
        problem(c, SHOAL_ERR_INVALID, key, "unknown key '%s'; expected one of: %s", shown, list);
    }
    path_pop(c, mark);
}

/* Check that at is a mapping whose keys are all in names (no duplicates).
 * On return vals[i] is the value of names[i], NULL when absent or null, and
 * keys[i] its key node. A null at is an empty mapping (all defaults).
 * False when at is not a mapping (reported). */
static bool walk_map(struct ctx *c, const struct node *at, const char *const *names, size_t count,
                     const struct node **keys, const struct node **vals)
{
    for (size_t i = 0; i < count; i++)
        keys[i] = vals[i] = NULL;
    if (is_null(at))
        return true;
    const struct node *m = deref(at);
    if (m->kind != NODE_MAP) {
        char got[96];
        problem(c, SHOAL_ERR_INVALID, at, "expected a mapping, got %s",
                describe(m, got, sizeof(got)));
        return false;
    }
    for (size_t p = 0; p + 1 < m->n; p += 2) {
        const struct node *key = m->kids[p], *k = deref(key);
        if (k->kind != NODE_SCALAR) {
            problem(c, SHOAL_ERR_INVALID, key, "keys must be strings, got %s", kind_name(k->kind));
            continue;
        }
        size_t i = 0;
        while (i < count && strcmp(names[i], k->text) != 0)
            i++;
        if (i == count) {
            unknown_key(c, key, names, count);
            continue;
        }
        if (keys[i]) {
            size_t mark = path_push(c, names[i], strlen(names[i]));
            problem(c, SHOAL_ERR_INVALID, key, "duplicate key '%s' (first set at line %u)",
                    names[i], keys[i]->line);
            path_pop(c, mark);
            continue;
        }
        keys[i] = key;
        vals[i] = is_null(m->kids[p + 1]) ? NULL : m->kids[p + 1];
    }
    return true;
}

/* The scalar behind at, or NULL after reporting "expected <what>". */
static const struct node *want_scalar(struct ctx *c, const struct node *at, const char *what)
{
    const struct node *v = deref(at);
    if (v->kind == NODE_SCALAR)
        return v;
    problem(c, SHOAL_ERR_INVALID, at, "expected %s, got %s", what, kind_name(v->kind));
    return NULL;
}

/* ---- Numbers with units ---- */

enum unit_kind { UNIT_COUNT, UNIT_BYTES, UNIT_MS };

struct unit {
    const char *suffix;
    uint64_t scale;
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"KiB", 1024},
    {"MiB", 1024 * 1024},
    {"GiB", 1024 * 1024 * 1024},
};
static const struct unit duration_units[] = {
    {"", 1},          {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
    {"d", 86400000u},
};

/* Render v with the largest unit that divides it, the way config_print and
 * range messages show it ("16KiB", "1000B", "10s", "250ms", "100"). */
static const char *fmt_value(enum unit_kind k, uint64_t v, char *out, size_t n)
{
    static const struct unit bin[] = {{"GiB", 1u << 30}, {"MiB", 1u << 20}, {"KiB", 1u << 10}};
    static const struct unit dur[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    const struct unit *u = k == UNIT_BYTES ? bin : dur;
    const char *last = k == UNIT_BYTES ? "B" : "ms";
    if (k == UNIT_COUNT) {
        snprintf(out, n, "%llu", (unsigned long long)v);
        return out;
    }
    if (v == 0) {
        snprintf(out, n, "0%s", k == UNIT_BYTES ? "B" : "s");
        return out;
    }
    size_t nu = k == UNIT_BYTES ? SHOAL_ARRAY_LEN(bin) : SHOAL_ARRAY_LEN(dur);
    for (size_t i = 0; i < nu; i++) {
        if (v % u[i].scale == 0) {
            snprintf(out, n, "%llu%s", (unsigned long long)(v / u[i].scale), u[i].suffix);
            return out;
        }
    }
    snprintf(out, n, "%llu%s", (unsigned long long)v, last);
    return out;
}

/* Parse a scalar as a whole decimal number with an optional unit and check
 * it against [min, max]. No sign, no fraction, no leading zero (YAML 1.1
 * would read 010 as octal), no space before the unit. */
static bool parse_number(struct ctx *c, const struct node *at, enum unit_kind k, uint64_t min,
                         uint64_t max, uint64_t *out)
{
    static const char *const what[] = {
        [UNIT_COUNT] = "an integer",
        [UNIT_BYTES] = "a size",
        [UNIT_MS] = "a duration",
    };
    static const char *const hint[] = {
        [UNIT_COUNT] = "a whole number such as 100",
        [UNIT_BYTES] = "a size such as 16KiB (bytes, or a whole number with B, KB, MB, GB, KiB, "
                       "MiB or GiB)",
        [UNIT_MS] = "a duration such as 10s (milliseconds, or a whole number with ms, s, m, h "
                    "or d)",
    };
    const struct node *v = want_scalar(c, at, what[k]);
    if (!v)
        return false;
    char shown[80], lo[32], hi[32];
    show(shown, sizeof(shown), v->text, v->len);
    const char *s = v->text;
    bool neg = s[0] == '-';
    size_t d = neg, digits;
    while (s[d] >= '0' && s[d] <= '9')
        d++;
    digits = d - neg;
    const char *suffix = s + d;
    const struct unit *units = k == UNIT_BYTES ? size_units : duration_units;
    size_t nunits = k == UNIT_BYTES ? SHOAL_ARRAY_LEN(size_units)
                    : k == UNIT_MS  ? SHOAL_ARRAY_LEN(duration_units)
                                    : 1;
    const struct unit *u = NULL;
    for (size_t i = 0; i < nunits; i++)
        if (!strcmp(suffix, units[i].suffix))
            u = &units[i];
    if (digits == 0 || !u || (digits > 1 && s[neg] == '0')) {
        problem(c, SHOAL_ERR_INVALID, at, "expected %s, got '%s'%s", hint[k], shown,
                k != UNIT_COUNT && strchr(s, '.') ? " (no fractions: use a smaller unit)" : "");
        return false;
    }
    int64_t n = 0;
    enum shoal_err rc = shoal_parse_i64(s + neg, digits, 0, INT64_MAX, &n);
    bool in_range = rc == SHOAL_OK && (!neg || n == 0) && (uint64_t)n <= UINT64_MAX / u->scale;
    uint64_t val = in_range ? (uint64_t)n * u->scale : 0;
    if (!in_range || val < min || val > max) {
        problem(c, SHOAL_ERR_INVALID, at, "out of range: must be between %s and %s (got '%s')",
                fmt_value(k, min, lo, sizeof(lo)), fmt_value(k, max, hi, sizeof(hi)), shown);
        return false;
    }
    *out = val;
    return true;
}

/* ---- Paths ---- */

static bool is_env_name(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

/* Expand a leading ~ ($HOME), ${VAR} anywhere, and $$ (a literal $, so
 * config_print can write any path back). Unset or empty variables are
 * errors at at; so is a result longer than PATH_MAX. */
static bool expand_path(struct ctx *c, const struct node *at, const char *in, char *out, size_t n)
{
    size_t o = 0, i = 0;
    char shown[80];
#define PUT(p, len)                                                                                \
    do {                                                                                           \
        if (o + (len) >= n)                                                                        \
            goto too_long;                                                                         \
        memcpy(out + o, (p), (len));                                                               \
        o += (len);                                                                                \
    } while (0)
    if (in[0] == '~') {
        if (in[1] != '\0' && in[1] != '/') {
            problem(c, SHOAL_ERR_INVALID, at,
                    "~user paths are not supported; use ~/, ${VAR} or an absolute path");
            return false;
        }
        const char *home = getenv("HOME");
        if (!home || !*home) {
            problem(c, SHOAL_ERR_INVALID, at, "cannot expand ~: HOME is not set");
            return false;
        }
        PUT(home, strlen(home));
        i = 1;
    }
    while (in[i]) {
        if (in[i] == '$' && in[i + 1] == '$') {
            PUT("$", 1);
            i += 2;
            continue;
        }
        if (in[i] != '$' || in[i + 1] != '{') {
            PUT(in + i, 1);
            i++;
            continue;
        }
        const char *name = in + i + 2, *end = strchr(name, '}');
        if (!end) {
            problem(c, SHOAL_ERR_INVALID, at, "unterminated ${ in '%s'",
                    show(shown, sizeof(shown), in, strlen(in)));
            return false;
        }
        size_t nlen = (size_t)(end - name);
        show(shown, sizeof(shown), name, nlen);
        if (!is_env_name(name, nlen)) {
            problem(c, SHOAL_ERR_INVALID, at, "'${%s}' is not a valid variable name", shown);
            return false;
        }
        char var[256];
        if (nlen >= sizeof(var)) {
            problem(c, SHOAL_ERR_INVALID, at, "variable name %s is too long", shown);
            return false;
        }
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        const char *val = getenv(var);
        if (!val || !*val) {
            problem(c, SHOAL_ERR_INVALID, at, "environment variable %s is %s", shown,
                    val ? "empty" : "not set");
            return false;
        }
        PUT(val, strlen(val));
        i = (size_t)(end - in) + 1;
    }
    out[o] = '\0';
    return true;
too_long:
    problem(c, SHOAL_ERR_INVALID, at, "path is longer than %zu bytes after expansion", n - 1);
    return false;
#undef PUT
}

/* ---- Sections ---- */

static void set_str(struct ctx *c, char **dst, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return nomem(c);
    free(*dst);
    *dst = copy;
}

/* text (the scalar at at) expanded into an absolute path in out; false
 * once reported ("WHAT must be absolute ..."). */
static bool abs_path_text(struct ctx *c, const struct node *at, const char *text,
                          const char *what, char *out, size_t n)
{
    char shown[80];
    if (!expand_path(c, at, text, out, n))
        return false;
    if (out[0] == '/')
        return true;
    problem(c, SHOAL_ERR_INVALID, at, "%s must be absolute after expanding ~ and ${VAR} (got '%s')",
            what, show(shown, sizeof(shown), out, strlen(out)));
    return false;
}

/* The scalar at at as an absolute path (see abs_path_text). */
static bool abs_path(struct ctx *c, const struct node *at, const char *what, char *out, size_t n)
{
    const struct node *v = want_scalar(c, at, "a path");
    return v && abs_path_text(c, at, v->text, what, out, n);
}

static void check_socket(struct ctx *c, const struct node *at, struct config *cfg)
{
    char path[PATH_MAX];
    if (!abs_path(c, at, "socket path", path, sizeof(path)))
        return;
    size_t len = strlen(path);
    if (len >= SUN_PATH_BYTES) {
        problem(c, SHOAL_ERR_INVALID, at,
                "socket path is %zu bytes; a Unix socket path must be shorter than %zu bytes", len,
                SUN_PATH_BYTES);
        return;
    }
    set_str(c, &cfg->listen.socket, path);
}

/* HOST:PORT where HOST is a numeric loopback address: 127.0.0.0/8,
 * [::1], or localhost (taken as 127.0.0.1 so no resolver is involved). */
static bool check_tcp(struct ctx *c, const struct node *at, struct config *cfg)
{
    const struct node *v = want_scalar(c, at, "HOST:PORT");
    if (!v)
        return false;
    char shown[80], host[64];
    show(shown, sizeof(shown), v->text, v->len);
    const char *s = v->text, *h = s, *colon;
    size_t hlen;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        h = s + 1;
        colon = close && close[1] == ':' ? close + 1 : NULL;
        hlen = close ? (size_t)(close - h) : 0;
    } else {
        colon = strrchr(s, ':');
        hlen = colon ? (size_t)(colon - s) : 0;
        if (colon && memchr(s, ':', hlen)) {
            problem(c, SHOAL_ERR_INVALID, at,
                    "write an IPv6 address in brackets, e.g. [::1]:7878 (got '%s')", shown);
            return false;
        }
    }
    if (!colon || hlen == 0) {
        problem(c, SHOAL_ERR_INVALID, at, "expected HOST:PORT such as 127.0.0.1:7878, got '%s'",
                shown);
        return false;
    }
    bool loopback = false;
    char canon[INET6_ADDRSTRLEN] = "";
    if (hlen < sizeof(host)) {
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        struct in_addr a4;
        struct in6_addr a6;
        if (v6) {
            loopback = inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
            if (loopback)
                inet_ntop(AF_INET6, &a6, canon, sizeof(canon));
        } else if (!strcasecmp(host, "localhost")) {
            loopback = true;
            shoal_strlcpy(canon, "127.0.0.1", sizeof(canon));
        } else if (inet_pton(AF_INET, host, &a4) == 1) {
            loopback = (ntohl(a4.s_addr) >> 24) == 127;
            if (loopback)
                inet_ntop(AF_INET, &a4, canon, sizeof(canon));
        }
    }
    if (!loopback) {
        problem(c, SHOAL_ERR_INVALID, at,
                "tcp listener must be loopback (127.0.0.0/8, [::1] or localhost), got '%s'", shown);
        return false;
    }
    int64_t port;
    const char *p = colon + 1;
    if (!(p[0] >= '1' && p[0] <= '9') ||
        shoal_parse_i64(p, strlen(p), 1, 65535, &port) != SHOAL_OK) {
        problem(c, SHOAL_ERR_INVALID, at, "port must be a number from 1 to 65535 (got '%s')",
                shown);
        return false;
    }
    set_str(c, &cfg->listen.tcp_host, canon);
    cfg->listen.tcp = true;
    cfg->listen.tcp_port = (uint16_t)port;
    return true;
}

/* Read a { file: PATH } secret: a regular file nobody else can read, at
 * most SHOAL_CAP_SECRET_FILE_BYTES, minus one trailing newline. */
static void read_secret_file(struct ctx *c, const struct node *at, const char *path,
                             const char *source, struct shoal_secret **out)
{
    char shown[80];
    show(shown, sizeof(shown), path, strlen(path));
    struct stat st;
    /* stat before open so a FIFO or device is never opened at all. */
    if (stat(path, &st) != 0) {
        problem(c, errno == ENOENT ? SHOAL_ERR_NOT_FOUND : SHOAL_ERR_IO, at,
                "cannot read secret file %s: %s", shown, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        problem(c, SHOAL_ERR_INVALID, at, "secret file %s is not a regular file", shown);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        problem(c, errno == EACCES ? SHOAL_ERR_PERM : SHOAL_ERR_IO, at,
                "cannot read secret file %s: %s", shown, strerror(errno));
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        problem(c, SHOAL_ERR_INVALID, at, "secret file %s is not a regular file", shown);
        goto done;
    }
    if (st.st_mode & S_IROTH) {
        problem(c, SHOAL_ERR_PERM, at,
                "secret file %s is world-readable (mode %04o); run chmod o-r on it", shown,
                (unsigned)(st.st_mode & 07777));
        goto done;
    }
    if (st.st_size > (off_t)SHOAL_CAP_SECRET_FILE_BYTES) {
        problem(c, SHOAL_ERR_TOO_BIG, at, "secret file %s is larger than %u bytes", shown,
                SHOAL_CAP_SECRET_FILE_BYTES);
        goto done;
    }
    buf = malloc(SHOAL_CAP_SECRET_FILE_BYTES + 1);
    if (!buf) {
        nomem(c);
        goto done;
    }
    /* Read to EOF with a cap: the file may have grown since fstat. */
    for (;;) {
        ssize_t k = read(fd, buf + len, SHOAL_CAP_SECRET_FILE_BYTES + 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            problem(c, SHOAL_ERR_IO, at, "cannot read secret file %s: %s", shown, strerror(errno));
            goto done;
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len > SHOAL_CAP_SECRET_FILE_BYTES) {
            problem(c, SHOAL_ERR_TOO_BIG, at, "secret file %s is larger than %u bytes", shown,
                    SHOAL_CAP_SECRET_FILE_BYTES);
            goto done;
        }
    }
    if (len > 0 && buf[len - 1] == '\n')
        len -= len > 1 && buf[len - 2] == '\r' ? 2 : 1;
    if (len == 0) {
        problem(c, SHOAL_ERR_INVALID, at, "secret file %s is empty", shown);
        goto done;
    }
    if (shoal_secret_new(buf, len, source, out) != SHOAL_OK)
        nomem(c);
done:
    if (buf) {
        explicit_bzero(buf, SHOAL_CAP_SECRET_FILE_BYTES + 1);
        free(buf);
    }
    close(fd);
}

/* A secret is { env: NAME } or { file: PATH }, never a literal. *src_out
 * (may be NULL) gets a copy of its source ("env:X"), even when skipped. */
static void check_secret_src(struct ctx *c, const struct node *at, struct shoal_secret **out,
                             char **src_out)
{
    static const char *const names[] = {"env", "file"};
    const struct node *keys[2], *vals[2];
    const struct node *v = deref(at);
    char shown[80], source[128];
    if (v->kind == NODE_SCALAR) {
        problem(c, SHOAL_ERR_INVALID, at,
                "secrets may not be written in the file; use { env: NAME } or { file: PATH }");
        return;
    }
    if (v->kind != NODE_MAP) {
        problem(c, SHOAL_ERR_INVALID, at, "expected { env: NAME } or { file: PATH }, got %s",
                kind_name(v->kind));
        return;
    }
    if (!walk_map(c, at, names, 2, keys, vals))
        return;
    if (vals[0] && vals[1]) {
        problem(c, SHOAL_ERR_INVALID, at, "use one of env and file, not both");
        return;
    }
    if (!vals[0] && !vals[1]) {
        /* {} or { env: ~ }; when a key was unknown that error says enough. */
        if (v->n / 2 == (size_t)(keys[0] != NULL) + (keys[1] != NULL))
            problem(c, SHOAL_ERR_INVALID, at, "expected { env: NAME } or { file: PATH }");
        return;
    }
    bool env = vals[0] != NULL;
    size_t mark = path_push(c, names[env ? 0 : 1], strlen(names[env ? 0 : 1]));
    const struct node *at2 = vals[env ? 0 : 1];
    const struct node *s = want_scalar(c, at2, env ? "a variable name" : "a path");
    if (!s)
        goto out;
    show(shown, sizeof(shown), s->text, s->len);
    if (env) {
        if (!is_env_name(s->text, s->len)) {
            problem(c, SHOAL_ERR_INVALID, at2, "'%s' is not a valid environment variable name",
                    shown);
            goto out;
        }
        int k = snprintf(source, sizeof(source), "env:%s", s->text);
        if (k < 0 || (size_t)k >= sizeof(source)) {
            problem(c, SHOAL_ERR_INVALID, at2, "variable name is longer than %zu bytes",
                    sizeof(source) - 5);
            goto out;
        }
        if (src_out)
            set_str(c, src_out, source);
        if (c->skip_secrets)
            goto out;
        const char *val = getenv(s->text);
        if (!val || !*val) {
            problem(c, SHOAL_ERR_NOT_FOUND, at2, "environment variable %s is %s", shown,
                    val ? "empty" : "not set");
            goto out;
        }
        enum shoal_err rc = shoal_secret_new(val, strlen(val), source, out);
        if (rc == SHOAL_ERR_TOO_BIG)
            problem(c, rc, at2, "environment variable %s is larger than %u bytes", shown,
                    SHOAL_CAP_SECRET_FILE_BYTES);
        else if (rc != SHOAL_OK)
            nomem(c);
        goto out;
    }
    char path[PATH_MAX];
    if (!abs_path_text(c, at2, s->text, "secret file path", path, sizeof(path)))
        goto out;
    /* The source is what config_print writes back, so it must not be cut. */
    int k = snprintf(source, sizeof(source), "file:%s", path);
    if (k < 0 || (size_t)k >= sizeof(source)) {
        problem(c, SHOAL_ERR_INVALID, at2, "secret file path is longer than %zu bytes",
                sizeof(source) - 6);
        goto out;
    }
    if (src_out)
        set_str(c, src_out, source);
    if (!c->skip_secrets)
        read_secret_file(c, at2, path, source, out);
out:
    path_pop(c, mark);
}

static void check_secret(struct ctx *c, const struct node *at, struct shoal_secret **out)
{
    check_secret_src(c, at, out, NULL);
}

struct limit_key {
    const char *name;
    enum unit_kind unit;
    uint64_t min, max;
};

static const struct limit_key limit_keys[] = {
    {"header_bytes", UNIT_BYTES, 1024, 1024 * 1024},   {"header_count", UNIT_COUNT, 1, 1000},
    {"body_bytes", UNIT_BYTES, 0, 1024 * 1024 * 1024}, {"header_timeout", UNIT_MS, 100, 3600000},
    {"body_timeout", UNIT_MS, 100, 3600000},           {"keepalive_timeout", UNIT_MS, 0, 3600000},
    {"max_connections", UNIT_COUNT, 1, 100000},        {"shutdown_timeout", UNIT_MS, 0, 600000},
};

static uint64_t limit_get(const struct config_limits *l, size_t i)
{
    switch (i) {
    case 0:
        return l->header_bytes;
    case 1:
        return l->header_count;
    case 2:
        return l->body_bytes;
    case 3:
        return l->header_timeout_ms;
    case 4:
        return l->body_timeout_ms;
    case 5:
        return l->keepalive_ms;
    case 6:
        return l->max_connections;
    default:
        return l->shutdown_ms;
    }
}

/* v is within limit_keys[i]'s range, so the narrowing casts are exact. */
static void limit_set(struct config_limits *l, size_t i, uint64_t v)
{
    switch (i) {
    case 0:
        l->header_bytes = (uint32_t)v;
        break;
    case 1:
        l->header_count = (uint32_t)v;
        break;
    case 2:
        l->body_bytes = v;
        break;
    case 3:
        l->header_timeout_ms = (uint32_t)v;
        break;
    case 4:
        l->body_timeout_ms = (uint32_t)v;
        break;
    case 5:
        l->keepalive_ms = (uint32_t)v;
        break;
    case 6:
        l->max_connections = (uint32_t)v;
        break;
    default:
        l->shutdown_ms = (uint32_t)v;
        break;
    }
}

static void check_limits(struct ctx *c, const struct node *at, struct config_limits *l)
{
    enum { N = SHOAL_ARRAY_LEN(limit_keys) };
    const char *names[N];
    const struct node *keys[N], *vals[N];
    for (size_t i = 0; i < N; i++)
        names[i] = limit_keys[i].name;
    if (!walk_map(c, at, names, N, keys, vals))
        return;
    for (size_t i = 0; i < N; i++) {
        if (!vals[i])
            continue;
        size_t mark = path_push(c, names[i], strlen(names[i]));
        uint64_t v;
        if (parse_number(c, vals[i], limit_keys[i].unit, limit_keys[i].min, limit_keys[i].max, &v))
            limit_set(l, i, v);
        path_pop(c, mark);
    }
}

static void check_log_level(struct ctx *c, const struct node *at, enum shoal_log_level *out)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", "off"};
    const struct node *v = want_scalar(c, at, "a log level");
    if (!v || shoal_log_level_parse(v->text, out) == SHOAL_OK)
        return;
    char shown[80];
    show(shown, sizeof(shown), v->text, v->len);
    const char *s = suggest(v->text, levels, SHOAL_ARRAY_LEN(levels));
    if (s)
        problem(c, SHOAL_ERR_INVALID, at, "unknown log level '%s'; did you mean '%s'?", shown, s);
    else
        problem(c, SHOAL_ERR_INVALID, at,
                "unknown log level '%s'; expected one of: debug, info, warn, error, off", shown);
}

/* One of a fixed set of words; *out gets its index. */
static bool check_choice(struct ctx *c, const struct node *at, const char *const *words, size_t n,
                         size_t *out)
{
    const struct node *v = want_scalar(c, at, "a word");
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v->text, words[i])) {
            *out = i;
            return true;
        }
    }
    char shown[80], list[160];
    show(shown, sizeof(shown), v->text, v->len);
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", words[i]);
        if (w < 0 || (size_t)w >= sizeof(list) - len)
            break;
        len += (size_t)w;
    }
    const char *s = suggest(v->text, words, n);
    if (s)
        problem(c, SHOAL_ERR_INVALID, at, "unknown value '%s'; did you mean '%s'?", shown, s);
    else
        problem(c, SHOAL_ERR_INVALID, at, "unknown value '%s'; expected one of: %s", shown, list);
    return false;
}

enum {
    TK_ENABLED,
    TK_PATH,
    TK_RETENTION,
    TK_MAX_SIZE,
    TK_PAYLOAD,
    TK_REDACT,
    TK_SYNC,
    TK_QUEUE,
    TK_COUNT
};
static const char *const traces_keys[TK_COUNT] = {
    "enabled", "path", "retention", "max_size", "payload_bytes", "redact", "sync", "queue",
};
static const char *const bool_words[] = {"false", "true"};
static const char *const redact_words[] = {"none", "content"};
static const char *const sync_words[] = {"normal", "full"};

static void check_traces(struct ctx *c, const struct node *at, struct config_traces *t,
                         bool *path_given)
{
    const struct node *k[TK_COUNT], *v[TK_COUNT];
    if (!walk_map(c, at, traces_keys, TK_COUNT, k, v))
        return;
    for (size_t i = 0; i < TK_COUNT; i++) {
        if (!v[i])
            continue;
        size_t mark = path_push(c, traces_keys[i], strlen(traces_keys[i]));
        size_t w;
        uint64_t n;
        char path[PATH_MAX];
        switch (i) {
        case TK_ENABLED:
            if (check_choice(c, v[i], bool_words, 2, &w))
                t->enabled = w == 1;
            break;
        case TK_PATH:
            if (!abs_path(c, v[i], "traces path", path, sizeof(path)))
                break;
            *path_given = true;
            set_str(c, &t->path, path);
            break;
        case TK_RETENTION:
            if (parse_number(c, v[i], UNIT_MS, 0, 3650ull * 86400000ull, &n))
                t->retention_ms = n;
            break;
        case TK_MAX_SIZE:
            if (parse_number(c, v[i], UNIT_BYTES, 0, 1ull << 50, &n)) {
                if (n != 0 && n < (1u << 20))
                    problem(c, SHOAL_ERR_INVALID, v[i],
                            "max_size must be 0 (no limit) or at least 1MiB");
                else
                    t->max_bytes = n;
            }
            break;
        case TK_PAYLOAD:
            if (parse_number(c, v[i], UNIT_BYTES, 64, 64u << 20, &n))
                t->payload_bytes = (uint32_t)n;
            break;
        case TK_REDACT:
            if (check_choice(c, v[i], redact_words, 2, &w))
                t->redact = w == 1;
            break;
        case TK_SYNC:
            if (check_choice(c, v[i], sync_words, 2, &w))
                t->sync_full = w == 1;
            break;
        default:
            if (parse_number(c, v[i], UNIT_COUNT, 16, 1u << 20, &n))
                t->queue = (uint32_t)n;
            break;
        }
        path_pop(c, mark);
    }
}

static bool model_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void model_fini(struct config_model *m)
{
    free(m->name);
    free(m->path);
    free(m->base_url);
    free(m->model);
    shoal_secret_free(m->api_key);
    free(m->api_key_source);
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->headers[i].name);
        free(m->headers[i].value);
    }
    free(m->headers);
    memset(m, 0, sizeof(*m));
}

/* A non-negative finite decimal ("0.15", "2", "1e-05"): prices. */
static bool parse_decimal(struct ctx *c, const struct node *at, double *out)
{
    const struct node *v = want_scalar(c, at, "a number");
    if (!v)
        return false;
    char shown[80];
    show(shown, sizeof(shown), v->text, v->len);
    bool ok = v->len > 0 && v->len < 64 && strspn(v->text, "0123456789.eE+-") == v->len &&
              v->text[0] != '+';
    char *end = NULL;
    double d = ok ? strtod(v->text, &end) : 0;
    if (!ok || end != v->text + v->len) {
        problem(c, SHOAL_ERR_INVALID, at, "expected a decimal number such as 0.15, got '%s'",
                shown);
        return false;
    }
    if (!isfinite(d) || d < 0 || (v->text[0] == '-' && d != 0)) {
        problem(c, SHOAL_ERR_INVALID, at, "must be a non-negative finite number (got '%s')",
                shown);
        return false;
    }
    *out = d == 0 ? 0 : d;
    return true;
}

/* Whether a base_url's host is loopback (127.0.0.0/8, ::1, localhost), the
 * only hosts plain http:// may reach (fetch's allow_loopback agrees). */
static bool url_host_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h)
        return false;
    h += 3;
    const char *at = strpbrk(h, "@/?#");
    if (at && *at == '@')
        h = at + 1;
    if (!strncmp(h, "[::1]", 5))
        return h[5] == '\0' || h[5] == ':' || h[5] == '/';
    size_t n = strcspn(h, ":/?#");
    if (n == 9 && !strncasecmp(h, "localhost", 9))
        return true;
    if (n < 7 || n > 15 || strncmp(h, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.')
            dots++;
        else if (h[i] < '0' || h[i] > '9')
            return false;
    }
    return dots == 3;
}

/* A header name is an HTTP token; a value has no control bytes. */
static bool header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

/* A mapping whose keys the user names (models, grants, headers): the map
 * node after checking its kind and size, or NULL once reported. */
static const struct node *name_map(struct ctx *c, const struct node *at, const char *what,
                                   size_t max)
{
    const struct node *m = deref(at);
    if (m->kind != NODE_MAP) {
        char got[96];
        problem(c, SHOAL_ERR_INVALID, at, "expected a mapping of %s, got %s", what,
                describe(m, got, sizeof(got)));
        return NULL;
    }
    if (m->n / 2 > max) {
        problem(c, SHOAL_ERR_INVALID, at, "%zu entries; at most %zu %s", m->n / 2, max, what);
        return NULL;
    }
    return m;
}

static void check_model_headers(struct ctx *c, const struct node *at, struct config_model *cm)
{
    const struct node *m = name_map(c, at, "header names to values", CONFIG_MODEL_HEADERS_MAX);
    if (!m)
        return;
    size_t n = m->n / 2;
    cm->headers = calloc(n ? n : 1, sizeof(*cm->headers));
    if (!cm->headers)
        return nomem(c);
    for (size_t p = 0; p + 1 < m->n; p += 2) {
        const struct node *k = deref(m->kids[p]);
        char shown[80];
        if (k->kind != NODE_SCALAR) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p], "header names must be strings");
            continue;
        }
        size_t mark = path_push(c, k->text, k->len);
        const struct node *v = want_scalar(c, m->kids[p + 1], "a header value");
        if (!header_name_ok(k->text)) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p], "'%s' is not a header name",
                    show(shown, sizeof(shown), k->text, k->len));
        } else if (!strcasecmp(k->text, "authorization") || !strcasecmp(k->text, "x-api-key")) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p],
                    "'%s' carries the key: use api_key: { env: NAME } or { file: PATH }",
                    k->text);
        } else if (v) {
            bool ok = true;
            for (size_t i = 0; i < v->len; i++)
                if ((unsigned char)v->text[i] < 0x20 || v->text[i] == 0x7F)
                    ok = false;
            if (!ok) {
                problem(c, SHOAL_ERR_INVALID, m->kids[p + 1],
                        "header value may not contain control characters");
            } else {
                struct config_header *h = &cm->headers[cm->n_headers];
                set_str(c, &h->name, k->text);
                set_str(c, &h->value, v->text);
                if (h->name && h->value)
                    cm->n_headers++;
                else
                    free(h->name), free(h->value), h->name = h->value = NULL;
            }
        }
        path_pop(c, mark);
    }
}

enum {
    MK_PROVIDER,
    MK_PATH,
    MK_CONTEXT,
    MK_KEEP_ALIVE,
    MK_BASE_URL,
    MK_MODEL,
    MK_API_KEY,
    MK_HEADERS,
    MK_TIMEOUTS,
    MK_RETRY,
    MK_PRICE,
    MK_COUNT
};
static const char *const model_keys[MK_COUNT] = {
    "provider", "path", "context", "keep_alive", "base_url", "model", "api_key", "headers", "timeouts",
    "retry",    "price",
};
static const char *const provider_words[] = {"local", "openai", "anthropic"};
static const char *const model_timeout_keys[] = {"connect", "first_byte", "total"};
static const char *const model_retry_keys[] = {"attempts", "backoff"};
static const char *const model_price_keys[] = {"input_per_mtok", "output_per_mtok",
                                               "cached_per_mtok"};

/* The remote keys of one model (provider openai or anthropic). */
static void check_remote_model(struct ctx *c, const struct node *at, const struct node *const *v,
                               struct config_model *cm)
{
    char shown[80];
    for (size_t i = MK_PATH; i <= MK_KEEP_ALIVE; i++)
        if (v[i]) {
            size_t m2 = path_push(c, model_keys[i], strlen(model_keys[i]));
            problem(c, SHOAL_ERR_INVALID, v[i], "%s: is only for provider: local",
                    model_keys[i]);
            path_pop(c, m2);
        }
    size_t m2 = path_push(c, "base_url", 8);
    const struct node *s = v[MK_BASE_URL] ? want_scalar(c, v[MK_BASE_URL], "a URL") : NULL;
    if (!v[MK_BASE_URL]) {
        problem(c, SHOAL_ERR_INVALID, at,
                "a remote model needs base_url: (e.g. https://api.openai.com/v1)");
    } else if (s) {
        show(shown, sizeof(shown), s->text, s->len);
        bool https = !strncasecmp(s->text, "https://", 8);
        bool http = !strncasecmp(s->text, "http://", 7);
        if ((!https && !http) || s->len <= (size_t)(https ? 8 : 7) || s->len > 2048 ||
            strpbrk(s->text, " \t\r\n")) {
            problem(c, SHOAL_ERR_INVALID, v[MK_BASE_URL],
                    "expected an http(s) URL such as https://api.openai.com/v1, got '%s'",
                    shown);
        } else if (http && !url_host_is_loopback(s->text)) {
            problem(c, SHOAL_ERR_INVALID, v[MK_BASE_URL],
                    "base_url must be https:// (plain http:// only for loopback hosts: "
                    "127.0.0.0/8, [::1], localhost), got '%s'",
                    shown);
        } else {
            set_str(c, &cm->base_url, s->text);
        }
    }
    path_pop(c, m2);
    m2 = path_push(c, "model", 5);
    s = v[MK_MODEL] ? want_scalar(c, v[MK_MODEL], "the provider's model name") : NULL;
    if (!v[MK_MODEL])
        problem(c, SHOAL_ERR_INVALID, at,
                "a remote model needs model: (the provider's model name, e.g. gpt-4o-mini)");
    else if (s && (s->len == 0 || s->len > 256))
        problem(c, SHOAL_ERR_INVALID, v[MK_MODEL], "model name must be 1 to 256 bytes");
    else if (s)
        set_str(c, &cm->model, s->text);
    path_pop(c, m2);
    if (v[MK_API_KEY]) {
        m2 = path_push(c, "api_key", 7);
        bool skip = c->skip_secrets;
        if (skip && c->secrets_model && cm->name && !strcmp(c->secrets_model, cm->name))
            c->skip_secrets = false;
        check_secret_src(c, v[MK_API_KEY], &cm->api_key, &cm->api_key_source);
        c->skip_secrets = skip;
        path_pop(c, m2);
    }
    if (v[MK_HEADERS]) {
        m2 = path_push(c, "headers", 7);
        check_model_headers(c, v[MK_HEADERS], cm);
        path_pop(c, m2);
    }
    const struct node *k3[3], *v3[3];
    uint64_t n;
    if (v[MK_TIMEOUTS]) {
        m2 = path_push(c, "timeouts", 8);
        uint32_t *dst[3] = {&cm->connect_timeout_ms, &cm->first_byte_timeout_ms,
                            &cm->total_timeout_ms};
        if (walk_map(c, v[MK_TIMEOUTS], model_timeout_keys, 3, k3, v3))
            for (size_t i = 0; i < 3; i++) {
                size_t m3 = path_push(c, model_timeout_keys[i], strlen(model_timeout_keys[i]));
                if (v3[i] && parse_number(c, v3[i], UNIT_MS, 100, 3600000, &n))
                    *dst[i] = (uint32_t)n;
                path_pop(c, m3);
            }
        path_pop(c, m2);
    }
    if (v[MK_RETRY]) {
        m2 = path_push(c, "retry", 5);
        if (walk_map(c, v[MK_RETRY], model_retry_keys, 2, k3, v3)) {
            size_t m3 = path_push(c, "attempts", 8);
            if (v3[0] && parse_number(c, v3[0], UNIT_COUNT, 1, 20, &n))
                cm->retry_attempts = (uint32_t)n;
            path_pop(c, m3);
            m3 = path_push(c, "backoff", 7);
            if (v3[1] && parse_number(c, v3[1], UNIT_MS, 1, 600000, &n))
                cm->retry_backoff_ms = (uint32_t)n;
            path_pop(c, m3);
        }
        path_pop(c, m2);
    }
    if (v[MK_PRICE]) {
        m2 = path_push(c, "price", 5);
        double *dst[3] = {&cm->price_input_per_mtok, &cm->price_output_per_mtok,
                          &cm->price_cached_per_mtok};
        if (walk_map(c, v[MK_PRICE], model_price_keys, 3, k3, v3))
            for (size_t i = 0; i < 3; i++) {
                size_t m3 = path_push(c, model_price_keys[i], strlen(model_price_keys[i]));
                if (v3[i])
                    parse_decimal(c, v3[i], dst[i]);
                path_pop(c, m3);
            }
        path_pop(c, m2);
    }
}

/* models: a mapping of names to model definitions. */
static void check_models(struct ctx *c, const struct node *at, struct config *cfg)
{
    if (is_null(at))
        return;
    const struct node *m = name_map(c, at, "model names", CONFIG_MODELS_MAX);
    if (!m)
        return;
    size_t n = m->n / 2;
    cfg->models = calloc(n ? n : 1, sizeof(*cfg->models));
    if (!cfg->models)
        return nomem(c);
    for (size_t p = 0; p + 1 < m->n; p += 2) {
        const struct node *key = deref(m->kids[p]);
        char shown[80];
        if (key->kind != NODE_SCALAR) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p], "model names must be strings");
            continue;
        }
        size_t mark = path_push(c, key->text, key->len);
        if (!model_name_ok(key->text, key->len)) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p],
                    "model name '%s' must be 1 to 64 of A-Z a-z 0-9 . _ -",
                    show(shown, sizeof(shown), key->text, key->len));
            path_pop(c, mark);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < cfg->n_models && !dup; i++)
            dup = !strcmp(cfg->models[i].name, key->text);
        if (dup) {
            problem(c, SHOAL_ERR_INVALID, m->kids[p], "model '%s' is defined twice", key->text);
            path_pop(c, mark);
            continue;
        }
        const struct node *k[MK_COUNT], *v[MK_COUNT];
        struct config_model *cm = &cfg->models[cfg->n_models];
        cm->connect_timeout_ms = 10000;
        cm->first_byte_timeout_ms = 60000;
        cm->total_timeout_ms = 120000;
        cm->retry_attempts = 3;
        cm->retry_backoff_ms = 500;
        cm->price_cached_per_mtok = -1;
        set_str(c, &cm->name, key->text);
        if (walk_map(c, m->kids[p + 1], model_keys, MK_COUNT, k, v)) {
            size_t m2 = path_push(c, "provider", 8);
            size_t w = 0;
            bool known = !v[MK_PROVIDER] || check_choice(c, v[MK_PROVIDER], provider_words, 3, &w);
            cm->provider = (enum config_provider)w;
            path_pop(c, m2);
            if (!known) {
                /* The other keys mean nothing without a provider. */
            } else if (cm->provider != CONFIG_PROVIDER_LOCAL) {
                check_remote_model(c, m->kids[p + 1], v, cm);
            } else {
                for (size_t i = MK_BASE_URL; i < MK_COUNT; i++)
                    if (v[i]) {
                        m2 = path_push(c, model_keys[i], strlen(model_keys[i]));
                        problem(c, SHOAL_ERR_INVALID, v[i],
                                "%s: is only for remote providers (openai, anthropic)",
                                model_keys[i]);
                        path_pop(c, m2);
                    }
                m2 = path_push(c, "path", 4);
                char path[PATH_MAX];
                if (!v[MK_PATH])
                    problem(c, SHOAL_ERR_INVALID, m->kids[p + 1],
                            "a local model needs path: (its GGUF file)");
                else if (abs_path(c, v[MK_PATH], "model path", path, sizeof(path)))
                    set_str(c, &cm->path, path);
                path_pop(c, m2);
                m2 = path_push(c, "context", 7);
                uint64_t ctxn;
                if (v[MK_CONTEXT] &&
                    parse_number(c, v[MK_CONTEXT], UNIT_COUNT, 16, 1u << 20, &ctxn))
                    cm->context = (uint32_t)ctxn;
                path_pop(c, m2);
                m2 = path_push(c, "keep_alive", 10);
                uint64_t ka;
                cm->keep_alive_ms = CONFIG_KEEP_ALIVE_DEFAULT_MS;
                if (v[MK_KEEP_ALIVE] &&
                    parse_number(c, v[MK_KEEP_ALIVE], UNIT_MS, 0, CONFIG_KEEP_ALIVE_MAX_MS, &ka))
                    cm->keep_alive_ms = ka;
                path_pop(c, m2);
            }
        }
        /* The entry counts once it has a name, so config_free frees it all. */
        if (cm->name)
            cfg->n_models++;
        else
            model_fini(cm);
        path_pop(c, mark);
    }
}

/* A sequence of scalars (or one scalar) into a fresh array of strings. */
static bool str_list(struct ctx *c, const struct node *at, size_t max, const char *what,
                     bool paths, char ***out, size_t *n)
{
    const struct node *v = deref(at);
    const struct node *const *items = &at;
    size_t count = 1;
    if (v->kind == NODE_SEQ) {
        items = (const struct node *const *)v->kids;
        count = v->n;
    } else if (v->kind != NODE_SCALAR) {
        problem(c, SHOAL_ERR_INVALID, at, "expected a list of %s", what);
        return false;
    }
    if (count > max) {
        problem(c, SHOAL_ERR_INVALID, at, "%zu %s; at most %zu", count, what, max);
        return false;
    }
    char **arr = calloc(count ? count : 1, sizeof(*arr));
    if (!arr) {
        nomem(c);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char idx[24], path[PATH_MAX];
        int k = snprintf(idx, sizeof(idx), "[%zu]", i);
        size_t mark = path_push(c, idx, (size_t)k);
        const struct node *it = want_scalar(c, items[i], what);
        if (!it) {
            ok = false;
        } else if (paths) {
            if (abs_path_text(c, items[i], it->text, "path", path, sizeof(path)))
                set_str(c, &arr[i], path);
            else
                ok = false;
        } else {
            set_str(c, &arr[i], it->text);
        }
        path_pop(c, mark);
    }
    *out = arr;
    *n = count;
    return ok;
}

static void free_strs(char **a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i]);
    free(a);
}

/* A host pattern: a DNS name (letters, digits, '-', '.'), optionally
 * "*." in front, or an IPv4 literal; optionally ":PORT" (without one only
 * the scheme's default port matches). No scheme or path. */
static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    if (!strncmp(h, "*.", 2))
        h += 2;
    const char *colon = strchr(h, ':');
    size_t hl = colon ? (size_t)(colon - h) : strlen(h);
    for (size_t i = 0; i < hl; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            return false;
    }
    int64_t port;
    if (colon && shoal_parse_i64(colon + 1, strlen(colon + 1), 1, 65535, &port) != SHOAL_OK)
        return false;
    return hl && h[0] != '.';
}

static void check_grant(struct ctx *c, const struct node *at, struct config_grant *g)
{
    static const char *const keys[] = {"http", "fs", "kv"};
    static const char *const httpk[] = {"allow_hosts", "allow_http"};
    const struct node *k[3], *v[3];
    if (!walk_map(c, at, keys, 3, k, v))
        return;
    size_t w;
    for (int i = 1; i <= 2; i++) {
        if (!v[i])
            continue;
        size_t mark = path_push(c, keys[i], strlen(keys[i]));
        if (check_choice(c, v[i], bool_words, 2, &w))
            *(i == 1 ? &g->fs : &g->kv) = w == 1;
        path_pop(c, mark);
    }
    if (!v[0])
        return;
    size_t mark = path_push(c, "http", 4);
    const struct node *hk[2], *hv[2];
    if (walk_map(c, v[0], httpk, 2, hk, hv)) {
        g->http = true;
        size_t m2 = path_push(c, "allow_hosts", 11);
        if (!hv[0]) {
            problem(c, SHOAL_ERR_INVALID, v[0],
                    "http needs allow_hosts: the hosts this tool may reach");
        } else if (str_list(c, hv[0], CONFIG_HOSTS_MAX, "host names", false, &g->allow_hosts,
                            &g->n_hosts)) {
            for (size_t i = 0; i < g->n_hosts; i++) {
                if (g->allow_hosts[i] && !host_ok(g->allow_hosts[i])) {
                    char shown[80];
                    problem(c, SHOAL_ERR_INVALID, hv[0],
                            "'%s' is not a host name (host or host:port, no scheme or path; "
                            "\"*.\" may lead)",
                            show(shown, sizeof(shown), g->allow_hosts[i],
                                 strlen(g->allow_hosts[i])));
                }
            }
        }
        path_pop(c, m2);
        m2 = path_push(c, "allow_http", 10);
        if (hv[1] && check_choice(c, hv[1], bool_words, 2, &w))
            g->allow_http = w == 1;
        path_pop(c, m2);
    }
    path_pop(c, mark);
}

enum { TO_DIRS, TO_WORKSPACE, TO_KV, TO_LIMITS, TO_GRANTS, TO_COUNT };
static const char *const tools_keys[TO_COUNT] = {"dirs", "workspace", "kv", "limits", "grants"};
static const char *const tool_limit_keys[] = {"instructions", "memory", "timeout", "result_bytes"};

static void check_tools(struct ctx *c, const struct node *at, struct config_tools *t)
{
    const struct node *k[TO_COUNT], *v[TO_COUNT];
    if (!walk_map(c, at, tools_keys, TO_COUNT, k, v))
        return;
    char path[PATH_MAX], shown[80];
    if (v[TO_DIRS]) {
        size_t mark = path_push(c, "dirs", 4);
        free_strs(t->dirs, t->n_dirs);
        t->dirs = NULL;
        t->n_dirs = 0;
        str_list(c, v[TO_DIRS], CONFIG_TOOL_DIRS_MAX, "directories", true, &t->dirs, &t->n_dirs);
        t->dirs_given = true;
        path_pop(c, mark);
    }
    for (int i = TO_WORKSPACE; i <= TO_KV; i++) {
        if (!v[i])
            continue;
        size_t mark = path_push(c, tools_keys[i], strlen(tools_keys[i]));
        if (abs_path(c, v[i], "path", path, sizeof(path)))
            set_str(c, i == TO_WORKSPACE ? &t->workspace : &t->kv_path, path);
        path_pop(c, mark);
    }
    if (v[TO_LIMITS]) {
        size_t mark = path_push(c, "limits", 6);
        const struct node *lk[4], *lv[4];
        if (walk_map(c, v[TO_LIMITS], tool_limit_keys, 4, lk, lv)) {
            uint64_t n;
            struct {
                enum unit_kind unit;
                uint64_t min, max;
            } r[4] = {{UNIT_COUNT, 1000, 10000000000ull},
                      {UNIT_BYTES, 1u << 20, 1ull << 30},
                      {UNIT_MS, 10, 600000},
                      {UNIT_BYTES, 1024, 64u << 20}};
            for (int i = 0; i < 4; i++) {
                if (!lv[i])
                    continue;
                size_t m2 = path_push(c, tool_limit_keys[i], strlen(tool_limit_keys[i]));
                if (parse_number(c, lv[i], r[i].unit, r[i].min, r[i].max, &n)) {
                    if (i == 0)
                        t->instructions = n;
                    else if (i == 1)
                        t->memory_bytes = n;
                    else if (i == 2)
                        t->timeout_ms = (uint32_t)n;
                    else
                        t->result_bytes = (uint32_t)n;
                }
                path_pop(c, m2);
            }
        }
        path_pop(c, mark);
    }
    if (v[TO_GRANTS]) {
        size_t mark = path_push(c, "grants", 6);
        const struct node *m = name_map(c, v[TO_GRANTS], "tool names", CONFIG_GRANTS_MAX);
        if (!m) {
            /* reported */
        } else if ((t->grants = calloc(m->n / 2 + 1, sizeof(*t->grants))) == NULL) {
            nomem(c);
        } else {
            for (size_t p = 0; p + 1 < m->n; p += 2) {
                const struct node *key = deref(m->kids[p]);
                if (key->kind != NODE_SCALAR)
                    continue;
                size_t m2 = path_push(c, key->text, key->len);
                bool name_ok = key->len > 0 && key->len <= 64;
                for (size_t i = 0; name_ok && i < key->len; i++) {
                    char ch = key->text[i];
                    name_ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
                }
                if (!name_ok) {
                    problem(c, SHOAL_ERR_INVALID, m->kids[p],
                            "'%s' is not a tool name ([a-z0-9_], 1 to 64)",
                            show(shown, sizeof(shown), key->text, key->len));
                } else {
                    struct config_grant *g = &t->grants[t->n_grants];
                    set_str(c, &g->tool, key->text);
                    check_grant(c, m->kids[p + 1], g);
                    if (g->tool)
                        t->n_grants++;
                }
                path_pop(c, m2);
            }
        }
        path_pop(c, mark);
    }
}

const struct config_grant *config_grant_find(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->tools.n_grants; i++)
        if (!strcmp(c->tools.grants[i].tool, name))
            return &c->tools.grants[i];
    return NULL;
}

const struct config_model *config_model_find(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (!strcmp(c->models[i].name, name))
            return &c->models[i];
    return NULL;
}

static enum shoal_err xdg_path(const char *var, const char *fallback, const char *root_dir,
                               const char *name, char *out, size_t n);

/* Walk the document against the schema, filling cfg (which holds the
 * defaults) and reporting every problem. */
static void check_root(struct ctx *c, const struct node *root, struct config *cfg)
{
    static const char *const top[] = {"listen", "auth", "limits", "log",
                                      "traces", "models", "tools", "engine"};
    static const char *const enginek[] = {"threads", "queue", "memory_budget"};
    static const char *const listen[] = {"socket", "tcp"};
    static const char *const auth[] = {"token"};
    static const char *const logk[] = {"level"};
    const struct node *tk[8], *tv[8], *k[3], *v[3];
    const struct node *tcp_at = NULL;
    bool tcp_ok = false, token_given = false, socket_given = false, traces_path_given = false;

    if (!is_null(root) && deref(root)->kind != NODE_MAP) {
        char got[96];
        problem(c, SHOAL_ERR_INVALID, root,
                "the top level must be a mapping (listen:, auth:, limits:, log:, traces:, "
                "models:, tools:, engine:), got %s",
                describe(root, got, sizeof(got)));
        return;
    }
    if (!walk_map(c, root, top, SHOAL_ARRAY_LEN(top), tk, tv))
        return;
    size_t mark = path_push(c, "listen", 6);
    if (walk_map(c, tv[0], listen, 2, k, v)) {
        size_t m2 = path_push(c, "socket", 6);
        if (v[0]) {
            socket_given = true;
            check_socket(c, v[0], cfg);
        }
        path_pop(c, m2);
        m2 = path_push(c, "tcp", 3);
        if (v[1]) {
            tcp_at = v[1];
            tcp_ok = check_tcp(c, v[1], cfg);
        }
        path_pop(c, m2);
    }
    path_pop(c, mark);

    mark = path_push(c, "auth", 4);
    if (walk_map(c, tv[1], auth, 1, k, v) && v[0]) {
        size_t m2 = path_push(c, "token", 5);
        token_given = true;
        check_secret(c, v[0], &cfg->auth_token);
        path_pop(c, m2);
    }
    path_pop(c, mark);

    mark = path_push(c, "limits", 6);
    check_limits(c, tv[2], &cfg->limits);
    path_pop(c, mark);

    mark = path_push(c, "log", 3);
    if (walk_map(c, tv[3], logk, 1, k, v) && v[0]) {
        size_t m2 = path_push(c, "level", 5);
        check_log_level(c, v[0], &cfg->log_level);
        path_pop(c, m2);
    }
    path_pop(c, mark);

    mark = path_push(c, "traces", 6);
    check_traces(c, tv[4], &cfg->traces, &traces_path_given);
    path_pop(c, mark);

    mark = path_push(c, "models", 6);
    check_models(c, tv[5], cfg);
    path_pop(c, mark);

    mark = path_push(c, "tools", 5);
    check_tools(c, tv[6], &cfg->tools);
    path_pop(c, mark);

    mark = path_push(c, "engine", 6);
    if (walk_map(c, tv[7], enginek, 3, k, v)) {
        uint64_t n;
        size_t m2 = path_push(c, "threads", 7);
        if (v[0] && parse_number(c, v[0], UNIT_COUNT, 0, CONFIG_ENGINE_THREADS_MAX, &n))
            cfg->engine.threads = (uint32_t)n;
        path_pop(c, m2);
        m2 = path_push(c, "queue", 5);
        if (v[1] && parse_number(c, v[1], UNIT_COUNT, 1, CONFIG_ENGINE_QUEUE_MAX, &n))
            cfg->engine.queue = (uint32_t)n;
        path_pop(c, m2);
        m2 = path_push(c, "memory_budget", 13);
        if (v[2] && parse_number(c, v[2], UNIT_BYTES, 0, 1ull << 50, &n))
            cfg->engine.memory_budget = n;
        path_pop(c, m2);
    }
    path_pop(c, mark);

    if (tcp_ok && !token_given) {
        mark = path_push(c, "listen.tcp", 10);
        problem(c, SHOAL_ERR_INVALID, tcp_at,
                "a tcp listener requires auth.token (e.g. auth: { token: { env: SHOAL_TOKEN } })");
        path_pop(c, mark);
    }
    if (!socket_given) {
        char path[SUN_PATH_BYTES];
        mark = path_push(c, "listen.socket", 13);
        if (config_default_socket(path, sizeof(path)) != SHOAL_OK)
            problem(c, SHOAL_ERR_INVALID, NULL,
                    "the default socket path under $XDG_RUNTIME_DIR is too long for a Unix "
                    "socket; set listen.socket");
        else
            set_str(c, &cfg->listen.socket, path);
        path_pop(c, mark);
    }
    /* Tool paths nobody set: the XDG places (a default tool directory that
     * does not exist is simply empty; one named in the file must exist). */
    struct {
        bool need;
        char **dst;
        const char *var, *fallback, *root, *name;
    } dflt[] = {
        {!cfg->tools.dirs_given, NULL, "XDG_CONFIG_HOME", ".config", "/etc/shoal", "tools"},
        {!cfg->tools.workspace, &cfg->tools.workspace, "XDG_DATA_HOME", ".local/share",
         "/var/lib/shoal", "workspace"},
        {!cfg->tools.kv_path, &cfg->tools.kv_path, "XDG_STATE_HOME", ".local/state",
         "/var/lib/shoal", "kv.db"},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(dflt); i++) {
        char path[PATH_MAX];
        if (!dflt[i].need ||
            xdg_path(dflt[i].var, dflt[i].fallback, dflt[i].root, dflt[i].name, path,
                     sizeof(path)) != SHOAL_OK)
            continue;
        if (dflt[i].dst) {
            set_str(c, dflt[i].dst, path);
        } else if ((cfg->tools.dirs = calloc(1, sizeof(char *))) != NULL) {
            set_str(c, &cfg->tools.dirs[0], path);
            cfg->tools.n_dirs = cfg->tools.dirs[0] ? 1 : 0;
        } else {
            nomem(c);
        }
    }
    if (!traces_path_given) {
        char path[PATH_MAX];
        mark = path_push(c, "traces.path", 11);
        if (config_default_traces_path(path, sizeof(path)) != SHOAL_OK)
            problem(c, SHOAL_ERR_INVALID, NULL,
                    "the default trace database path is too long; set traces.path");
        else
            set_str(c, &cfg->traces.path, path);
        path_pop(c, mark);
    }
}

/* ---- Loading ---- */

void config_free(struct config *c)
{
    if (!c)
        return;
    free(c->source);
    free(c->listen.socket);
    free(c->listen.tcp_host);
    free(c->traces.path);
    for (size_t i = 0; i < c->n_models; i++)
        model_fini(&c->models[i]);
    free(c->models);
    free_strs(c->tools.dirs, c->tools.n_dirs);
    free(c->tools.workspace);
    free(c->tools.kv_path);
    for (size_t i = 0; i < c->tools.n_grants; i++) {
        free(c->tools.grants[i].tool);
        free_strs(c->tools.grants[i].allow_hosts, c->tools.grants[i].n_hosts);
    }
    free(c->tools.grants);
    shoal_secret_free(c->auth_token);
    free(c);
}

static struct config *config_new(const char *source)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    cfg->source = strdup(source);
    if (!cfg->source) {
        free(cfg);
        return NULL;
    }
    /* Field by field into the calloc'ed struct: a compound-literal copy may
     * bring stack garbage into the padding, and snapshots are compared
     * with memcmp (SIGHUP change detection, the round-trip tests). */
    struct config_limits *l = &cfg->limits;
    l->header_bytes = SHOAL_CAP_HTTP_HEADER_BYTES;
    l->header_count = SHOAL_CAP_HTTP_HEADERS;
    l->body_bytes = SHOAL_CAP_HTTP_BODY_BYTES;
    l->header_timeout_ms = SHOAL_CAP_HTTP_HEADER_MS;
    l->body_timeout_ms = SHOAL_CAP_HTTP_BODY_MS;
    l->keepalive_ms = SHOAL_CAP_HTTP_KEEPALIVE_MS;
    l->max_connections = SHOAL_CAP_HTTP_CONNECTIONS;
    l->shutdown_ms = SHOAL_CAP_SHUTDOWN_MS;
    cfg->traces = (struct config_traces){
        .enabled = true,
        .retention_ms = 30ull * 86400000ull,
        .payload_bytes = SHOAL_CAP_TRACE_PAYLOAD,
        .queue = SHOAL_CAP_TRACE_QUEUE,
    };
    cfg->tools.instructions = 50000000;
    cfg->tools.memory_bytes = 64u << 20;
    cfg->tools.timeout_ms = 5000;
    cfg->tools.result_bytes = 1u << 20;
    cfg->log_level = SHOAL_LOG_INFO;
    cfg->engine.queue = 64;
    return cfg;
}

static void ctx_init(struct ctx *c, const char *name, struct config_report *r)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->r = r;
}

/* Keep the report in file order: problems are found section by section and
 * aliases can point backwards. Stable, and the report holds at most
 * CONFIG_REPORT_MAX items, so insertion sort is enough. */
static void report_sort(struct config_report *r, size_t from)
{
    if (!r)
        return;
    for (size_t i = from + 1; i < r->n; i++) {
        struct shoal_diag d = r->items[i];
        size_t j = i;
        while (j > from && (r->items[j - 1].line > d.line ||
                            (r->items[j - 1].line == d.line && r->items[j - 1].col > d.col))) {
            r->items[j] = r->items[j - 1];
            j--;
        }
        r->items[j] = d;
    }
}

static enum shoal_err finish(struct ctx *c, size_t from, struct config *cfg, struct config **out)
{
    report_sort(c->r, from);
    if (c->nerr == 0) {
        *out = cfg;
        return SHOAL_OK;
    }
    config_free(cfg);
    return c->nomem ? SHOAL_ERR_NOMEM : SHOAL_ERR_INVALID;
}

static enum shoal_err load(struct ctx *c, const char *text, size_t n, struct config **out)
{
    size_t from = c->r ? c->r->n : 0;
    if (n > SHOAL_CAP_CONFIG_BYTES) {
        problem_at(c, SHOAL_ERR_TOO_BIG, "", 0, 0,
                   "the file is %zu bytes; a config file may be at most %u bytes", n,
                   SHOAL_CAP_CONFIG_BYTES);
        return SHOAL_ERR_TOO_BIG;
    }
    struct config *cfg = config_new(c->source ? c->source : c->name);
    if (!cfg) {
        nomem(c);
        return SHOAL_ERR_NOMEM;
    }
    struct tree t;
    if (build_tree(c, text, n, &t))
        check_root(c, t.root, cfg);
    tree_free(t.all);
    return finish(c, from, cfg, out);
}

enum shoal_err config_load_string(const char *name, const char *text, size_t n, struct config **out,
                                  struct config_report *r)
{
    struct ctx c;
    ctx_init(&c, name ? name : "(string)", r);
    return load(&c, text, n, out);
}

static enum shoal_err load_file(const char *path, bool skip_secrets, const char *secrets_model,
                                struct config **out, struct config_report *r)
{
    struct ctx c;
    ctx_init(&c, path, r);
    c.skip_secrets = skip_secrets;
    c.secrets_model = secrets_model;
    /* Diagnostics keep the path as the user wrote it; the snapshot records
     * the absolute one, so /v1/version is unambiguous whatever the cwd. */
    char abs[PATH_MAX];
    if (realpath(path, abs))
        c.source = abs;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        enum shoal_err err = errno == ENOENT   ? SHOAL_ERR_NOT_FOUND
                             : errno == EACCES ? SHOAL_ERR_PERM
                                               : SHOAL_ERR_IO;
        problem_at(&c, err, "", 0, 0, "cannot open config file: %s", strerror(errno));
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        problem_at(&c, SHOAL_ERR_INVALID, "", 0, 0, "not a regular file");
        return SHOAL_ERR_INVALID;
    }
    if (st.st_size > (off_t)SHOAL_CAP_CONFIG_BYTES) {
        close(fd);
        problem_at(&c, SHOAL_ERR_TOO_BIG, "", 0, 0,
                   "the file is %lld bytes; a config file may be at most %u bytes",
                   (long long)st.st_size, SHOAL_CAP_CONFIG_BYTES);
        return SHOAL_ERR_TOO_BIG;
    }
    /* One spare byte tells a file that grew past the cap from one at it. */
    char *buf = malloc(SHOAL_CAP_CONFIG_BYTES + 1);
    if (!buf) {
        close(fd);
        nomem(&c);
        return SHOAL_ERR_NOMEM;
    }
    size_t len = 0;
    while (len <= SHOAL_CAP_CONFIG_BYTES) {
        ssize_t k = read(fd, buf + len, SHOAL_CAP_CONFIG_BYTES + 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            problem_at(&c, SHOAL_ERR_IO, "", 0, 0, "cannot read config file: %s", strerror(errno));
            free(buf);
            close(fd);
            return SHOAL_ERR_IO;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    enum shoal_err rc = load(&c, buf, len, out);
    free(buf);
    return rc;
}

enum shoal_err config_load_file(const char *path, struct config **out, struct config_report *r)
{
    return load_file(path, false, NULL, out, r);
}

enum shoal_err config_load_file_client(const char *path, struct config **out,
                                       struct config_report *r)
{
    return load_file(path, true, NULL, out, r);
}

enum shoal_err config_load_file_model(const char *path, const char *model, struct config **out,
                                      struct config_report *r)
{
    return load_file(path, true, model, out, r);
}

enum shoal_err config_defaults(struct config **out, struct config_report *r)
{
    struct ctx c;
    ctx_init(&c, DEFAULTS_SOURCE, r);
    size_t from = r ? r->n : 0;
    struct config *cfg = config_new(DEFAULTS_SOURCE);
    if (!cfg) {
        nomem(&c);
        return SHOAL_ERR_NOMEM;
    }
    check_root(&c, NULL, cfg);
    return finish(&c, from, cfg, out);
}

enum shoal_err config_default_socket(char *out, size_t n)
{
    char tmp[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int k;
    if (xdg && xdg[0] == '/')
        k = snprintf(tmp, sizeof(tmp), "%s/shoal/shoal.sock", xdg);
    else if (geteuid() == 0)
        k = snprintf(tmp, sizeof(tmp), "/run/shoal/shoal.sock");
    else
        k = snprintf(tmp, sizeof(tmp), "/tmp/shoal-%u/shoal.sock", (unsigned)geteuid());
    if (k < 0 || (size_t)k >= sizeof(tmp) || (size_t)k >= n)
        return SHOAL_ERR_TOO_BIG;
    memcpy(out, tmp, (size_t)k + 1);
    return SHOAL_OK;
}

/* An XDG base directory plus "shoal/" name: $VAR/shoal/name when VAR is
 * set and absolute, root's system directory as root, ~/fallback/shoal/name,
 * or /tmp/shoal-UID/name without HOME. */
static enum shoal_err xdg_path(const char *var, const char *fallback, const char *root_dir,
                               const char *name, char *out, size_t n)
{
    char tmp[PATH_MAX];
    const char *xdg = getenv(var), *home = getenv("HOME");
    int k;
    if (xdg && xdg[0] == '/')
        k = snprintf(tmp, sizeof(tmp), "%s/shoal/%s", xdg, name);
    else if (geteuid() == 0)
        k = snprintf(tmp, sizeof(tmp), "%s/%s", root_dir, name);
    else if (home && home[0] == '/')
        k = snprintf(tmp, sizeof(tmp), "%s/%s/shoal/%s", home, fallback, name);
    else
        k = snprintf(tmp, sizeof(tmp), "/tmp/shoal-%u/%s", (unsigned)geteuid(), name);
    if (k < 0 || (size_t)k >= sizeof(tmp) || (size_t)k >= n)
        return SHOAL_ERR_TOO_BIG;
    memcpy(out, tmp, (size_t)k + 1);
    return SHOAL_OK;
}

enum shoal_err config_default_traces_path(char *out, size_t n)
{
    return xdg_path("XDG_STATE_HOME", ".local/state", "/var/lib/shoal", "traces.db", out, n);
}

/* ---- Finding the file ---- */

static enum shoal_err copy_out(const char *path, char *out, size_t n, struct shoal_diag *d)
{
    if (!shoal_strlcpy(out, path, n)) {
        shoal_diag_clear(d);
        shoal_diag_at(d, path, 0, 0);
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG, "config path is longer than %zu bytes",
                              n ? n - 1 : 0);
    }
    return SHOAL_OK;
}

/* A file the user named: it must exist. */
static enum shoal_err find_named(const char *path, const char *how, char *out, size_t n,
                                 bool *found, struct shoal_diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        shoal_diag_clear(d);
        shoal_diag_at(d, path, 0, 0);
        if (e == ENOENT || e == ENOTDIR)
            return shoal_diag_set(d, SHOAL_ERR_NOT_FOUND, "config file (from %s) does not exist",
                                  how);
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot check config file (from %s): %s", how,
                              strerror(e));
    }
    enum shoal_err rc = copy_out(path, out, n, d);
    if (rc == SHOAL_OK)
        *found = true;
    return rc;
}

enum shoal_err config_find(const char *explicit_path, char *out, size_t n, bool *found,
                           struct shoal_diag *d)
{
    *found = false;
    if (explicit_path)
        return find_named(explicit_path, "--config", out, n, found, d);
    const char *env = getenv("SHOAL_CONFIG");
    if (env && *env)
        return find_named(env, "$SHOAL_CONFIG", out, n, found, d);

    char cand[2][PATH_MAX];
    size_t ncand = 0;
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int k = -1;
    /* The XDG spec says a relative XDG_CONFIG_HOME is invalid: ignore it. */
    if (xdg && xdg[0] == '/')
        k = snprintf(cand[0], sizeof(cand[0]), "%s/shoal/shoal.yaml", xdg);
    else if (home && home[0] == '/')
        k = snprintf(cand[0], sizeof(cand[0]), "%s/.config/shoal/shoal.yaml", home);
    if (k > 0 && (size_t)k < sizeof(cand[0]))
        ncand++;
    shoal_strlcpy(cand[ncand++], "/etc/shoal/shoal.yaml", sizeof(cand[0]));

    for (size_t i = 0; i < ncand; i++) {
        struct stat st;
        if (stat(cand[i], &st) == 0) {
            enum shoal_err rc = copy_out(cand[i], out, n, d);
            if (rc == SHOAL_OK)
                *found = true;
            return rc;
        }
        /* A file that exists but cannot be checked must not silently fall
         * back to the defaults. */
        if (errno != ENOENT && errno != ENOTDIR) {
            int e = errno;
            shoal_diag_clear(d);
            shoal_diag_at(d, cand[i], 0, 0);
            return shoal_diag_set(d, SHOAL_ERR_IO, "cannot check config file: %s", strerror(e));
        }
    }
    if (n > 0)
        out[0] = '\0';
    return SHOAL_OK;
}

/* ---- Printing ---- */

/* The code point of the valid UTF-8 sequence at s, or -1; *len gets its
 * length. Overlong forms and surrogates are not valid. */
static long utf8_decode(const unsigned char *s, size_t *len)
{
    static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = s[0] >= 0xF0 && s[0] < 0xF5 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] >= 0xF5)
        return -1;
    long cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = n;
    return cp;
}

/* A double-quoted YAML string that reads back as the same bytes. Escaped:
 * C0/C1 controls (the reader refuses them raw), NEL, LS and PS (YAML
 * would fold them as line breaks) and U+FFFE/U+FFFF. With dollars set, $
 * is doubled so a path printed here expands back to itself. Bytes that are
 * not UTF-8 (only an environment variable can bring them) are written as
 * they are: YAML has no way to spell them. */
static enum shoal_err put_quoted(struct shoal_buf *b, const char *str, bool dollars)
{
    const unsigned char *s = (const unsigned char *)str;
    enum shoal_err rc = shoal_buf_puts(b, "\"");
    while (rc == SHOAL_OK && *s) {
        size_t n = 1;
        long cp = *s < 0x80 ? *s : utf8_decode(s, &n);
        if (cp == '"' || cp == '\\')
            rc = shoal_buf_printf(b, "\\%c", (int)cp);
        else if (cp == '$' && dollars)
            rc = shoal_buf_puts(b, "$$");
        else if ((cp >= 0 && cp < 0x20) || (cp >= 0x7F && cp <= 0x9F))
            rc = shoal_buf_printf(b, "\\x%02lX", cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFFFE || cp == 0xFFFF)
            rc = shoal_buf_printf(b, "\\u%04lX", cp);
        else
            rc = shoal_buf_append(b, s, n);
        s += n;
    }
    return rc ? rc : shoal_buf_puts(b, "\"");
}

/* A price that reads back as the same double. */
static enum shoal_err put_decimal(struct shoal_buf *b, const char *key, double v)
{
    char t[40];
    snprintf(t, sizeof(t), "%.15g", v);
    if (strtod(t, NULL) != v)
        snprintf(t, sizeof(t), "%.17g", v);
    return shoal_buf_printf(b, "      %s: %s\n", key, t);
}

/* Where a secret comes from, as config_print writes it (never the value). */
static enum shoal_err put_secret_source(struct shoal_buf *b, const char *source)
{
    enum shoal_err rc;
    if (!source)
        return shoal_buf_puts(b, "~\n");
    if (!strncmp(source, "env:", 4))
        return shoal_buf_printf(b, "{ env: %s }\n", source + 4);
    if (!strncmp(source, "file:", 5)) {
        if ((rc = shoal_buf_puts(b, "{ file: ")) != SHOAL_OK ||
            (rc = put_quoted(b, source + 5, true)) != SHOAL_OK)
            return rc;
        return shoal_buf_puts(b, " }\n");
    }
    return shoal_buf_puts(b, "~ # a secret from somewhere other than env or file\n");
}

static enum shoal_err print_remote_model(struct shoal_buf *b, const struct config_model *m)
{
    enum shoal_err rc;
    char v[32];
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != SHOAL_OK)                                                                \
            return rc;                                                                             \
    } while (0)
    TRY(shoal_buf_printf(b, "  %s:\n    provider: %s\n    base_url: ", m->name,
                         provider_words[m->provider]));
    TRY(put_quoted(b, m->base_url ? m->base_url : "", false));
    TRY(shoal_buf_puts(b, "\n    model: "));
    TRY(put_quoted(b, m->model ? m->model : "", false));
    TRY(shoal_buf_puts(b, "\n    api_key: "));
    TRY(put_secret_source(b, m->api_key_source));
    TRY(shoal_buf_puts(b, m->n_headers ? "    headers:\n" : "    headers: {}\n"));
    for (size_t i = 0; i < m->n_headers; i++) {
        TRY(shoal_buf_puts(b, "      "));
        TRY(put_quoted(b, m->headers[i].name, false));
        TRY(shoal_buf_puts(b, ": "));
        TRY(put_quoted(b, m->headers[i].value, false));
        TRY(shoal_buf_puts(b, "\n"));
    }
    TRY(shoal_buf_printf(b, "    timeouts:\n      connect: %s\n",
                         fmt_value(UNIT_MS, m->connect_timeout_ms, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "      first_byte: %s\n",
                         fmt_value(UNIT_MS, m->first_byte_timeout_ms, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "      total: %s\n",
                         fmt_value(UNIT_MS, m->total_timeout_ms, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "    retry:\n      attempts: %u\n", (unsigned)m->retry_attempts));
    TRY(shoal_buf_printf(b, "      backoff: %s\n    price:\n",
                         fmt_value(UNIT_MS, m->retry_backoff_ms, v, sizeof(v))));
    TRY(put_decimal(b, "input_per_mtok", m->price_input_per_mtok));
    TRY(put_decimal(b, "output_per_mtok", m->price_output_per_mtok));
    if (m->price_cached_per_mtok >= 0)
        TRY(put_decimal(b, "cached_per_mtok", m->price_cached_per_mtok));
    return SHOAL_OK;
#undef TRY
}

enum shoal_err config_print(const struct config *c, struct shoal_buf *b)
{
    enum shoal_err rc;
    char v[32];
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != SHOAL_OK)                                                                \
            return rc;                                                                             \
    } while (0)
    /* The source goes in a comment: plain ASCII keeps it on one line (NEL,
     * LS and PS would end a YAML comment too). */
    char src[200];
    show(src, sizeof(src), c->source, strlen(c->source));
    for (char *p = src; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    TRY(shoal_buf_printf(b, "# shoal effective configuration (from %s)\nlisten:\n  socket: ", src));
    TRY(put_quoted(b, c->listen.socket ? c->listen.socket : "", true));
    TRY(shoal_buf_puts(b, "\n  tcp: "));
    if (c->listen.tcp) {
        bool v6 = strchr(c->listen.tcp_host, ':') != NULL;
        TRY(shoal_buf_printf(b, "\"%s%s%s:%u\"\n", v6 ? "[" : "", c->listen.tcp_host, v6 ? "]" : "",
                             (unsigned)c->listen.tcp_port));
    } else {
        TRY(shoal_buf_puts(b, "~\n"));
    }
    TRY(shoal_buf_puts(b, "auth:\n  token: "));
    const char *source = c->auth_token ? shoal_secret_source(c->auth_token) : NULL;
    if (!source) {
        TRY(shoal_buf_puts(b, "~\n"));
    } else if (!strncmp(source, "env:", 4)) {
        TRY(shoal_buf_printf(b, "{ env: %s }\n", source + 4));
    } else if (!strncmp(source, "file:", 5)) {
        TRY(shoal_buf_puts(b, "{ file: "));
        TRY(put_quoted(b, source + 5, true));
        TRY(shoal_buf_puts(b, " }\n"));
    } else {
        TRY(shoal_buf_puts(b, "~ # a secret from somewhere other than env or file\n"));
    }
    TRY(shoal_buf_puts(b, "limits:\n"));
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(limit_keys); i++)
        TRY(shoal_buf_printf(
            b, "  %s: %s\n", limit_keys[i].name,
            fmt_value(limit_keys[i].unit, limit_get(&c->limits, i), v, sizeof(v))));
    TRY(shoal_buf_printf(b, "log:\n  level: %s\n", shoal_log_level_name(c->log_level)));
    TRY(shoal_buf_printf(b, "engine:\n  threads: %u   # 0: the physical cores\n  queue: %u\n",
                         (unsigned)c->engine.threads, (unsigned)c->engine.queue));
    TRY(shoal_buf_printf(b, "  memory_budget: %s   # 0B: no budget\n",
                         fmt_value(UNIT_BYTES, c->engine.memory_budget, v, sizeof(v))));
    const struct config_traces *t = &c->traces;
    TRY(shoal_buf_printf(b, "traces:\n  enabled: %s\n  path: ", t->enabled ? "true" : "false"));
    TRY(put_quoted(b, t->path ? t->path : "", true));
    TRY(shoal_buf_printf(b, "\n  retention: %s\n", fmt_value(UNIT_MS, t->retention_ms, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "  max_size: %s\n", fmt_value(UNIT_BYTES, t->max_bytes, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "  payload_bytes: %s\n",
                         fmt_value(UNIT_BYTES, t->payload_bytes, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "  redact: %s\n  sync: %s\n  queue: %u\n",
                         t->redact ? "content" : "none", t->sync_full ? "full" : "normal",
                         (unsigned)t->queue));
    const struct config_tools *tl = &c->tools;
    TRY(shoal_buf_puts(b, "tools:\n  dirs: ["));
    for (size_t i = 0; i < tl->n_dirs; i++) {
        TRY(shoal_buf_puts(b, i ? ", " : ""));
        TRY(put_quoted(b, tl->dirs[i] ? tl->dirs[i] : "", true));
    }
    TRY(shoal_buf_puts(b, "]\n  workspace: "));
    TRY(put_quoted(b, tl->workspace ? tl->workspace : "", true));
    TRY(shoal_buf_puts(b, "\n  kv: "));
    TRY(put_quoted(b, tl->kv_path ? tl->kv_path : "", true));
    TRY(shoal_buf_printf(b, "\n  limits:\n    instructions: %llu\n",
                         (unsigned long long)tl->instructions));
    TRY(shoal_buf_printf(b, "    memory: %s\n",
                         fmt_value(UNIT_BYTES, tl->memory_bytes, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "    timeout: %s\n", fmt_value(UNIT_MS, tl->timeout_ms, v, sizeof(v))));
    TRY(shoal_buf_printf(b, "    result_bytes: %s\n",
                         fmt_value(UNIT_BYTES, tl->result_bytes, v, sizeof(v))));
    TRY(shoal_buf_puts(b, tl->n_grants ? "  grants:\n" : "  grants: {}\n"));
    for (size_t i = 0; i < tl->n_grants; i++) {
        const struct config_grant *g = &tl->grants[i];
        TRY(shoal_buf_printf(b, "    %s:\n      fs: %s\n      kv: %s\n", g->tool,
                             g->fs ? "true" : "false", g->kv ? "true" : "false"));
        if (g->http) {
            TRY(shoal_buf_puts(b, "      http:\n        allow_hosts: ["));
            for (size_t h = 0; h < g->n_hosts; h++) {
                TRY(shoal_buf_puts(b, h ? ", " : ""));
                TRY(put_quoted(b, g->allow_hosts[h] ? g->allow_hosts[h] : "", false));
            }
            TRY(shoal_buf_printf(b, "]\n        allow_http: %s\n",
                                 g->allow_http ? "true" : "false"));
        }
    }
    TRY(shoal_buf_puts(b, c->n_models ? "models:\n" : "models: {}\n"));
    for (size_t i = 0; i < c->n_models; i++) {
        const struct config_model *m = &c->models[i];
        if (m->provider != CONFIG_PROVIDER_LOCAL) {
            TRY(print_remote_model(b, m));
            continue;
        }
        TRY(shoal_buf_printf(b, "  %s:\n    provider: local\n    path: ", m->name));
        TRY(put_quoted(b, m->path ? m->path : "", true));
        if (m->context)
            TRY(shoal_buf_printf(b, "\n    context: %u\n", (unsigned)m->context));
        else
            TRY(shoal_buf_puts(b, "\n    context: ~\n"));
        TRY(shoal_buf_printf(b, "    keep_alive: %s\n",
                             fmt_value(UNIT_MS, m->keep_alive_ms, v, sizeof(v))));
    }
    return SHOAL_OK;
#undef TRY
}
