/* strbuf.h: a growable NUL-ended byte string for building results whose
 * size isn't known up front (decoded headers, address text). Callers
 * bound what they feed it; out-of-memory aborts (xmalloc). */
#ifndef HERON_STRBUF_H
#define HERON_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *data;	/* NULL until the first add; always NUL-ended after */
	size_t len, cap;
};

void strbuf_add(struct strbuf *s, const void *p, size_t n);
/* Hands the string over (never NULL: "" when empty) and empties s. */
char *strbuf_take(struct strbuf *s);

#endif
