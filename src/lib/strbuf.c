/* strbuf.c: growable NUL-ended string (strbuf.h). */
#include "lib/strbuf.h"
#include "lib/xmalloc.h"

#include <string.h>

void strbuf_add(struct strbuf *s, const void *p, size_t n)
{
	if (s->cap - s->len < n + 1) {
		size_t cap = s->cap == 0 ? 64 : s->cap;

		while (cap - s->len < n + 1)
			cap *= 2;
		s->data = xrealloc(s->data, cap);
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
}

char *strbuf_take(struct strbuf *s)
{
	char *d = s->data != NULL ? s->data : xstrdup("");

	s->data = NULL;
	s->len = s->cap = 0;
	return d;
}
