/* utf8.h: UTF-8 validation (RFC 3629 section 4: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
#ifndef HERON_UTF8_H
#define HERON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool utf8_is_valid(const unsigned char *s, size_t len);

#endif
