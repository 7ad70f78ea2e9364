/* xmalloc.h: allocation wrappers that abort on out-of-memory.
 * Out-of-memory is treated as fatal (STYLE.md section 4): callers never
 * check for NULL. */
#ifndef HERON_XMALLOC_H
#define HERON_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of nmemb elements of size bytes, checking overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Overwrites len bytes with zeros in a way the compiler keeps. */
void xwipe(void *p, size_t len);

#endif
