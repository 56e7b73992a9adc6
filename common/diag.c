/* diag.c: error names and diagnostics (struct shoal_diag). A diagnostic is
 * fixed-size and formatting never allocates, so it works on the paths that
 * report running out of memory. */
#include "common.h"

#include <stdio.h>
#include <string.h>

const char *shoal_err_name(enum shoal_err err)
{
    switch (err) {
    case SHOAL_OK: return "ok";
    case SHOAL_ERR_NOMEM: return "out_of_memory";
    case SHOAL_ERR_INVALID: return "invalid";
    case SHOAL_ERR_NOT_FOUND: return "not_found";
    case SHOAL_ERR_IO: return "io";
    case SHOAL_ERR_TOO_BIG: return "too_big";
    case SHOAL_ERR_PERM: return "permission";
    case SHOAL_ERR_BUSY: return "busy";
    case SHOAL_ERR_TIMEOUT: return "timeout";
    case SHOAL_ERR_UNSUPPORTED: return "unsupported";
    case SHOAL_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

void shoal_diag_clear(struct shoal_diag *d)
{
    if (!d)
        return;
    memset(d, 0, sizeof(*d));
    d->offset = -1;
}

enum shoal_err shoal_diag_setv(struct shoal_diag *d, enum shoal_err err, const char *fmt,
                               va_list ap)
{
    if (!d)
        return err;
    d->err = err;
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    return err;
}

enum shoal_err shoal_diag_set(struct shoal_diag *d, enum shoal_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    shoal_diag_setv(d, err, fmt, ap);
    va_end(ap);
    return err;
}

void shoal_diag_at(struct shoal_diag *d, const char *file, unsigned line, unsigned col)
{
    if (!d)
        return;
    if (file)
        shoal_strlcpy(d->file, file, sizeof(d->file));
    d->line = line;
    d->col = col;
}

void shoal_diag_at_offset(struct shoal_diag *d, const char *file, int64_t offset)
{
    if (!d)
        return;
    if (file)
        shoal_strlcpy(d->file, file, sizeof(d->file));
    d->offset = offset;
}

void shoal_diag_path(struct shoal_diag *d, const char *path)
{
    if (d && path)
        shoal_strlcpy(d->path, path, sizeof(d->path));
}

size_t shoal_diag_format(const struct shoal_diag *d, char *out, size_t n)
{
    char where[320] = "";
    size_t w = 0;

    if (d->file[0]) {
        if (d->line)
            w = (size_t)snprintf(where, sizeof(where), "%s:%u:%u: ", d->file, d->line,
                                 d->col ? d->col : 1);
        else if (d->offset >= 0)
            w = (size_t)snprintf(where, sizeof(where), "%s: byte %lld: ", d->file,
                                 (long long)d->offset);
        else
            w = (size_t)snprintf(where, sizeof(where), "%s: ", d->file);
    } else if (d->line) {
        w = (size_t)snprintf(where, sizeof(where), "%u:%u: ", d->line, d->col ? d->col : 1);
    } else if (d->offset >= 0) {
        w = (size_t)snprintf(where, sizeof(where), "byte %lld: ", (long long)d->offset);
    }
    (void)w;
    int r;
    if (d->path[0])
        r = snprintf(out, n, "%s%s: %s", where, d->path, d->msg);
    else
        r = snprintf(out, n, "%s%s", where, d->msg);
    return r < 0 ? 0 : (size_t)r;
}
