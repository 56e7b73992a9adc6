/* jinja.h: the engine's private Jinja interpreter for chat templates: lexer,
 * parser, arena-owned AST, tree-walking evaluator over refcounted values,
 * with jinja2's semantics as Hugging Face configures it. Invariant: a parsed
 * template is immutable (its constants are immortal values), so threads may
 * render it at once; all a render allocates hangs off its struct jctx. */
#ifndef SHOAL_ENGINE_JINJA_H
#define SHOAL_ENGINE_JINJA_H

#include "common.h"
#include "engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- Caps (defaults; struct jinja_limits overrides them per render) ---- */

#define JINJA_MAX_SOURCE      (1u << 20)          /* template source bytes */
#define JINJA_MAX_PARSE_DEPTH 200u                /* nested expressions / blocks */
#define JINJA_MAX_OUTPUT      (4u << 20)          /* rendered bytes; also any one string */
#define JINJA_MAX_MEMORY      (256u << 20)        /* live bytes of runtime values */
#define JINJA_MAX_STEPS       30000000u           /* evaluation work units per render */
#define JINJA_MAX_LOOP_ITERS  1000000u            /* loop iterations per render */
#define JINJA_MAX_DEPTH       400u                /* nested evaluation (C stack) */
#define JINJA_MAX_MACRO_DEPTH 100u                /* nested macro calls */
#define JINJA_MAX_VALUE_DEPTH 256u                /* nesting of lists/dicts */
#define JINJA_MAX_RANGE       100000              /* jinja2's sandbox MAX_RANGE */
#define JINJA_MAX_ITEMS       (1u << 20)          /* elements of one list or dict */

struct jinja_limits {
    size_t max_output;
    size_t max_memory;
    uint64_t max_steps;
    uint32_t max_loop_iters;
    uint32_t max_depth;
    uint32_t max_macro_depth;
};
void jinja_limits_default(struct jinja_limits *l);

/* ---- Arena (parse-time storage; freed with the template) ---- */

struct jarena_block;
struct jarena {
    struct jarena_block *head;
};
void *jarena_alloc(struct jarena *a, size_t n); /* zeroed, 16-aligned; NULL on OOM */
char *jarena_strdup(struct jarena *a, const char *p, size_t n);
void jarena_free(struct jarena *a);

/* ---- Tokens (jinja_lex.c -> jinja_parse.c) ---- */

enum jtok_type {
    JT_EOF,
    JT_DATA,        /* template text, whitespace control already applied */
    JT_VAR_BEGIN,   /* {{ */
    JT_VAR_END,     /* }} */
    JT_BLOCK_BEGIN, /* {% */
    JT_BLOCK_END,   /* %} */
    JT_NAME,
    JT_STRING,      /* p/n: the decoded value */
    JT_INT,
    JT_FLOAT,
    JT_OP,          /* op: the character, or one of the JT_OP_* codes */
};
#define JT_OP_FLOORDIV 'F' /* // */
#define JT_OP_POW      'P' /* ** */
#define JT_OP_EQ       'E' /* == */
#define JT_OP_NE       'N' /* != */
#define JT_OP_GE       'G' /* >= */
#define JT_OP_LE       'L' /* <= */

struct jtok {
    uint8_t type;
    uint8_t op;
    uint32_t line, col;
    const char *p; /* text (arena or source copy) */
    size_t n;
    int64_t i;
    double f;
};

/* Split src into tokens (*toks is malloc'd, the caller frees it; the text
 * they point to is in the arena), ending with JT_EOF. The source
 * is first copied with \r\n and \r turned into \n and one trailing
 * newline dropped, as jinja2 does. */
enum shoal_err jinja_lex(struct jarena *a, const char *src, size_t n, struct jtok **toks,
                         size_t *ntoks, struct shoal_diag *d);

/* ---- Values ---- */

enum jv_type {
    JV_EMPTY = 0, /* an unset variable slot; never seen by templates */
    JV_UNDEF,     /* jinja2's Undefined: prints "", falsy, iterates empty */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,    /* struct jstr; flags & JVF_MARKUP: a markupsafe.Markup */
    JV_LIST,   /* struct jlist: list, tuple, generator/iterator or range */
    JV_DICT,   /* struct jdict, insertion-ordered */
    JV_NS,     /* struct jdict used as a namespace() */
    JV_MACRO,  /* struct jmacro: a macro or a call block's caller() */
    JV_FUNC,   /* a global function (range, namespace, ...); u.i = enum jfunc */
    JV_METHOD, /* struct jmethod: a bound method such as dict.items */
    JV_LOOP,   /* struct jloop: the loop variable */
    JV_CYCLER, /* struct jcycler: cycler() */
    JV_JOINER, /* struct jjoiner: joiner() */
};

/* jv.flags */
#define JVF_MARKUP   0x01 /* JV_STR: Markup (escapes what is added to it) */
#define JVF_UNSAFE   0x02 /* JV_UNDEF: a sandbox-blocked attribute */
#define JVF_ATTR     0x04 /* JV_UNDEF: missing attribute/item of an object */

/* A value: 16 bytes, passed by value. Heap payloads are refcounted; a
 * function that returns a value through an out-parameter gives the caller
 * one reference, arguments are borrowed unless the name says _take. */
struct jv {
    uint8_t type;
    uint8_t flags;
    uint8_t otype; /* JV_UNDEF with JVF_ATTR: the type of the object looked into */
    uint8_t pad;
    uint32_t pad2;
    union {
        bool b;
        int64_t i;
        double f;
        struct jobj *o;
        const char *hint; /* JV_UNDEF: the missing name (immortal string) */
    } u;
};

#define JRC_IMMORTAL UINT32_MAX

/* Header of every heap value. bytes = what was allocated, for accounting. */
struct jobj {
    uint32_t rc;
    uint8_t type;
    uint8_t kind;
    uint16_t depth; /* container nesting below this object, for bounded frees */
    size_t bytes;
};

struct jstr {
    struct jobj h;
    size_t len;
    int32_t nchars; /* code points, -1 until counted */
    char data[];    /* len bytes + NUL */
};

/* JL_GEN: a one-shot iterator (generator, reversed(), ...): no len(), no
 * indexing, not JSON. JL_VIEW: dict.items()/keys()/values(): len() and
 * repeated iteration, no indexing, not JSON. gname names either type. */
enum jlist_kind { JL_LIST, JL_TUPLE, JL_GEN, JL_RANGE, JL_VIEW };

struct jlist {
    struct jobj h; /* h.kind = enum jlist_kind */
    size_t n, cap;
    size_t pos;          /* JL_GEN: items before pos were consumed */
    const char *gname;   /* JL_GEN, JL_VIEW: Python type name ("generator", ...) */
    int64_t start, stop, step; /* JL_RANGE */
    /* JL_GEN: jinja2's generator filters fail only when iterated; a
     * generator made from a bad input carries that error until then */
    const char *gerr_fmt; /* printf format with one %s, or NULL */
    const char *gerr_arg;
    struct jv *items;
};

struct jdict_ent {
    struct jv k, v;
    uint64_t hash;
};
struct jdict {
    struct jobj h;
    size_t n, cap;
    struct jdict_ent *e;
    uint32_t *idx; /* open-addressed index into e (+1; 0 = free), NULL when small */
    size_t idx_cap;
};

struct jnode;
struct jframe;
struct jmacro {
    struct jobj h;
    const struct jnode *def; /* S_MACRO, or S_CALLBLOCK for a caller */
    struct jframe *scope;    /* caller(): the frame of the call site */
    bool alive;              /* caller(): false once its call block ended */
    bool is_caller;
    struct jv caller;        /* the caller() a call block passes, or JV_EMPTY */
};

struct jmethod {
    struct jobj h;
    struct jv self;
    uint16_t id; /* enum jmeth */
};

struct jloop {
    struct jobj h;
    struct jlist *items;
    size_t index0;
    uint32_t depth0;
    bool alive;               /* false once the loop ended (loop() refuses) */
    const struct jnode *node; /* recursive loops: the S_FOR */
    struct jframe *scope;
    struct jv changed_last;   /* loop.changed(): last arguments, or JV_EMPTY */
};

struct jcycler {
    struct jobj h;
    struct jlist *items;
    size_t pos;
};

struct jjoiner {
    struct jobj h;
    struct jv sep;
    bool used;
};

/* ---- AST ---- */

enum jnode_kind {
    /* statements */
    S_DATA,       /* str/len: template text */
    S_OUTPUT,     /* a: expression */
    S_IF,         /* a: cond, body: then, body2: else (elif = one S_IF) */
    S_FOR,        /* tgt, a: iterable, b: filter or NULL, body, body2: else; flag: recursive */
    S_SET,        /* tgt (E_NAME, E_TUPLE of names, E_NSREF), a: value */
    S_SETBLOCK,   /* tgt (E_NAME / E_NSREF), body, b: filter chain or NULL */
    S_MACRO,      /* str: name, sym, params, body; op: MACRO_VARARGS|MACRO_KWARGS */
    S_CALLBLOCK,  /* a: the E_CALL, params (caller's), body */
    S_FILTERBLOCK,/* b: filter chain (innermost input NULL), body */
    S_WITH,       /* params (targets as E_NAME list in args), body */
    S_BREAK,
    S_CONTINUE,
    /* expressions */
    E_CONST,   /* cval */
    E_NAME,    /* sym, str */
    E_ATTR,    /* a: object, str: attribute */
    E_ITEM,    /* a: object, b: key */
    E_SLICE,   /* a: object, args[0..2]: start/stop/step, NULL when absent */
    E_CALL,    /* a: callee, args, kwnames/kwargs; b: *args, c: **kwargs (or NULL) */
    E_FILTER,  /* a: input (NULL in a filter block), op: filter id, args as E_CALL */
    E_TEST,    /* a: input, op: test id, args as E_CALL */
    E_BINOP,   /* op: enum jop, a, b */
    E_AND,     /* a, b */
    E_OR,      /* a, b */
    E_NOT,     /* a */
    E_NEG,     /* a */
    E_POS,     /* a */
    E_COMPARE, /* a: first operand, args: the others, ops: one enum jop each */
    E_COND,    /* a: value if true, b: condition, c: value if false or NULL */
    E_LIST,    /* args */
    E_TUPLE,   /* args */
    E_DICT,    /* args: keys, kwargs: values */
    E_NSREF,   /* sym/str: namespace variable, str2: attribute (set target) */
};

/* S_MACRO.op: the body names varargs / kwargs, so extra arguments are kept
 * there instead of being an error (as jinja2 decides it). */
#define MACRO_VARARGS 1
#define MACRO_KWARGS  2

enum jop {
    JOP_NONE,
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
};

struct jnode {
    uint16_t kind;
    uint16_t op;      /* enum jop, filter id, test id */
    uint32_t line, col;
    bool flag;        /* S_FOR: recursive */
    uint32_t sym;     /* E_NAME, E_NSREF, S_MACRO: symbol id */
    const char *str;  /* S_DATA text, E_NAME/E_ATTR/S_MACRO name (NUL-terminated) */
    size_t len;
    const char *str2; /* E_NSREF attribute (cval: the same as a string value) */
    struct jnode *a, *b, *c, *tgt;
    struct jnode **args;   uint32_t nargs;   /* also E_DICT keys, S_WITH values */
    struct jnode **kwargs; uint32_t nkwargs; /* values; E_DICT values */
    const char **kwnames;                   /* names for kwargs */
    uint16_t *ops;                          /* E_COMPARE */
    struct jnode **body;  uint32_t nbody;
    struct jnode **body2; uint32_t nbody2;
    /* S_MACRO / S_CALLBLOCK: parameters */
    uint32_t nparams;
    uint32_t *psyms;
    const char **pnames;
    struct jnode **pdefaults; /* NULL entries: no default */
    struct jv cval;           /* E_CONST */
};

/* A parsed template. */
struct jtmpl {
    struct jarena arena;
    struct jnode **body;
    uint32_t nbody;
    uint32_t nsyms;
    const char **syms;    /* symbol id -> name */
    uint32_t *sym_hash;   /* open addressing over syms: id + 1, 0 = free */
    size_t sym_hcap;
    int16_t *sym_global;  /* symbol id -> enum jfunc for a global of that name, or -1 */
    uint32_t sym_loop, sym_caller, sym_varargs, sym_kwargs;
};

/* The symbol id of name, or UINT32_MAX when the template never uses it. */
uint32_t jinja_symbol(const struct jtmpl *t, const char *name, size_t n);

/* Parse n bytes of template source. INVALID with d at line:col on a syntax
 * error or an unsupported feature; TOO_BIG past the source or nesting caps. */
enum shoal_err jinja_parse(const char *src, size_t n, struct jtmpl **out, struct shoal_diag *d);
void jinja_free(struct jtmpl *t);

/* Options of one render beyond the chat: caps, and the clock that
 * strftime_now() reads (seconds since the epoch, rendered as local time
 * unless utc). */
struct jinja_opts {
    struct jinja_limits lim;
    time_t now;
    bool utc;
};

enum shoal_err jinja_render(const struct jtmpl *t, const struct engine_chat *chat,
                            const struct jinja_opts *o, struct shoal_buf *out,
                            struct shoal_diag *d);

/* ---- engine_template_* variants for tests and tools (template.c) ---- */

/* engine_template_render with explicit caps and clock (fuzzing, tests). */
enum shoal_err engine_template_render_opts(const struct engine_template *t,
                                           const struct engine_chat *chat,
                                           const struct jinja_opts *o, struct shoal_buf *out,
                                           struct shoal_diag *d);

/* ---- Render context (shared by the evaluator and the builtins) ---- */

struct jslot {
    uint32_t sym;
    struct jv v;
};

/* A scope: a for-loop iteration, a macro call, a with block. Lives on the
 * C stack of the statement that opened it. parent NULL = the root scope
 * (ctx->root), which also holds the render variables. */
struct jframe {
    struct jframe *parent;
    uint32_t n, cap;
    struct jslot *slots;
    struct jslot small[6];
};

/* A growable string that becomes a struct jstr without a copy; capped at
 * the render's max_output. */
struct jsb {
    struct jctx *c;
    char *buf; /* sizeof(struct jstr) header space, then the text */
    size_t len, cap;
};

struct jctx {
    const struct jtmpl *t;
    struct jinja_limits lim;
    time_t now;
    bool utc;
    struct jsb *out;        /* where output goes now (swapped by macros) */
    struct jv *root;        /* per symbol: top-level variables */
    struct jframe *frame;   /* innermost scope, NULL = root */
    size_t mem;             /* live bytes */
    uint64_t steps;
    uint32_t loop_iters;
    uint32_t depth;
    uint32_t macro_depth;
    uint32_t vdepth;        /* nesting of value traversals */
    bool repr_sorted;       /* repr() sorts dict keys (pprint) */
    struct jv filter_input; /* a {% filter %} block's text while its filters run */
    struct jdict **nss;     /* every namespace made, cleared at the end */
    size_t nns, nns_cap;
    /* the first error */
    bool failed;
    enum shoal_err err;
    unsigned err_line, err_col;
    char err_msg[480];
};

/* Record an error (the first one wins) and return -1. */
int jfail(struct jctx *c, enum shoal_err err, const char *fmt, ...) SHOAL_PRINTF(3, 4);
/* Attach a location to the error if it has none yet. */
void jfail_at(struct jctx *c, const struct jnode *n);
/* Count evaluation work; fails TOO_BIG past the cap. */
int jstep(struct jctx *c, uint64_t units);
/* jstep for a function that already set *out: on failure *out is
 * released, so the caller never owns a value with an error. */
int jstep_out(struct jctx *c, uint64_t units, struct jv *out);

void *jalloc(struct jctx *c, size_t n);
void *jrealloc(struct jctx *c, void *p, size_t old, size_t n);
void jfree(struct jctx *c, void *p, size_t n);

/* Constructors of immediate values. */
static inline struct jv jv_make(uint8_t type)
{
    struct jv v = {0};
    v.type = type;
    return v;
}
static inline struct jv jv_undef(const char *hint)
{
    struct jv v = jv_make(JV_UNDEF);
    v.u.hint = hint;
    return v;
}
static inline struct jv jv_none(void) { return jv_make(JV_NONE); }
static inline struct jv jv_bool(bool b)
{
    struct jv v = jv_make(JV_BOOL);
    v.u.b = b;
    return v;
}
static inline struct jv jv_int(int64_t i)
{
    struct jv v = jv_make(JV_INT);
    v.u.i = i;
    return v;
}
static inline struct jv jv_float(double f)
{
    struct jv v = jv_make(JV_FLOAT);
    v.u.f = f;
    return v;
}
static inline struct jv jv_obj(uint8_t type, void *o)
{
    struct jv v = jv_make(type);
    v.u.o = o;
    return v;
}
static inline bool jv_is_heap(struct jv v) { return v.type >= JV_STR && v.type != JV_FUNC; }
static inline struct jstr *jv_str(struct jv v) { return (struct jstr *)v.u.o; }
static inline struct jlist *jv_list(struct jv v) { return (struct jlist *)v.u.o; }
static inline struct jdict *jv_dict(struct jv v) { return (struct jdict *)v.u.o; }
static inline bool jv_is_num(struct jv v)
{
    return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}

void jv_incref(struct jv v);
void jv_decref(struct jctx *c, struct jv v);
static inline struct jv jv_ref(struct jv v)
{
    jv_incref(v);
    return v;
}

/* Strings. */
int jstr_new(struct jctx *c, const char *p, size_t n, struct jv *out);
int jstr_cat(struct jctx *c, const char *a, size_t na, const char *b, size_t nb, struct jv *out);
struct jv jstr_empty(void);
size_t jstr_nchars(struct jstr *s);

void jsb_init(struct jsb *b, struct jctx *c);
void jsb_fini(struct jsb *b);
int jsb_add(struct jsb *b, const char *p, size_t n);
int jsb_addc(struct jsb *b, char ch);
int jsb_adds(struct jsb *b, const char *s);
int jsb_printf(struct jsb *b, const char *fmt, ...) SHOAL_PRINTF(2, 3);
/* Turn the text into a string value; the builder is left empty. */
int jsb_finish(struct jsb *b, struct jv *out);

/* Lists and dicts. */
struct jlist *jlist_new(struct jctx *c, size_t cap, enum jlist_kind kind);
int jlist_push(struct jctx *c, struct jlist *l, struct jv v); /* takes v */
struct jdict *jdict_new(struct jctx *c, size_t cap);
int jdict_set(struct jctx *c, struct jdict *d, struct jv k, struct jv v); /* takes k and v */
/* Borrowed lookup; false when absent. Keys compare like Python (1 == 1.0 == True). */
bool jdict_get(const struct jdict *d, struct jv k, struct jv *out);
bool jdict_get_str(const struct jdict *d, const char *k, size_t n, struct jv *out);
/* Depth of a value for bounded frees; fails TOO_BIG past the cap. */
int jv_check_depth(struct jctx *c, uint16_t *depth, struct jv child);

/* Python semantics. */
bool jv_truthy(struct jv v);
int jv_equal(struct jctx *c, struct jv a, struct jv b, bool *eq);
/* a <=> b for ordering; op names the operator for the TypeError when the
 * types are unorderable. */
int jv_compare(struct jctx *c, struct jv a, struct jv b, const char *op, int *cmp);
const char *jv_type_name(struct jv v);
/* jinja2's object_type_repr: "None", "dict object", ... */
const char *jv_object_desc(uint8_t type, uint8_t kind);
/* Hash for dict keys; false (TypeError in Python) for unhashable values. */
bool jv_hash(struct jv v, uint64_t *h);
int jv_write_str(struct jctx *c, struct jv v, struct jsb *b);  /* str(v) */
int jv_write_repr(struct jctx *c, struct jv v, struct jsb *b); /* repr(v) */
int jv_to_str(struct jctx *c, struct jv v, struct jv *out);    /* str(v) as a value */
void jfloat_repr(double f, char out[40]);
int jv_from_cjson(struct jctx *c, const struct cJSON *j, struct jv *out);

struct jjson_opts {
    bool ensure_ascii;
    bool sort_keys;
    bool has_indent;
    const char *indent; size_t indent_len;
    const char *item_sep; size_t item_sep_len;
    const char *key_sep; size_t key_sep_len;
};
int jv_write_json(struct jctx *c, struct jv v, const struct jjson_opts *o, struct jsb *b);

/* Register a namespace so its attributes are cleared at the end of the
 * render (namespaces are the only values that can form cycles). */
int jns_register(struct jctx *c, struct jdict *ns);

/* ---- UTF-8 and Python string helpers ---- */

/* Decode one code point at p (n > 0 bytes left); invalid bytes decode as
 * themselves (0x80..0xFF) with length 1, so every byte string round-trips. */
uint32_t jutf8_dec(const unsigned char *p, size_t n, size_t *len);
size_t jutf8_enc(uint32_t cp, char out[4]);
bool jpy_isspace(uint32_t cp);
uint32_t jpy_lower(uint32_t cp);
uint32_t jpy_upper(uint32_t cp);
bool jpy_isalpha(uint32_t cp);
bool jpy_isprintable(uint32_t cp);
/* Python's line boundaries for str.splitlines(). */
bool jpy_is_linebreak(uint32_t cp);

/* ---- Builtins (jinja_builtins.c) ---- */

enum jfunc {
    JF_RANGE, JF_DICT, JF_NAMESPACE, JF_CYCLER, JF_JOINER, JF_RAISE, JF_STRFTIME,
    JF_COUNT_
};
/* A global function's name -> id, or -1. */
int jfunc_lookup(const char *name);
const char *jfunc_name(int id);

struct jargs {
    const struct jv *pos;
    size_t npos;
    const char *const *kwnames;
    const struct jv *kw;
    size_t nkw;
};

/* gname of the (grouper, list) tuples groupby makes: they answer .grouper
 * and .list like jinja2's named tuple. */
extern const char jgroup_name[];

int jfilter_lookup(const char *name);
int jtest_lookup(const char *name);
/* Apply filter/test id to v (borrowed) with args (borrowed). */
int jfilter_apply(struct jctx *c, int id, struct jv v, const struct jargs *a, struct jv *out);
int jtest_apply(struct jctx *c, int id, struct jv v, const struct jargs *a, bool *out);
int jfunc_call(struct jctx *c, int id, const struct jargs *a, struct jv *out);

/* Attribute lookup as jinja2's sandbox does it: Python attribute (a
 * method) first, then the item. hint names the attribute in a later
 * "has no attribute" error and must outlive the render (NULL: none). */
int jget_attr(struct jctx *c, struct jv obj, const char *name, size_t n, const char *hint,
              struct jv *out);
/* Only the Python attribute part (methods, namespace and loop attributes):
 * *found is false when there is none (out is then undefined). */
int jget_pyattr(struct jctx *c, struct jv obj, const char *name, size_t n, const char *hint,
                struct jv *out, bool *found);
/* obj[key]: item first, then attribute for string keys. */
int jget_item(struct jctx *c, struct jv obj, struct jv key, struct jv *out);
/* A method of obj by name (id >= 0), or -1 when obj has none. unsafe is
 * set for methods the immutable sandbox blocks (list.append, dict.pop...). */
int jmethod_lookup(struct jv obj, const char *name, size_t n, bool *unsafe);
int jmethod_call(struct jctx *c, int id, struct jv self, const struct jargs *a, struct jv *out);

/* Evaluator services the builtins need (jinja_eval.c). */
int jcall_value(struct jctx *c, struct jv callee, const struct jargs *a, struct jv *out);
int jiter_items(struct jctx *c, struct jv v, struct jlist **out); /* list to iterate */
bool jv_is_iterable(struct jv v);
/* Fails with a generator's deferred error, if it has one (see gerr_fmt). */
int jgen_check(struct jctx *c, const struct jlist *l);
int jv_len(struct jctx *c, struct jv v, int64_t *out);
int jv_contains(struct jctx *c, struct jv container, struct jv item, bool *out);
int jbinop(struct jctx *c, int op, struct jv a, struct jv b, struct jv *out);
int jslice(struct jctx *c, struct jv obj, const struct jv *start, const struct jv *stop,
           const struct jv *step, struct jv *out);
/* Markupsafe's escape() of str(v). */
int jescape(struct jctx *c, struct jv v, struct jv *out);
/* Python's printf-style "fmt % args". */
int jformat_percent(struct jctx *c, struct jv fmt, struct jv args, struct jv *out);
int jformat_braces(struct jctx *c, struct jv fmt, const struct jargs *a, struct jv *out);

#endif
