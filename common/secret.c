/* secret.c: opaque secrets. The value lives in one heap block that is wiped
 * before it is freed; nothing here ever formats it. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct shoal_secret {
    size_t len;
    char source[128];
    char value[]; /* len bytes + NUL */
};

enum shoal_err shoal_secret_new(const void *value, size_t n, const char *source,
                                struct shoal_secret **out)
{
    if (n > SHOAL_CAP_SECRET_FILE_BYTES)
        return SHOAL_ERR_TOO_BIG;
    struct shoal_secret *s = malloc(sizeof(*s) + n + 1);
    if (!s)
        return SHOAL_ERR_NOMEM;
    s->len = n;
    shoal_strlcpy(s->source, source ? source : "", sizeof(s->source));
    memcpy(s->value, value, n);
    s->value[n] = '\0';
    *out = s;
    return SHOAL_OK;
}

void shoal_secret_free(struct shoal_secret *s)
{
    if (!s)
        return;
    explicit_bzero(s->value, s->len);
    free(s);
}

const char *shoal_secret_reveal(const struct shoal_secret *s, size_t *len)
{
    if (len)
        *len = s->len;
    return s->value;
}

const char *shoal_secret_source(const struct shoal_secret *s)
{
    return s->source;
}

bool shoal_secret_equals(const struct shoal_secret *s, const void *candidate, size_t n)
{
    /* Touch every byte of the secret whatever the candidate, so the time
     * taken says nothing about how long a matching prefix was. */
    const unsigned char *c = candidate;
    unsigned char diff = (unsigned char)(n != s->len);
    for (size_t i = 0; i < s->len; i++) {
        unsigned char cb = i < n ? c[i] : 0;
        diff |= (unsigned char)(cb ^ (unsigned char)s->value[i]);
    }
    return diff == 0;
}
