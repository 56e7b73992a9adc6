/* jinja_unicode.c: the Unicode facts Python's str methods depend on: UTF-8
 * decoding that round-trips any bytes (invalid ones become U+DC80..U+DCFF,
 * Python's surrogateescape), whitespace and line breaks as str.isspace() and
 * splitlines() see them, and simple case mapping (Latin, Greek, Cyrillic,
 * Armenian, Georgian, full-width; other scripts have no case here). */
#include "jinja.h"

static bool cont(unsigned char c) { return (c & 0xC0) == 0x80; }

uint32_t jutf8_dec(const unsigned char *p, size_t n, size_t *len)
{
    unsigned char c = p[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF && n >= 2 && cont(p[1])) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c >= 0xE0 && c <= 0xEF && n >= 3 && cont(p[1]) && cont(p[2])) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        if (cp >= 0x800) {
            *len = 3;
            return cp;
        }
    }
    if (c >= 0xF0 && c <= 0xF4 && n >= 4 && cont(p[1]) && cont(p[2]) && cont(p[3])) {
        uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
                      ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            *len = 4;
            return cp;
        }
    }
    *len = 1;
    return 0xDC00u + c; /* an undecodable byte */
}

size_t jutf8_enc(uint32_t cp, char out[4])
{
    if (cp >= 0xDC80 && cp <= 0xDCFF) { /* an undecodable byte, restored */
        out[0] = (char)(cp - 0xDC00);
        return 1;
    }
    return shoal_utf8_encode(cp, out);
}

bool jpy_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool jpy_is_linebreak(uint32_t cp)
{
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

/* Pairs where the upper case is even and the lower case the next odd
 * code point (or the other way round when odd_upper). */
struct pair_range {
    uint32_t lo, hi;
    bool odd_upper;
};

static const struct pair_range pairs[] = {
    {0x100, 0x12F, false}, {0x132, 0x137, false}, {0x139, 0x148, true},
    {0x14A, 0x177, false}, {0x179, 0x17E, true},  {0x1A0, 0x1A5, false},
    {0x1DE, 0x1EF, false}, {0x1F8, 0x21F, false}, {0x222, 0x233, false},
    {0x3D8, 0x3EF, false}, {0x460, 0x481, false}, {0x48A, 0x4BF, false},
    {0x4C1, 0x4CE, true},  {0x4D0, 0x52F, false}, {0x1E00, 0x1E95, false},
    {0x1EA0, 0x1EFF, false},
};

/* Offset ranges: upper in [lo, hi] maps to lower cp + delta. */
struct off_range {
    uint32_t lo, hi;
    int32_t delta;
};

static const struct off_range offs[] = {
    {'A', 'Z', 32},        {0xC0, 0xD6, 32},      {0xD8, 0xDE, 32},
    {0x388, 0x38A, 37},    {0x391, 0x3A1, 32},    {0x3A3, 0x3AB, 32},
    {0x400, 0x40F, 80},    {0x410, 0x42F, 32},    {0x531, 0x556, 48},
    {0x10A0, 0x10C5, 7264}, {0x1F08, 0x1F0F, -8}, {0x1F18, 0x1F1D, -8},
    {0x1F28, 0x1F2F, -8},  {0x1F38, 0x1F3F, -8},  {0x1F48, 0x1F4D, -8},
    {0x1F68, 0x1F6F, -8},  {0x2160, 0x216F, 16},  {0x24B6, 0x24CF, 26},
    {0xFF21, 0xFF3A, 32},  {0x10400, 0x10427, 40},
};

uint32_t jpy_lower(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(offs); i++)
        if (cp >= offs[i].lo && cp <= offs[i].hi)
            return (uint32_t)((int32_t)cp + offs[i].delta);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(pairs); i++)
        if (cp >= pairs[i].lo && cp <= pairs[i].hi)
            return ((cp & 1) != 0) == pairs[i].odd_upper ? cp + 1 : cp;
    if ((cp >= 0x1C4 && cp <= 0x1CC) || (cp >= 0x1F1 && cp <= 0x1F3)) {
        uint32_t base = cp >= 0x1F1 ? 0x1F1 : 0x1C4 + (cp - 0x1C4) / 3 * 3;
        return base + 2; /* DŽ Dž dž: the lower-case member */
    }
    switch (cp) {
    case 0x178: return 0xFF;
    case 0x386: return 0x3AC;
    case 0x38C: return 0x3CC;
    case 0x38E: return 0x3CD;
    case 0x38F: return 0x3CE;
    default: return cp;
    }
}

uint32_t jpy_upper(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(offs); i++) {
        uint32_t lo = (uint32_t)((int32_t)offs[i].lo + offs[i].delta);
        uint32_t hi = (uint32_t)((int32_t)offs[i].hi + offs[i].delta);
        if (cp >= lo && cp <= hi)
            return (uint32_t)((int32_t)cp - offs[i].delta);
    }
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(pairs); i++)
        if (cp >= pairs[i].lo && cp <= pairs[i].hi)
            return ((cp & 1) != 0) != pairs[i].odd_upper ? cp - 1 : cp;
    if ((cp >= 0x1C4 && cp <= 0x1CC) || (cp >= 0x1F1 && cp <= 0x1F3))
        return cp >= 0x1F1 ? 0x1F1 : 0x1C4 + (cp - 0x1C4) / 3 * 3;
    switch (cp) {
    case 0xB5: return 0x39C;
    case 0xFF: return 0x178;
    case 0x131: return 'I';
    case 0x17F: return 'S';
    case 0x3C2: return 0x3A3;
    case 0x3AC: return 0x386;
    case 0x3CC: return 0x38C;
    case 0x3CD: return 0x38E;
    case 0x3CE: return 0x38F;
    default: return cp;
    }
}

bool jpy_isalpha(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (jpy_lower(cp) != cp || jpy_upper(cp) != cp)
        return true;
    return cp == 0xAA || cp == 0xBA || cp == 0xDF || (cp >= 0x3040 && cp <= 0x30FF) ||
           (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
           (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0x5D0 && cp <= 0x5EA) ||
           (cp >= 0x620 && cp <= 0x64A) || (cp >= 0xE01 && cp <= 0xE30) ||
           (cp >= 0x904 && cp <= 0x939);
}

bool jpy_isprintable(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7F)
        return false;
    if (cp < 0x7F)
        return true;
    if (cp <= 0xA0 || cp == 0xAD)
        return false;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
        (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF ||
        (cp >= 0xFFF9 && cp <= 0xFFFB) || cp == 0x61C || cp == 0x180E ||
        (cp >= 0x600 && cp <= 0x605) || cp == 0x6DD || cp == 0x70F)
        return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000)
        return false;
    if ((cp & 0xFFFE) == 0xFFFE || (cp >= 0xFDD0 && cp <= 0xFDEF))
        return false;
    if (cp >= 0xE0000 && cp <= 0xE0FFF)
        return false;
    return true;
}
