/* pop3_auth.c: POP3 authentication: USER/PASS and APOP (RFC 1939
 * section 7), AUTH with SASL PLAIN and LOGIN (RFC 5034, RFC 4616).
 * Credentials go to the auth process (auth/auth.h); the session pauses
 * its input until the verdict, so pipelined commands wait. Plaintext
 * mechanisms are refused where conn_plaintext_auth_ok() says no. This
 * file never logs passwords or SASL data and wipes what it decoded. */
#include "pop3/pop3_private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "conf/config.h"
#include "auth/sasl.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* RFC 2449 AUTH-RESP-CODE (RFC 3206 [AUTH]). */
#define POP3_PLAINTEXT_DISALLOWED \
	"[AUTH] Plaintext authentication disallowed on non-secure connections"
/* Room for a user name in log lines. */
#define POP3_LOG_NAME_MAX 128

enum pop3_sasl_mech {
	POP3_SASL_PLAIN,
	POP3_SASL_LOGIN,
};

struct pop3_sasl {
	enum pop3_sasl_mech mech;
	char *login_user;	/* LOGIN: the name sent in the first step */
};

void pop3_sasl_free(struct pop3_session *s)
{
	struct pop3_sasl *sasl = s->sasl;

	if (sasl == NULL)
		return;
	if (sasl->login_user != NULL) {
		xwipe(sasl->login_user, strlen(sasl->login_user));
		free(sasl->login_user);
	}
	free(sasl);
	s->sasl = NULL;
}

void pop3_auth_abort(struct pop3_session *s)
{
	if (s->auth_req != NULL)
		auth_request_abort(&s->auth_req);
	s->auth_pending = false;
}

static void pop3_log_login_failed(struct pop3_session *s, const char *reason)
{
	char name[POP3_LOG_NAME_MAX];

	log_info("pop3 login failed id=%llu user=%s ip=%s method=%s reason=%s",
		 (unsigned long long)conn_id(s->conn),
		 pop3_log_str(s->auth_user, name, sizeof(name)),
		 conn_remote_ip(s->conn), s->auth_method, reason);
}

static void pop3_auth_failed(struct pop3_session *s)
{
	unsigned max = s->set->max_auth_failures;

	pop3_log_login_failed(s, "auth failed");
	/* Never say whether the user exists. */
	pop3_reply_error(s, "[AUTH] Authentication failed.");
	if (max > 0 && ++s->auth_failures >= max)
		pop3_close(s, "too many authentication failures");
}

static void pop3_auth_callback(enum auth_result result, const char *user,
			       void *context)
{
	struct pop3_session *s = context;

	s->auth_req = NULL;
	s->auth_pending = false;
	if (result == AUTH_RESULT_OK) {
		pop3_login(s, user);
	} else if (result == AUTH_RESULT_TEMPFAIL) {
		pop3_log_login_failed(s, "tempfail");
		pop3_reply_error(s, "[SYS/TEMP] Temporary authentication "
				 "failure, try again later");
	} else {
		pop3_auth_failed(s);
	}
	free(s->auth_user);
	s->auth_user = NULL;
	pop3_update_pause(s);
	/* Continue with pipelined input (a no-op when the verdict came
	 * synchronously from within the input loop). */
	pop3_client_input(s);
}

/* Marks an attempt as pending before the request goes out: the callback
 * may run before auth_verify_*() returns. */
static void pop3_auth_begin(struct pop3_session *s, const char *method,
			    const char *user)
{
	s->auth_method = method;
	free(s->auth_user);
	s->auth_user = xstrdup(user);
	s->auth_pending = true;
	pop3_update_pause(s);
}

static void pop3_auth_sent(struct pop3_session *s, struct auth_request *req)
{
	if (!s->auth_pending)
		return;		/* the verdict already came */
	if (req == NULL) {
		pop3_auth_callback(AUTH_RESULT_TEMPFAIL, NULL, s);
		return;
	}
	s->auth_req = req;
}

static void pop3_verify_plain(struct pop3_session *s, const char *method,
			      const char *user, const char *pass)
{
	struct auth_request *req;

	pop3_auth_begin(s, method, user);
	req = auth_verify_plain("pop3", user, pass, conn_remote_ip(s->conn),
				pop3_auth_callback, s);
	pop3_auth_sent(s, req);
}

/* ---- USER / PASS / APOP ---- */

int pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!conn_plaintext_auth_ok(s->conn)) {
		pop3_reply_error(s, POP3_PLAINTEXT_DISALLOWED);
		return -1;
	}
	free(s->user);
	s->user = xstrndup(cmd->args[0].data, cmd->args[0].len);
	conn_printf(s->conn, "+OK\r\n");
	return 0;
}

int pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char *user;

	if (!conn_plaintext_auth_ok(s->conn)) {
		pop3_reply_error(s, POP3_PLAINTEXT_DISALLOWED);
		return -1;
	}
	/* RFC 1939 section 7: PASS only right after a successful USER. */
	if (s->user == NULL) {
		pop3_reply_error(s, "No username given");
		return -1;
	}
	if (cmd->rest.len == 0) {
		pop3_reply_error(s, "Missing argument");
		return -1;
	}
	user = s->user;
	s->user = NULL;
	/* rest runs to the end of the line, so it is NUL-ended. */
	pop3_verify_plain(s, "USER", user, cmd->rest.data);
	free(user);
	return 0;
}

static bool pop3_is_md5_hex(const struct pop3_token *tok)
{
	if (tok->len != 32)
		return false;
	for (size_t i = 0; i < tok->len; i++) {
		char c = tok->data[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

int pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct auth_request *req;
	char digest[33], *user;

	if (s->apop_timestamp == NULL) {
		pop3_reply_error(s, "[AUTH] APOP is not available");
		return -1;
	}
	if (!pop3_is_md5_hex(&cmd->args[1])) {
		pop3_reply_error(s, "Invalid APOP digest");
		return -1;
	}
	for (size_t i = 0; i < 32; i++) {
		char c = cmd->args[1].data[i];

		digest[i] = c >= 'A' && c <= 'F' ? (char)(c + 'a' - 'A') : c;
	}
	digest[32] = '\0';
	user = xstrndup(cmd->args[0].data, cmd->args[0].len);
	pop3_auth_begin(s, "APOP", user);
	req = auth_verify_apop(user, s->apop_timestamp, digest,
			       conn_remote_ip(s->conn), pop3_auth_callback,
			       s);
	pop3_auth_sent(s, req);
	free(user);
	return 0;
}

/* ---- AUTH (RFC 5034) ---- */

static int pop3_sasl_plain(struct pop3_session *s, const char *data,
			   size_t len)
{
	const char *authcid, *pass;

	if (sasl_plain_parse(data, len, &authcid, &pass) < 0)
		return -1;
	pop3_sasl_free(s);
	pop3_verify_plain(s, "PLAIN", authcid, pass);
	return 0;
}

/* draft-murchison-sasl-login: "Username:", then "Password:". */
static int pop3_sasl_login(struct pop3_session *s, const char *data,
			   size_t len)
{
	struct pop3_sasl *sasl = s->sasl;
	char *user;

	if (memchr(data, '\0', len) != NULL)
		return -1;
	if (sasl->login_user == NULL) {
		if (len == 0)
			return -1;
		sasl->login_user = xstrndup(data, len);
		conn_printf(s->conn, "+ UGFzc3dvcmQ6\r\n");
		return 0;
	}
	user = sasl->login_user;
	sasl->login_user = NULL;
	pop3_sasl_free(s);
	pop3_verify_plain(s, "LOGIN", user, data);
	free(user);
	return 0;
}

/* One base64 client response. Returns 0, or -1 after an error reply
 * (the exchange is over then). */
static int pop3_sasl_response(struct pop3_session *s, const char *b64,
			      size_t len)
{
	size_t n;
	char *data;
	int ret;

	/* RFC 5034 section 4: undecodable responses are rejected. */
	if (sasl_decode_response(b64, len, &data, &n) < 0) {
		pop3_sasl_free(s);
		pop3_reply_error(s, "Invalid base64 data");
		return -1;
	}
	if (s->sasl->mech == POP3_SASL_PLAIN)
		ret = pop3_sasl_plain(s, data, n);
	else
		ret = pop3_sasl_login(s, data, n);
	if (ret < 0) {
		pop3_sasl_free(s);
		pop3_reply_error(s, "Invalid SASL response");
	}
	xwipe(data, n);
	free(data);
	return ret;
}

int pop3_sasl_input(struct pop3_session *s, const char *line, size_t len)
{
	/* RFC 5034 section 4: "*" cancels; the AUTH command gets -ERR. */
	if (len == 1 && line[0] == '*') {
		pop3_sasl_free(s);
		pop3_reply_error(s, "Authentication cancelled");
		return 0;
	}
	return pop3_sasl_response(s, line, len);
}

static int pop3_auth_mechs(struct pop3_session *s)
{
	/* No argument: list the mechanisms (RFC 1734 style; clients
	 * still probe this way). */
	conn_printf(s->conn, "+OK\r\n%s.\r\n",
		    conn_plaintext_auth_ok(s->conn) ? "PLAIN\r\nLOGIN\r\n" :
		    "");
	return 0;
}

int pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	const struct pop3_token *mech = &cmd->args[0];
	const struct pop3_token *ir = &cmd->args[1];

	if (cmd->argc == 0)
		return pop3_auth_mechs(s);
	if (!conn_plaintext_auth_ok(s->conn)) {
		pop3_reply_error(s, POP3_PLAINTEXT_DISALLOWED);
		return -1;
	}
	s->sasl = xcalloc(1, sizeof(*s->sasl));
	if (mech->len == 5 && strncasecmp(mech->data, "PLAIN", 5) == 0) {
		s->sasl->mech = POP3_SASL_PLAIN;
	} else if (mech->len == 5 && strncasecmp(mech->data, "LOGIN", 5) == 0) {
		s->sasl->mech = POP3_SASL_LOGIN;
	} else {
		pop3_sasl_free(s);
		pop3_reply_error(s, "Unsupported authentication mechanism");
		return -1;
	}
	/* RFC 5034 section 4: "=" is an empty initial response
	 * (sasl_decode_response knows). */
	if (cmd->argc == 2)
		return pop3_sasl_response(s, ir->data, ir->len);
	/* An empty challenge is "+ " alone (RFC 5034 section 4). */
	conn_printf(s->conn, s->sasl->mech == POP3_SASL_PLAIN ? "+ \r\n" :
		    "+ VXNlcm5hbWU6\r\n");
	return 0;
}
