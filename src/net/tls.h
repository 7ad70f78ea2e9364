/* tls.h: the OpenSSL server context. The only place that configures
 * OpenSSL; the I/O goes through libevent's OpenSSL bufferevents in conn.c. */
#ifndef HERON_TLS_H
#define HERON_TLS_H

#include <openssl/ssl.h>

struct settings;

/* Builds a server context from tls_cert/tls_key: TLS 1.2+ (unless
 * tls_allow_tls10), tls_ciphers for TLS 1.2, default TLS 1.3 suites, no
 * compression, no renegotiation, buffers released while idle. Returns NULL
 * with *error_r (static) when TLS is not configured or the files are bad. */
SSL_CTX *tls_ctx_create(const struct settings *set, const char **error_r);

#endif
