/* auth.h: the worker's view of authentication. Workers never read the
 * password file: they send credentials over a Unix socket to the auth
 * process (auth_server.c) and get a verdict later, through a callback.
 * The auth process applies the growing per-IP failure delay, so a verdict
 * may take seconds; the session must not block meanwhile. */
#ifndef HERON_AUTH_H
#define HERON_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct auth_request;

enum auth_result {
	AUTH_RESULT_OK,
	AUTH_RESULT_FAIL,	/* wrong password or no such user: same reply */
	AUTH_RESULT_TEMPFAIL,	/* auth process unreachable, etc. */
	AUTH_RESULT_NOUSER,	/* only for auth_lookup_user */
};

/* user is the canonical user name on AUTH_RESULT_OK, else NULL. The
 * request is freed after the callback returns. */
typedef void auth_callback(enum auth_result result, const char *user,
			   void *context);

/* Connects to the auth socket (lazily reconnects on failure). */
void auth_client_init(struct event_base *base, const char *socket_path);
void auth_client_deinit(void);

/* Verifies a plaintext password. service: "pop3", "imap", "lmtp".
 * remote_ip keys the failure delay. The caller wipes pass itself. */
struct auth_request *auth_verify_plain(const char *service, const char *user,
				       const char *pass, const char *remote_ip,
				       auth_callback *cb, void *context);
/* RFC 1939 APOP: digest = hex MD5(timestamp || password). Needs a
 * plaintext-stored password; FAIL otherwise. */
struct auth_request *auth_verify_apop(const char *user,
				      const char *timestamp,
				      const char *digest,
				      const char *remote_ip,
				      auth_callback *cb, void *context);
/* Does user exist (LMTP RCPT)? Result OK (user canonicalised), NOUSER
 * or TEMPFAIL. No delay. */
struct auth_request *auth_lookup_user(const char *user, auth_callback *cb,
				      void *context);
/* Drops a pending request: its callback is never called. NULLs *req. */
void auth_request_abort(struct auth_request **req);
/* True when the password file has plaintext entries usable for APOP. */
bool auth_apop_available(void);

#endif
