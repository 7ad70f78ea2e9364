/* tls.c: OpenSSL 3 server context set-up. Certificates are (re)loaded
 * whenever a worker starts, so SIGHUP, which replaces the workers, also
 * reloads them. */
#include "net/tls.h"
#include "conf/config.h"

#include <openssl/err.h>

#define TLS_CIPHERSUITES "TLS_AES_128_GCM_SHA256:" \
	"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

static const char *tls_last_error(const char *what)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	char reason[200] = "unknown error";

	/* ERR_error_string_n also names system errors (e.g. EACCES), which
	 * ERR_reason_error_string leaves NULL. */
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(buf, sizeof(buf), "%s: %s", what, reason);
	ERR_clear_error();
	return buf;
}

SSL_CTX *tls_ctx_create(const struct settings *set, const char **error_r)
{
	SSL_CTX *ctx;

	if (set->tls_cert == NULL || set->tls_key == NULL) {
		*error_r = "TLS is not configured (tls_cert, tls_key)";
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_last_error("SSL_CTX_new");
		return NULL;
	}
	/* RFC 8314 section 4.1 / BCP 195: TLS 1.2 or newer. */
	SSL_CTX_set_min_proto_version(ctx, set->tls_allow_tls10 ?
				      TLS1_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
			    SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Keeps an idle TLS connection small: no buffers while idle. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption by stateless tickets only: no server-side session
	 * cache growing with every handshake, one ticket per handshake. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, set->tls_ciphers) != 1) {
		*error_r = tls_last_error("tls_ciphers");
		goto out_free;
	}
	/* TLS 1.3: the three suites OpenSSL enables by default (RFC 8446
	 * section 9.1; AES-128-GCM is the one it makes mandatory), in the
	 * order of their per-connection state: AES-128-GCM first (fast with
	 * AES-NI, ~200 bytes less per idle connection than AES-256-GCM),
	 * then ChaCha20-Poly1305 (smallest, for clients without AES), then
	 * AES-256-GCM. */
	if (SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERSUITES) != 1) {
		*error_r = tls_last_error("TLS 1.3 ciphersuites");
		goto out_free;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, set->tls_cert) != 1) {
		*error_r = tls_last_error(set->tls_cert);
		goto out_free;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, set->tls_key,
					SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_last_error(set->tls_key);
		goto out_free;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_last_error("key does not match certificate");
		goto out_free;
	}
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}
