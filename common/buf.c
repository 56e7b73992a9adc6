/* buf.c: bounded growable byte buffers. Invariant: after any successful
 * append, data[len] == '\0' and len <= max; a failed call leaves the buffer
 * exactly as it was. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shoal_buf_init(struct shoal_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void shoal_buf_fini(struct shoal_buf *b)
{
    free(b->data);
    shoal_buf_init(b, b->max);
}

void shoal_buf_reset(struct shoal_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

enum shoal_err shoal_buf_reserve(struct shoal_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SHOAL_ERR_TOO_BIG;
    size_t need = b->len + extra + 1; /* +1: the trailing NUL */
    if (need <= b->cap)
        return SHOAL_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1 >= need ? b->max + 1 : need;
    char *p = realloc(b->data, cap);
    if (!p)
        return SHOAL_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return SHOAL_OK;
}

enum shoal_err shoal_buf_append(struct shoal_buf *b, const void *p, size_t n)
{
    enum shoal_err err = shoal_buf_reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SHOAL_OK;
}

enum shoal_err shoal_buf_puts(struct shoal_buf *b, const char *s)
{
    return shoal_buf_append(b, s, strlen(s));
}

enum shoal_err shoal_buf_printf(struct shoal_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SHOAL_ERR_INVALID;
    enum shoal_err err = shoal_buf_reserve(b, (size_t)n);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SHOAL_OK;
}

void shoal_buf_consume(struct shoal_buf *b, size_t n)
{
    if (n >= b->len) {
        shoal_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

const char *shoal_buf_cstr(const struct shoal_buf *b)
{
    return b->data ? b->data : "";
}
