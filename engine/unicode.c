/* unicode.c: the few Unicode operations the tokenizers need: strict UTF-8
 * decoding, encoding, simple lowercase and NFD-first lookups over the
 * generated tables in unicode_data.c, and GPT-2's byte-to-unicode map.
 * Invariant: nothing here allocates or keeps state, so any thread may call. */
#include "tokenizer_internal.h"

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        *cp = 0xFFFD;
        return 1;
    }
    v = (v << 6) | (s[1] & 0x3F);
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

uint32_t unicode_tolower(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    size_t lo = 0, hi = unicode_lower_map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (unicode_lower_map[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < unicode_lower_map_len && unicode_lower_map[lo][0] == cp)
        return unicode_lower_map[lo][1];
    return cp;
}

uint32_t unicode_nfd_first(uint32_t cp)
{
    if (cp < 0xC0)
        return cp;
    /* The last range starting at or before cp. */
    size_t lo = 0, hi = unicode_nfd_map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (unicode_nfd_map[mid][0] <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && cp <= unicode_nfd_map[lo - 1][1])
        return unicode_nfd_map[lo - 1][2];
    return cp;
}

/* Bytes GPT-2 leaves as themselves: the printable Latin-1 ones. */
static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t unicode_byte_cp(uint8_t b)
{
    if (byte_is_printable(b))
        return b;
    /* The other 68 get 256, 257, ... in byte order: 0x00-0x20, 0x7F-0xA0,
     * then 0xAD. */
    if (b <= 0x20)
        return 256u + b;
    if (b <= 0xA0)
        return 256u + 33u + (b - 0x7Fu);
    return 256u + 67u;
}

int unicode_cp_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68)
        return -1;
    uint32_t n = cp - 256;
    if (n < 33)
        return (int)n;
    if (n < 67)
        return (int)(0x7F + (n - 33));
    return 0xAD;
}
