/* jinja_lex.c: splits a chat template into tokens the way jinja2's lexer
 * does with trim_blocks and lstrip_blocks on: template text (with the
 * whitespace control of the tags around it already applied), tag
 * delimiters, and expression tokens. Byte-exact whitespace handling lives
 * here and only here; the parser never sees stripped whitespace. */
#include "jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lexer {
    struct jarena *a;
    const char *s; /* normalized source */
    size_t n;
    size_t pos;
    size_t lc_pos; /* line/col known for this position */
    uint32_t lc_line, lc_col;
    struct jtok *toks;
    size_t ntoks, cap;
    bool line_starting;
    char bstack[96]; /* open brackets inside one tag */
    unsigned nb;
    struct shoal_diag *d;
};

/* 1-based line and column (in code points) of byte offset pos. */
static void where(struct lexer *L, size_t pos, uint32_t *line, uint32_t *col)
{
    if (pos < L->lc_pos) {
        L->lc_pos = 0;
        L->lc_line = 1;
        L->lc_col = 1;
    }
    for (size_t i = L->lc_pos; i < pos && i < L->n; i++) {
        unsigned char ch = (unsigned char)L->s[i];
        if (ch == '\n') {
            L->lc_line++;
            L->lc_col = 1;
        } else if ((ch & 0xC0) != 0x80) {
            L->lc_col++;
        }
    }
    L->lc_pos = pos;
    *line = L->lc_line;
    *col = L->lc_col;
}

static enum shoal_err fail(struct lexer *L, size_t pos, const char *fmt, ...) SHOAL_PRINTF(3, 4);
static enum shoal_err fail(struct lexer *L, size_t pos, const char *fmt, ...)
{
    uint32_t line, col;
    where(L, pos, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    shoal_diag_setv(L->d, SHOAL_ERR_INVALID, fmt, ap);
    va_end(ap);
    shoal_diag_at(L->d, NULL, line, col);
    return SHOAL_ERR_INVALID;
}

static struct jtok *emit(struct lexer *L, uint8_t type, size_t pos, const char *p, size_t n)
{
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        struct jtok *t = realloc(L->toks, cap * sizeof(*t));
        if (!t)
            return NULL;
        L->toks = t;
        L->cap = cap;
    }
    struct jtok *t = &L->toks[L->ntoks++];
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->p = p;
    t->n = n;
    where(L, pos, &t->line, &t->col);
    return t;
}

/* Python's \s on a str: one whitespace code point at i, its byte length or 0. */
static size_t space_at(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x80)
        return jpy_isspace(ch) ? 1 : 0;
    size_t len;
    uint32_t cp = jutf8_dec((const unsigned char *)s + i, n - i, &len);
    return jpy_isspace(cp) ? len : 0;
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
    size_t k;
    while ((k = space_at(s, n, i)) > 0)
        i += k;
    return i;
}

/* Python's str.rstrip() of s[from, to): the new end. */
static size_t rstrip_end(const char *s, size_t from, size_t to)
{
    while (to > from) {
        size_t st = to - 1;
        while (st > from && ((unsigned char)s[st] & 0xC0) == 0x80 && to - st < 4)
            st--;
        size_t k = space_at(s, to, st);
        if (k == 0 || st + k != to)
            break;
        to = st;
    }
    return to;
}

static bool all_space(const char *s, size_t from, size_t to)
{
    if (from >= to)
        return false;
    return skip_space(s, to, from) == to;
}

/* Apply the whitespace control of a tag that starts right after the text
 * s[from, to): returns the end of the text to keep. */
static size_t strip_before(struct lexer *L, size_t from, size_t to, char sign, bool is_var)
{
    if (sign == '-')
        return rstrip_end(L->s, from, to);
    if (sign == '+' || is_var)
        return to;
    size_t l_pos = from;
    for (size_t i = to; i > from; i--) {
        if (L->s[i - 1] == '\n') {
            l_pos = i;
            break;
        }
    }
    if ((l_pos > from || L->line_starting) && all_space(L->s, l_pos, to))
        return l_pos;
    return to;
}

static bool at(struct lexer *L, size_t i, const char *lit)
{
    size_t k = strlen(lit);
    return i <= L->n && L->n - i >= k && memcmp(L->s + i, lit, k) == 0;
}

static int hexval(char c) { return shoal_hex_digit(c); }

/* Decode a string literal body the way jinja2 does (Python's
 * unicode-escape after backslashreplace). */
static enum shoal_err lex_string(struct lexer *L, size_t start, size_t *endp)
{
    char q = L->s[start];
    size_t i = start + 1;
    while (i < L->n && L->s[i] != q) {
        if (L->s[i] == '\\')
            i++;
        i++;
    }
    if (i >= L->n)
        return fail(L, start, "unexpected char '%c' at %zu (unterminated string)", q, start);
    size_t body = start + 1, end = i;
    char *out = jarena_alloc(L->a, (end - body) * 3 + 1);
    if (!out)
        return SHOAL_ERR_NOMEM;
    size_t o = 0;
    for (size_t k = body; k < end;) {
        char ch = L->s[k];
        if (ch != '\\') {
            out[o++] = ch;
            k++;
            continue;
        }
        char e = L->s[k + 1];
        k += 2;
        switch (e) {
        case '\n': break; /* line continuation */
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
            int want = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int j = 0; j < want; j++) {
                int h = k + (size_t)j < end ? hexval(L->s[k + (size_t)j]) : -1;
                if (h < 0)
                    return fail(L, start, "truncated \\%cXXXX escape in string literal", e);
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF)
                return fail(L, start, "illegal Unicode character in string literal");
            k += (size_t)want;
            o += jutf8_enc(cp, out + o);
            break;
        }
        case 'N':
            return fail(L, start, "\\N{...} escapes are not supported in string literals");
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = (uint32_t)(e - '0');
                for (int j = 0; j < 2 && k < end && L->s[k] >= '0' && L->s[k] <= '7'; j++)
                    cp = cp * 8 + (uint32_t)(L->s[k++] - '0');
                o += jutf8_enc(cp, out + o);
            } else if ((unsigned char)e >= 0x80) {
                /* backslashreplace turned the character into an escape
                 * whose own backslash this one then escaped */
                size_t len;
                uint32_t cp = jutf8_dec((const unsigned char *)L->s + k - 1, end - (k - 1), &len);
                k = k - 1 + len;
                int w = cp <= 0xFF ? snprintf(out + o, 12, "\\x%02x", (unsigned)cp)
                        : cp <= 0xFFFF ? snprintf(out + o, 12, "\\u%04x", (unsigned)cp)
                                       : snprintf(out + o, 12, "\\U%08x", (unsigned)cp);
                o += (size_t)w;
            } else {
                out[o++] = '\\';
                out[o++] = e;
            }
        }
    }
    out[o] = 0;
    struct jtok *t = emit(L, JT_STRING, start, out, o);
    if (!t)
        return SHOAL_ERR_NOMEM;
    *endp = end + 1;
    return SHOAL_OK;
}

static bool isdig(char c) { return c >= '0' && c <= '9'; }

/* (\d+_)*\d+ at i: end, or i when none. */
static size_t digits(struct lexer *L, size_t i)
{
    size_t j = i;
    while (j < L->n && isdig(L->s[j])) {
        j++;
        if (j + 1 < L->n && L->s[j] == '_' && isdig(L->s[j + 1]))
            j++;
    }
    return j;
}

static enum shoal_err lex_number(struct lexer *L, size_t start, size_t *endp)
{
    const char *s = L->s;
    /* float: digits then (.digits)?e[+-]digits, or .digits; not after a dot */
    if (start == 0 || s[start - 1] != '.') {
        size_t j = digits(L, start), k = j;
        bool frac = false, ok = false;
        if (k < L->n && s[k] == '.' && k + 1 < L->n && isdig(s[k + 1])) {
            k = digits(L, k + 1);
            frac = true;
        }
        if (k < L->n && (s[k] == 'e' || s[k] == 'E')) {
            size_t e = k + 1;
            if (e < L->n && (s[e] == '+' || s[e] == '-'))
                e++;
            if (e < L->n && isdig(s[e])) {
                k = digits(L, e);
                ok = true;
            }
        }
        if (!ok && frac) {
            /* the exponent did not match: just the fraction */
            ok = true;
            k = digits(L, j + 1);
        }
        if (ok) {
            char buf[128];
            size_t o = 0;
            for (size_t i = start; i < k && o + 1 < sizeof(buf); i++)
                if (s[i] != '_')
                    buf[o++] = s[i];
            buf[o] = 0;
            if (k - start >= sizeof(buf))
                return fail(L, start, "float literal too long");
            struct jtok *t = emit(L, JT_FLOAT, start, s + start, k - start);
            if (!t)
                return SHOAL_ERR_NOMEM;
            t->f = strtod(buf, NULL);
            *endp = k;
            return SHOAL_OK;
        }
    }
    /* integer */
    unsigned base = 10;
    size_t i = start;
    if (s[i] == '0' && i + 1 < L->n) {
        char b = (char)(s[i + 1] | 0x20);
        if (b == 'x' || b == 'o' || b == 'b') {
            unsigned bb = b == 'x' ? 16 : b == 'o' ? 8 : 2;
            size_t j = i + 2;
            if (j < L->n && s[j] == '_')
                j++;
            int h = j < L->n ? hexval(s[j]) : -1;
            if (h >= 0 && (unsigned)h < bb) {
                base = bb;
                i += 2;
            }
        }
    }
    uint64_t v = 0;
    bool over = false;
    size_t j = i;
    if (base == 10 && s[i] == '0') {
        /* 0(_?0)* */
        j = i + 1;
        while (j < L->n && (s[j] == '0' || (s[j] == '_' && j + 1 < L->n && s[j + 1] == '0')))
            j++;
    } else {
        while (j < L->n) {
            if (s[j] == '_' && j + 1 < L->n && hexval(s[j + 1]) >= 0 &&
                (unsigned)hexval(s[j + 1]) < base && j > i) {
                j++;
                continue;
            }
            int h = hexval(s[j]);
            if (h < 0 || (unsigned)h >= base)
                break;
            if (v > (UINT64_MAX - (uint64_t)h) / base)
                over = true;
            v = v * base + (uint64_t)h;
            j++;
        }
    }
    if (over || v > (uint64_t)INT64_MAX)
        return fail(L, start, "integer literal too large");
    struct jtok *t = emit(L, JT_INT, start, s + start, j - start);
    if (!t)
        return SHOAL_ERR_NOMEM;
    t->i = (int64_t)v;
    *endp = j;
    return SHOAL_OK;
}

static bool isname0(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool isname(char c) { return isname0(c) || isdig(c); }

/* Tokens inside {{ }} or {% %} up to and including the end delimiter. */
static enum shoal_err lex_tag(struct lexer *L, bool is_var)
{
    const char *s = L->s;
    L->nb = 0;
    for (;;) {
        size_t p = L->pos;
        if (L->nb == 0) {
            size_t end = 0;
            bool found = false;
            if (!is_var) {
                if (at(L, p, "+%}")) {
                    end = p + 3;
                    found = true;
                } else if (at(L, p, "-%}")) {
                    end = skip_space(s, L->n, p + 3);
                    found = true;
                } else if (at(L, p, "%}")) {
                    end = p + 2;
                    if (end < L->n && s[end] == '\n')
                        end++; /* trim_blocks */
                    found = true;
                }
            } else {
                if (at(L, p, "-}}")) {
                    end = skip_space(s, L->n, p + 3);
                    found = true;
                } else if (at(L, p, "}}")) {
                    end = p + 2;
                    found = true;
                }
            }
            if (found) {
                if (!emit(L, is_var ? JT_VAR_END : JT_BLOCK_END, p, s + p, 0))
                    return SHOAL_ERR_NOMEM;
                L->line_starting = s[end - 1] == '\n';
                L->pos = end;
                return SHOAL_OK;
            }
        }
        if (p >= L->n)
            return fail(L, p, "unexpected end of template, expected '%s'",
                        is_var ? "end of print statement" : "end of statement block");
        size_t k = space_at(s, L->n, p);
        if (k) {
            L->pos = p + k;
            continue;
        }
        char ch = s[p];
        size_t next = p + 1;
        enum shoal_err rc = SHOAL_OK;
        if (isdig(ch)) {
            rc = lex_number(L, p, &next);
        } else if (isname0(ch)) {
            while (next < L->n && isname(s[next]))
                next++;
            if (!emit(L, JT_NAME, p, s + p, next - p))
                return SHOAL_ERR_NOMEM;
        } else if (ch == '\'' || ch == '"') {
            rc = lex_string(L, p, &next);
        } else {
            uint8_t op = 0;
            char c2 = p + 1 < L->n ? s[p + 1] : 0;
            if (ch == '/' && c2 == '/')
                op = JT_OP_FLOORDIV;
            else if (ch == '*' && c2 == '*')
                op = JT_OP_POW;
            else if (ch == '=' && c2 == '=')
                op = JT_OP_EQ;
            else if (ch == '!' && c2 == '=')
                op = JT_OP_NE;
            else if (ch == '>' && c2 == '=')
                op = JT_OP_GE;
            else if (ch == '<' && c2 == '=')
                op = JT_OP_LE;
            if (op) {
                next = p + 2;
            } else if (strchr("+-/*%~[](){}<>=.:|,;", ch) && ch) {
                op = (uint8_t)ch;
            } else {
                size_t len;
                jutf8_dec((const unsigned char *)s + p, L->n - p, &len);
                return fail(L, p, "unexpected char '%.*s' at %zu", (int)len, s + p, p);
            }
            if (ch == '(' || ch == '[' || ch == '{') {
                if (L->nb >= sizeof(L->bstack)) {
                    shoal_diag_set(L->d, SHOAL_ERR_TOO_BIG, "brackets nested too deeply");
                    uint32_t line, col;
                    where(L, p, &line, &col);
                    shoal_diag_at(L->d, NULL, line, col);
                    return SHOAL_ERR_TOO_BIG;
                }
                L->bstack[L->nb++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
            } else if (ch == ')' || ch == ']' || ch == '}') {
                if (L->nb == 0)
                    return fail(L, p, "unexpected '%c'", ch);
                char want = L->bstack[--L->nb];
                if (want != ch)
                    return fail(L, p, "unexpected '%c', expected '%c'", ch, want);
            }
            struct jtok *t = emit(L, JT_OP, p, s + p, next - p);
            if (!t)
                return SHOAL_ERR_NOMEM;
            t->op = op;
        }
        if (rc != SHOAL_OK)
            return rc;
        L->pos = next;
    }
}

/* {% raw %}...{% endraw %}: the text in between is data, verbatim. L->pos
 * is just past the raw-begin tag. */
static enum shoal_err lex_raw(struct lexer *L, size_t tag_pos)
{
    const char *s = L->s;
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        if (s[i] != '{' || s[i + 1] != '%')
            continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < L->n && (s[j] == '-' || s[j] == '+'))
            sign = s[j++];
        j = skip_space(s, L->n, j);
        if (!at(L, j, "endraw"))
            continue;
        j = skip_space(s, L->n, j + 6);
        size_t end;
        if (at(L, j, "+%}")) {
            end = j + 3;
        } else if (at(L, j, "-%}")) {
            end = skip_space(s, L->n, j + 3);
        } else if (at(L, j, "%}")) {
            end = j + 2;
            if (end < L->n && s[end] == '\n')
                end++;
        } else {
            continue;
        }
        size_t keep = strip_before(L, L->pos, i, sign, false);
        if (keep > L->pos && !emit(L, JT_DATA, L->pos, s + L->pos, keep - L->pos))
            return SHOAL_ERR_NOMEM;
        L->line_starting = s[end - 1] == '\n';
        L->pos = end;
        return SHOAL_OK;
    }
    return fail(L, tag_pos, "missing end of raw directive");
}

enum shoal_err jinja_lex(struct jarena *a, const char *src, size_t n, struct jtok **toks,
                         size_t *ntoks, struct shoal_diag *d)
{
    struct lexer L = {.a = a, .d = d, .lc_line = 1, .lc_col = 1, .line_starting = true};
    /* Normalize newlines; drop one trailing newline (keep_trailing_newline
     * is off). */
    char *s = jarena_alloc(a, n + 1);
    if (!s)
        return SHOAL_ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n')
                i++;
        } else {
            s[m++] = src[i];
        }
    }
    if (m > 0 && s[m - 1] == '\n')
        m--;
    s[m] = 0;
    L.s = s;
    L.n = m;

    enum shoal_err rc = SHOAL_OK;
    while (L.pos < L.n) {
        size_t i = L.pos;
        const char *hit = NULL;
        for (size_t k = i; k + 1 < L.n; k++) {
            const char *q = memchr(s + k, '{', L.n - 1 - k);
            if (!q)
                break;
            if (q[1] == '{' || q[1] == '%' || q[1] == '#') {
                hit = q;
                break;
            }
            k = (size_t)(q - s);
        }
        if (!hit) {
            if (!emit(&L, JT_DATA, i, s + i, L.n - i)) {
                rc = SHOAL_ERR_NOMEM;
                goto fail;
            }
            L.pos = L.n;
            break;
        }
        size_t tag = (size_t)(hit - s);
        char kind = s[tag + 1];
        size_t after = tag + 2;
        char sign = 0;
        if (after < L.n && (s[after] == '-' || s[after] == '+'))
            sign = s[after++];
        /* {% raw %} */
        bool raw = false;
        size_t raw_end = 0;
        if (kind == '%') {
            size_t j = skip_space(s, L.n, after);
            if (at(&L, j, "raw")) {
                j = skip_space(s, L.n, j + 3);
                if (at(&L, j, "-%}")) {
                    raw = true;
                    raw_end = skip_space(s, L.n, j + 3);
                } else if (at(&L, j, "%}")) {
                    raw = true;
                    raw_end = j + 2;
                }
            }
        }
        size_t keep = strip_before(&L, i, tag, sign, kind == '{');
        if (keep > i && !emit(&L, JT_DATA, i, s + i, keep - i)) {
            rc = SHOAL_ERR_NOMEM;
            goto fail;
        }
        L.line_starting = false;
        if (raw) {
            L.line_starting = s[raw_end - 1] == '\n';
            L.pos = raw_end;
            if ((rc = lex_raw(&L, tag)) != SHOAL_OK)
                goto fail;
            continue;
        }
        if (kind == '#') {
            const char *e = NULL;
            for (size_t k = after; k + 1 < L.n; k++) {
                if (s[k] == '#' && s[k + 1] == '}') {
                    e = s + k;
                    break;
                }
            }
            if (!e) {
                rc = fail(&L, tag, "missing end of comment tag");
                goto fail;
            }
            size_t k = (size_t)(e - s);
            char esign = k > after && (s[k - 1] == '-' || s[k - 1] == '+') ? s[k - 1] : 0;
            size_t end = k + 2;
            if (esign == '-')
                end = skip_space(s, L.n, end);
            else if (esign != '+' && end < L.n && s[end] == '\n')
                end++;
            L.line_starting = s[end - 1] == '\n';
            L.pos = end;
            continue;
        }
        bool is_var = kind == '{';
        if (!emit(&L, is_var ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, tag, s + tag, 0)) {
            rc = SHOAL_ERR_NOMEM;
            goto fail;
        }
        L.pos = after;
        if ((rc = lex_tag(&L, is_var)) != SHOAL_OK)
            goto fail;
    }
    if (!emit(&L, JT_EOF, L.n, s + L.n, 0)) {
        rc = SHOAL_ERR_NOMEM;
        goto fail;
    }
    *toks = L.toks;
    *ntoks = L.ntoks;
    return SHOAL_OK;
fail:
    if (rc == SHOAL_ERR_NOMEM)
        shoal_diag_set(d, rc, "out of memory");
    free(L.toks);
    return rc;
}
