/* pretok.c: the pre-tokenizers of byte-level BPE: each tokenizer.ggml.pre
 * family is the regex list its vendor publishes, run in order with PCRE2
 * (UTF, Unicode properties, JIT); each regex splits every piece into its
 * matches and the text between them. Invariant: compiled regexes are shared
 * and immutable; match data belongs to the call. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define PRETOK_MAX_REGEX 8

/* ---- The regexes, as the vendors publish them. Two deliberate edits,
 * both semantics-preserving: case-insensitive groups (?i:'s|...) are
 * spelled out ('[sS]...) so Unicode case folding cannot make 'ſ' match
 * 's', and \s is given the White_Space set (see translate below). ---- */

#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* GPT-2 (OpenAI's encoder.py), as llama.cpp lists it. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* Llama 3 (tiktoken cl100k style). */
#define RE_LLAMA3                                                                                  \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"       \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2: Llama 3 with single digits. */
#define RE_QWEN2                                                                                   \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"            \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN35                                                                                  \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*" \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK_DEEPSEEK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* DeepSeek LLM: cased letters listed explicitly (a subset of \p{LC}). */
#define RE_DEEPSEEK_LETTERS                                                                        \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"             \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"          \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"  \
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"   \
    "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"                 \
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"                 \
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"         \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"        \
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"                 \
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}"         \
    "\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"                   \
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"         \
    "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"                  \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"                 \
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"                 \
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}"           \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RE_DEEPSEEK_PUNCT                                                                          \
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
#define RE_DEEPSEEK3_MAIN                                                                          \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+" \
    "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"
#define UPPERISH "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define LOWERISH "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
/* Mistral's Tekken (tiktoken o200k style). */
#define RE_TEKKEN                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "*" LOWERISH "+|[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "+" LOWERISH  \
    "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* OpenAI o200k (gpt-4o), also Llama 4. */
#define RE_GPT4O                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "*" LOWERISH "+" CONTRACTIONS                                 \
    "?|[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "+" LOWERISH "*" CONTRACTIONS                               \
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Ling / BailingMoE: the vendor's possessive quantifiers kept (PCRE has them). */
#define RE_BAILINGMOE                                                                              \
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}"             \
    "| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RE_SEED_CODER                                                                              \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+"             \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_EXAONE_MOE                                                                              \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}"              \
                 "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RE_MINICPM5                                                                                \
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"           \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_UFAKZEKA                                                                                \
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"             \
    "|\\s+(?!\\S)|\\s+"

struct family {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *re[PRETOK_MAX_REGEX];
    bool ignore_merges;
    int add_bos; /* -1: the vocabulary's default */
    bool no_bos;
};

static const struct family families[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, -1,
     false},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2", {RE_LLAMA3}, true, 1,
     false},
    {"dbrx smaug-bpe", {RE_LLAMA3}, false, -1, false},
    {"chatglm-bpe glm4", {RE_LLAMA3}, false, -1, true},
    {"deepseek-llm",
     {"[\r\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, "\\s+$", RE_CJK_DEEPSEEK, "\\p{N}+"},
     false, -1, false},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_DEEPSEEK, "\\p{N}"}, false,
     -1, false},
    {"deepseek-v3 hunyuan-dense",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      RE_DEEPSEEK3_MAIN},
     false, -1, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, -1, false},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", {"\\p{N}", RE_GPT2}, false,
     -1, false},
    {"gpt-2 mpt olmo jais trillion granite-docling phi-2 jina-es jina-de gigachat jina-v2-es "
     "jina-v2-de jina-v1-en jina-v2-code roberta-bpe a.x-4.0 mellum exaone4 modern-bert",
     {RE_GPT2}, false, -1, false},
    {"qwen2 deepseek-r1-qwen megrez stablelm2 hunyuan grok-2 kormo", {RE_QWEN2}, false, -1, false},
    {"qwen35", {RE_QWEN35}, false, -1, false},
    {"poro-chat bloom gpt3-finnish", {RE_PORO}, false, -1, false},
    {"viking", {RE_PORO, "\\p{N}"}, false, -1, false},
    {"tekken", {RE_TEKKEN}, true, 1, false},
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
      "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
     false, 1, false},
    {"gpt-4o llama4", {RE_GPT4O}, false, -1, false},
    {"superbpe", {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}, false, -1, false},
    {"bailingmoe bailingmoe2 llada-moe", {RE_BAILINGMOE}, false, -1, false},
    {"seed-coder", {RE_SEED_CODER}, false, -1, false},
    {"exaone-moe", {RE_EXAONE_MOE}, false, -1, false},
    {"minicpm5", {"\\p{N}{1,3}", RE_MINICPM5}, true, -1, false},
    {"ufakzeka", {RE_UFAKZEKA}, false, -1, false},
    {"laguna", {"[^\\n]+|[\\n]+", RE_QWEN2}, false, -1, false},
};

size_t pretok_n_families(void)
{
    return SHOAL_ARRAY_LEN(families);
}

const char *pretok_family_names(size_t i)
{
    return i < SHOAL_ARRAY_LEN(families) ? families[i].names : NULL;
}

struct pretok {
    unsigned n;
    pcre2_code *re[PRETOK_MAX_REGEX];
    bool jit[PRETOK_MAX_REGEX]; /* JIT-compiled: matched with pcre2_jit_match */
};

static bool name_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* The White_Space property, which is what the vendors' regex engines (and
 * llama.cpp) mean by \s. PCRE2's \s differs at U+180E, so it is replaced. */
#define WS_MEMBERS "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
                   "\\x{202F}\\x{205F}\\x{3000}"

/* Rewrite \s and \S: outside a class as a class, inside one as its members.
 * (\S inside a class would need set subtraction; no vendor regex has it.)
 * The result is a NUL-terminated string the caller frees. */
static enum shoal_err translate(const char *re, char **out)
{
    struct shoal_buf b;
    shoal_buf_init(&b, 1u << 20);
    bool in_class = false;
    enum shoal_err e = SHOAL_OK;
    size_t n = strlen(re);
    for (size_t i = 0; i < n && e == SHOAL_OK; i++) {
        if (re[i] == '\\' && i + 1 < n) {
            char c = re[++i];
            if (c == 's')
                e = shoal_buf_puts(&b, in_class ? WS_MEMBERS : "[" WS_MEMBERS "]");
            else if (c == 'S' && !in_class)
                e = shoal_buf_puts(&b, "[^" WS_MEMBERS "]");
            else if (c == 'S')
                e = SHOAL_ERR_INTERNAL;
            else
                e = shoal_buf_append(&b, re + i - 1, 2);
            continue;
        }
        if (re[i] == '[' && !in_class)
            in_class = true;
        else if (re[i] == ']' && in_class)
            in_class = false;
        e = shoal_buf_append(&b, re + i, 1);
    }
    if (e == SHOAL_OK && !b.data)
        e = SHOAL_ERR_INTERNAL; /* an empty regex: none is */
    if (e != SHOAL_OK) {
        shoal_buf_fini(&b);
        return e;
    }
    *out = b.data; /* the buffer's storage, handed over */
    return SHOAL_OK;
}

void pretok_free(struct pretok *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++)
        pcre2_code_free(p->re[i]);
    free(p);
}

enum shoal_err pretok_new(const char *name, struct pretok **out, struct pretok_info *info,
                          struct shoal_diag *d)
{
    const struct family *f = NULL;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(families); i++) {
        if (name_in(families[i].names, name)) {
            f = &families[i];
            break;
        }
    }
    if (!f) {
        shoal_diag_path(d, "tokenizer.ggml.pre");
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                              "unknown pre-tokenizer '%s' (this build knows llama3, qwen2, gpt-2, "
                              "deepseek-llm, deepseek-coder, starcoder, falcon, mpt, refact and "
                              "others; see pretok.c)",
                              name);
    }
    struct pretok *p = calloc(1, sizeof(*p));
    if (!p)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    for (unsigned i = 0; i < PRETOK_MAX_REGEX && f->re[i]; i++) {
        char *src = NULL;
        enum shoal_err e = translate(f->re[i], &src);
        if (e != SHOAL_OK) {
            pretok_free(p);
            return shoal_diag_set(d, e, "pre-tokenizer '%s': cannot rewrite regex %u", name, i);
        }
        int err = 0;
        PCRE2_SIZE off = 0;
        /* MATCH_INVALID_UTF: invalid UTF-8 never matches and falls into the
         * text between matches, so it is still encoded byte by byte.
         * DOLLAR_ENDONLY: "$" is the end of the piece, as in ECMAScript. */
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                                           PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE,
                                       &err, &off, NULL);
        free(src);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof(msg));
            pretok_free(p);
            return shoal_diag_set(d, SHOAL_ERR_INTERNAL,
                                  "pre-tokenizer '%s': regex %u does not compile at %zu: %s", name,
                                  i, (size_t)off, (const char *)msg);
        }
        /* Without JIT support the interpreter runs the same regex. */
        p->jit[p->n] = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
        p->re[p->n++] = re;
    }
    if (info) {
        info->known = true;
        info->ignore_merges = f->ignore_merges;
        info->add_bos = f->add_bos;
        info->no_bos = f->no_bos;
    }
    *out = p;
    return SHOAL_OK;
}

/* Per-call matching state. */
struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
};

static int run(struct matcher *m, const pcre2_code *re, bool jit, const char *subj, size_t n,
               size_t start, uint32_t opts)
{
    /* The direct JIT entry skips pcre2_match's checks; it cannot take the
     * ANCHORED option, which only the rare empty-match retry uses. */
    int rc = jit && opts == 0 ? pcre2_jit_match(re, (PCRE2_SPTR)subj, n, start, 0, m->md, m->mc)
                              : pcre2_match(re, (PCRE2_SPTR)subj, n, start, opts, m->md, m->mc);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !m->js) {
        /* The default 32 KiB JIT stack ran out: retry once with a bigger one. */
        m->mc = pcre2_match_context_create(NULL);
        m->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!m->mc || !m->js)
            return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(m->mc, NULL, m->js);
        rc = pcre2_match(re, (PCRE2_SPTR)subj, n, start, opts, m->md, m->mc);
    }
    return rc;
}

static enum shoal_err emit(void **arr, size_t *cap, size_t *n, uint32_t off, uint32_t len)
{
    if (len == 0)
        return SHOAL_OK;
    if (tok_grow(arr, cap, (*n + 1) * 2, sizeof(uint32_t)) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    uint32_t *a = *arr;
    a[*n * 2] = off;
    a[*n * 2 + 1] = len;
    (*n)++;
    return SHOAL_OK;
}

/* Split the piece [off, off+len) of text with re into matches and gaps. */
static enum shoal_err split_one(struct matcher *m, const pcre2_code *re, bool jit,
                                const char *text, uint32_t off, uint32_t len, void **arr,
                                size_t *cap, size_t *n)
{
    const char *subj = text + off;
    size_t pos = 0, prev = 0;
    uint32_t opts = 0;
    enum shoal_err e;
    while (pos <= len) {
        int rc = run(m, re, jit, subj, len, pos, opts);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (opts == 0)
                break;
            /* No non-empty match here after an empty one: step one
             * character and search normally, as a global match does. */
            uint32_t cp;
            pos += pos < len ? utf8_decode((const unsigned char *)subj + pos, len - pos, &cp) : 1;
            opts = 0;
            continue;
        }
        if (rc < 0)
            return rc == PCRE2_ERROR_NOMEMORY ? SHOAL_ERR_NOMEM : SHOAL_ERR_TOO_BIG;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev && (e = emit(arr, cap, n, off + (uint32_t)prev, (uint32_t)(ms - prev))))
            return e;
        if ((e = emit(arr, cap, n, off + (uint32_t)ms, (uint32_t)(me - ms))))
            return e;
        prev = me;
        pos = me;
        opts = me == ms ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
    }
    if (prev < len && (e = emit(arr, cap, n, off + (uint32_t)prev, (uint32_t)(len - prev))))
        return e;
    return SHOAL_OK;
}

enum shoal_err pretok_split(const struct pretok *p, const char *text, size_t n,
                            struct tok_scratch *s, size_t *n_spans, const uint32_t **spans)
{
    struct matcher m = {0};
    enum shoal_err e = SHOAL_OK;
    size_t cur_n = 0;
    if (n > UINT32_MAX)
        return SHOAL_ERR_TOO_BIG;
    if ((e = emit(&s->span, &s->span_cap, &cur_n, 0, (uint32_t)n)))
        return e;
    m.md = pcre2_match_data_create(1, NULL);
    if (!m.md)
        return SHOAL_ERR_NOMEM;
    for (unsigned r = 0; r < p->n && e == SHOAL_OK; r++) {
        size_t next_n = 0;
        for (size_t i = 0; i < cur_n; i++) {
            const uint32_t *cur = s->span;
            e = split_one(&m, p->re[r], p->jit[r], text, cur[2 * i], cur[2 * i + 1], &s->span2,
                          &s->span2_cap, &next_n);
            if (e)
                break;
        }
        /* The new pieces become the input of the next regex. */
        void *t = s->span;
        s->span = s->span2;
        s->span2 = t;
        size_t tc = s->span_cap;
        s->span_cap = s->span2_cap;
        s->span2_cap = tc;
        cur_n = next_n;
    }
    pcre2_match_data_free(m.md);
    pcre2_match_context_free(m.mc);
    pcre2_jit_stack_free(m.js);
    if (e)
        return e;
    *n_spans = cur_n;
    *spans = s->span;
    return SHOAL_OK;
}
