/* Long double arithmetic for INCRBYFLOAT and HINCRBYFLOAT.
 *
 * Redis parses both operands with strtold, adds them in long double (80-bit
 * x87 extended precision on x86-64) and prints the sum with "%.17Lf", then
 * trims trailing zeros. Rust has no long double, so the same C library calls
 * do it here: the results match Redis's bit for bit on the same platform.
 * Written from the behaviour Redis documents and shows, not from its source. */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS. */
#define LD_MAX_CHARS (5 * 1024)

/* Parses s[0..len) as a whole: no leading space, nothing after the number,
 * no NaN, no overflow or underflow to zero, and no NUL byte inside. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[LD_MAX_CHARS];
    char *end;
    long double v;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* 1 when s[0..len) is a valid long double; *infinite tells whether it is +-inf. */
int forkless_ld_check(const char *s, size_t len, int *infinite) {
    long double v;
    if (!parse_ld(s, len, &v)) return 0;
    *infinite = isinf(v) ? 1 : 0;
    return 1;
}

/* a + b, printed into out (cap bytes) as "%.17Lf" without trailing zeros.
 * Returns 0 (and *out_len), 1 when a is not a float, 2 when b is not, 3 when
 * the sum is NaN or infinite, 4 when out is too small. */
int forkless_ld_add(const char *a, size_t a_len, const char *b, size_t b_len,
                    char *out, size_t cap, size_t *out_len) {
    long double x, y;
    int l;
    if (!parse_ld(a, a_len, &x)) return 1;
    if (!parse_ld(b, b_len, &y)) return 2;
    x += y;
    if (isnan(x) || isinf(x)) return 3;
    l = snprintf(out, cap, "%.17Lf", x);
    if (l < 0 || (size_t)l + 1 > cap) return 4;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        l = 1;
    }
    *out_len = (size_t)l;
    return 0;
}
