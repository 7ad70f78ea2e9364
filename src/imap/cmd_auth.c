/* cmd_auth.c: commands of any state and logging in: CAPABILITY, NOOP,
 * CHECK, LOGOUT, ID, ENABLE, STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN,
 * SASL-IR), and IDLE. Passwords go to the auth process (auth.h); the
 * verdict comes back later, so login commands return IMAP_CMD_AGAIN. */
#include "imap/imap_capability.h"
#include "imap/imap_client.h"
#include "auth/auth.h"
#include "auth/sasl.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Folders every user has (RFC 6154 attributes are given by name). */
static const char *const imap_default_folders[] = {
	"Drafts", "Sent", "Trash", "Junk", "Archive",
};

enum imap_sasl_mech { IMAP_SASL_PLAIN, IMAP_SASL_LOGIN };

struct imap_login {
	enum imap_sasl_mech mech;
	char *login_user;	/* AUTHENTICATE LOGIN: the user step */
	bool is_pending;	/* verdict outstanding */
	bool is_done;
	enum auth_result result;
	char *user;		/* canonical, on success */
	const char *method;
};

/* ---- one store_user per user in this worker ----
 * Sessions of the same user share it (refcounted): it holds only the
 * user's paths and index handle, nothing of a session, and a worker is
 * single-threaded. Saves ~400 bytes per extra session of a user. */
#define IMAP_USERS_BUCKETS 1024

struct imap_shared_user {
	struct imap_shared_user *next;
	struct store_user *su;
	unsigned refs;
};
static struct imap_shared_user *imap_users[IMAP_USERS_BUCKETS];

static struct imap_shared_user **imap_user_bucket(const char *user)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (const unsigned char *p = (const void *)user; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return &imap_users[h % IMAP_USERS_BUCKETS];
}

int imap_client_user_open(struct imap_client *client, const char *user,
			  const char **error_r)
{
	struct imap_shared_user **bucket = imap_user_bucket(user), *u;
	struct store_user *su;

	for (u = *bucket; u != NULL; u = u->next) {
		if (strcmp(store_user_name(u->su), user) == 0) {
			u->refs++;
			client->su = u->su;
			return 0;
		}
	}
	if (store_user_open(client->set, user, &su, error_r) < 0)
		return -1;
	u = xcalloc(1, sizeof(*u));
	u->su = su;
	u->refs = 1;
	u->next = *bucket;
	*bucket = u;
	client->su = su;
	return 0;
}

void imap_client_user_close(struct imap_client *client)
{
	struct imap_shared_user **up, *u;

	if (client->su == NULL)
		return;
	for (up = imap_user_bucket(store_user_name(client->su));
	     *up != NULL; up = &(*up)->next) {
		if ((*up)->su == client->su)
			break;
	}
	u = *up;
	if (u == NULL)
		log_fatal("imap store_user of %s not in the shared table",
			  store_user_name(client->su));
	client->su = NULL;
	if (--u->refs > 0)
		return;
	*up = u->next;
	store_user_close(&u->su);
	free(u);
}

int cmd_capability(struct imap_cmd *cmd)
{
	imap_client_untagged(cmd->client, "CAPABILITY %s",
			     imap_capability_string(cmd->client));
	imap_cmd_ok(cmd, "Capability completed.");
	return IMAP_CMD_DONE;
}

int cmd_noop(struct imap_cmd *cmd)
{
	imap_cmd_ok(cmd, "%s completed.", cmd->name);
	return IMAP_CMD_DONE;
}

int cmd_check(struct imap_cmd *cmd)
{
	return cmd_noop(cmd);
}

int cmd_logout(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;

	imap_client_untagged(client, "BYE Logging out");
	conn_printf(client->conn, "%s OK Logout completed.\r\n", cmd->tag);
	client->state = IMAP_STATE_LOGOUT;
	conn_close_after_flush(client->conn, "LOGOUT");
	return IMAP_CMD_DONE;
}

/* RFC 2971: answer with our identity; the client's list is only
 * checked for syntax. */
int cmd_id(struct imap_cmd *cmd)
{
	const struct imap_arg *list;
	size_t count;

	if (cmd->args_count != 1 ||
	    (cmd->args[0].type != IMAP_ARG_NIL &&
	     !imap_arg_get_list(&cmd->args[0], &list, &count))) {
		imap_cmd_bad(cmd, "Invalid ID arguments");
		return IMAP_CMD_DONE;
	}
	imap_client_untagged(cmd->client, "ID (\"name\" \"Heron\" "
			     "\"vendor\" \"Heron\")");
	imap_cmd_ok(cmd, "ID completed.");
	return IMAP_CMD_DONE;
}

/* RFC 5161: ENABLE capability... ; we know CONDSTORE, QRESYNC,
 * UTF8=ACCEPT, IMAP4rev2 (RFC 9051 6.3.1, Appendix A). */
int cmd_enable(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct evbuffer *out = imap_client_output(client);
	bool had_condstore = client->enabled & IMAP_ENABLED_CONDSTORE;
	const char *name;

	if (cmd->args_count == 0) {
		imap_cmd_bad(cmd, "ENABLE needs capabilities");
		return IMAP_CMD_DONE;
	}
	evbuffer_add_printf(out, "* ENABLED");
	for (size_t i = 0; i < cmd->args_count; i++) {
		if (!imap_arg_get_atom(&cmd->args[i], &name))
			continue;
		if (strcasecmp(name, "CONDSTORE") == 0) {
			client->enabled |= IMAP_ENABLED_CONDSTORE;
			evbuffer_add_printf(out, " CONDSTORE");
		} else if (strcasecmp(name, "QRESYNC") == 0 &&
			   (client->enabled & IMAP_ENABLED_QRESYNC) == 0) {
			/* RFC 7162 3.2.3: implies CONDSTORE; VANISHED
			 * replaces EXPUNGE from now on. */
			client->enabled |= IMAP_ENABLED_QRESYNC |
				IMAP_ENABLED_CONDSTORE;
			evbuffer_add_printf(out, " QRESYNC");
		} else if (strcasecmp(name, "UTF8=ACCEPT") == 0 &&
			   client->state == IMAP_STATE_AUTH &&
			   (client->enabled & IMAP_ENABLED_UTF8) == 0) {
			/* RFC 6855 3: valid only in the authenticated
			 * state (RFC 5161 3.1: before SELECT); when a
			 * mailbox is selected it is not enabled. The
			 * parser now takes UTF-8 in quoted strings. */
			client->enabled |= IMAP_ENABLED_UTF8;
			imap_client_parser_update(client);
			evbuffer_add_printf(out, " UTF8=ACCEPT");
		} else if (strcasecmp(name, "IMAP4rev2") == 0 &&
			   client->state == IMAP_STATE_AUTH &&
			   (client->enabled & IMAP_ENABLED_IMAP4REV2) == 0) {
			/* RFC 9051 6.3.1: "only valid in the authenticated
			 * state, before any mailbox is selected" (like
			 * UTF8=ACCEPT: a selected session keeps rev1).
			 * Mailbox names and quoted strings become UTF-8
			 * (5.1, 4.3.1, Appendix A). */
			client->enabled |= IMAP_ENABLED_IMAP4REV2;
			imap_client_parser_update(client);
			evbuffer_add_printf(out, " IMAP4rev2");
		}
	}
	evbuffer_add(out, "\r\n", 2);
	/* RFC 7162 3.1: a first CONDSTORE enabling command with a mailbox
	 * selected reports its HIGHESTMODSEQ. */
	if (!had_condstore && client->mb != NULL &&
	    (client->enabled & IMAP_ENABLED_CONDSTORE))
		imap_client_untagged(client, "OK [HIGHESTMODSEQ %llu] Highest",
			(unsigned long long)
			store_mailbox_highestmodseq(client->mb));
	imap_cmd_ok(cmd, "Enabled.");
	return IMAP_CMD_DONE;
}

int cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;

	if (conn_is_tls(client->conn) || !conn_tls_available(client->conn)) {
		imap_cmd_bad(cmd, "TLS is not available");
		return IMAP_CMD_DONE;
	}
	/* RFC 3501 6.2.1 / RFC 2595 3.1: nothing pipelined after this
	 * command is used; conn_start_tls discards buffered input. */
	imap_cmd_ok(cmd, "Begin TLS negotiation now.");
	conn_start_tls(client->conn);
	return IMAP_CMD_DONE;
}

/* ---- login ---- */

static void imap_login_free(void *ctx)
{
	struct imap_login *login = ctx;

	if (login->login_user != NULL) {
		xwipe(login->login_user, strlen(login->login_user));
		free(login->login_user);
	}
	free(login->user);
	free(login);
}

static void imap_login_callback(enum auth_result result, const char *user,
				void *context)
{
	struct imap_cmd *cmd = context;
	struct imap_login *login = cmd->ctx;

	cmd->client->auth_req = NULL;
	login->is_pending = false;
	login->is_done = true;
	login->result = result;
	if (user != NULL)
		login->user = xstrdup(user);
	imap_cmd_wake(cmd);
}

/* Users whose default folders this process has made sure of, so a login
 * costs no mkdir()s after the first one (bounded: forgotten when full). */
#define IMAP_FOLDERS_DONE_MAX 4096

static bool imap_default_folders_done(const char *user)
{
	static char *done[IMAP_FOLDERS_DONE_MAX];
	static unsigned count;
	unsigned h = 5381, i;

	for (const char *p = user; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	for (i = h % IMAP_FOLDERS_DONE_MAX; done[i] != NULL;
	     i = (i + 1) % IMAP_FOLDERS_DONE_MAX) {
		if (strcmp(done[i], user) == 0)
			return true;
	}
	if (count >= IMAP_FOLDERS_DONE_MAX / 2) {
		for (unsigned j = 0; j < IMAP_FOLDERS_DONE_MAX; j++) {
			free(done[j]);
			done[j] = NULL;
		}
		count = 0;
		for (i = h % IMAP_FOLDERS_DONE_MAX; done[i] != NULL;
		     i = (i + 1) % IMAP_FOLDERS_DONE_MAX)
			;
	}
	done[i] = xstrdup(user);
	count++;
	return false;
}

static void imap_create_default_folders(struct imap_client *client)
{
	const char *error;

	if (imap_default_folders_done(client->user))
		return;

	for (size_t i = 0; i < sizeof(imap_default_folders) /
		     sizeof(imap_default_folders[0]); i++) {
		if (store_mailbox_create(client->su, imap_default_folders[i],
					 &error) < 0 && errno != EEXIST)
			log_warn("imap create %s user=%s failed: %s",
				 imap_default_folders[i], client->user, error);
	}
}

/* The verdict is in: finish the login command. */
static int imap_login_finish(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct imap_login *login = cmd->ctx;
	const char *error;

	if (!login->is_done)
		return IMAP_CMD_AGAIN;
	if (login->result == AUTH_RESULT_TEMPFAIL) {
		imap_cmd_no(cmd, "[UNAVAILABLE] Authentication service "
			    "unavailable, try again later");
		return IMAP_CMD_DONE;
	}
	if (login->result != AUTH_RESULT_OK) {
		log_info("imap login failed id=%llu ip=%s method=%s",
			 (unsigned long long)conn_id(client->conn),
			 conn_remote_ip(client->conn), login->method);
		imap_cmd_no(cmd, "[AUTHENTICATIONFAILED] Authentication "
			    "failed.");
		if (++client->auth_failures >= client->set->max_auth_failures) {
			imap_client_untagged(client, "BYE Too many failed "
					     "logins");
			client->state = IMAP_STATE_LOGOUT;
			conn_close_after_flush(client->conn, "auth failures");
		}
		return IMAP_CMD_DONE;
	}
	if (conn_set_user(client->conn, login->user) < 0) {
		imap_cmd_no(cmd, "[LIMIT] Too many sessions for this user");
		return IMAP_CMD_DONE;
	}
	if (imap_client_user_open(client, login->user, &error) < 0) {
		log_error("imap store_user_open user=%s failed: %s",
			  login->user, error);
		imap_cmd_no(cmd, "[SERVERBUG] Mail storage unavailable");
		return IMAP_CMD_DONE;
	}
	client->user = login->user;
	login->user = NULL;
	client->state = IMAP_STATE_AUTH;
	imap_create_default_folders(client);
	imap_client_parser_update(client);
	conn_set_idle_timeout(client->conn,
			      client->set->imap_idle_timeout_secs);
	log_info("imap login ok id=%llu user=%s ip=%s method=%s",
		 (unsigned long long)conn_id(client->conn), client->user,
		 conn_remote_ip(client->conn), login->method);
	imap_cmd_ok(cmd, "[CAPABILITY %s] Logged in",
		    imap_capability_string(client));
	return IMAP_CMD_DONE;
}

static int imap_login_start(struct imap_cmd *cmd, const char *method,
			    const char *user, const char *pass)
{
	struct imap_client *client = cmd->client;
	struct imap_login *login = cmd->ctx;

	if (login == NULL) {
		login = xcalloc(1, sizeof(*login));
		cmd->ctx = login;
		cmd->ctx_free = imap_login_free;
	}
	login->method = method;
	login->is_pending = true;
	cmd->wants_input = false;
	cmd->resume = imap_login_finish;
	client->auth_req = auth_verify_plain("imap", user, pass,
					     conn_remote_ip(client->conn),
					     imap_login_callback, cmd);
	return IMAP_CMD_AGAIN;
}

int cmd_login(struct imap_cmd *cmd)
{
	const char *user, *pass;

	if (cmd->args_count != 2 ||
	    !imap_arg_get_astring(&cmd->args[0], &user, NULL) ||
	    !imap_arg_get_astring(&cmd->args[1], &pass, NULL)) {
		imap_cmd_bad(cmd, "LOGIN needs a user name and a password");
		return IMAP_CMD_DONE;
	}
	/* RFC 3501 6.2.3: LOGINDISABLED. */
	if (!conn_plaintext_auth_ok(cmd->client->conn)) {
		imap_cmd_no(cmd, "[PRIVACYREQUIRED] Plaintext authentication "
			    "disallowed on non-secure connections");
		return IMAP_CMD_DONE;
	}
	return imap_login_start(cmd, "LOGIN", user, pass);
}

/* ---- AUTHENTICATE (RFC 3501 6.2.2, RFC 4959 SASL-IR) ---- */

static int imap_sasl_step(struct imap_cmd *cmd, const char *b64, size_t len);

static int imap_sasl_input(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	char *line;
	size_t len;
	int ret;

	ret = conn_read_line(client->conn, client->set->max_line_length,
			     &line, &len);
	if (ret == 0)
		return IMAP_CMD_AGAIN;
	if (ret < 0) {
		imap_cmd_bad(cmd, "SASL response too long");
		return IMAP_CMD_DONE;
	}
	/* RFC 3501 6.2.2: "*" cancels. */
	if (len == 1 && line[0] == '*') {
		free(line);
		imap_cmd_bad(cmd, "Authentication cancelled");
		return IMAP_CMD_DONE;
	}
	ret = imap_sasl_step(cmd, line, len);
	xwipe(line, len);
	free(line);
	return ret;
}

static int imap_sasl_continue(struct imap_cmd *cmd, const char *challenge)
{
	conn_printf(cmd->client->conn, "+ %s\r\n", challenge);
	cmd->wants_input = true;
	cmd->resume = imap_sasl_input;
	return IMAP_CMD_AGAIN;
}

static int imap_sasl_step(struct imap_cmd *cmd, const char *b64, size_t len)
{
	struct imap_login *login = cmd->ctx;
	const char *user, *pass;
	char *data;
	size_t n;
	int ret = IMAP_CMD_DONE;

	if (sasl_decode_response(b64, len, &data, &n) < 0) {
		imap_cmd_bad(cmd, "Invalid base64 data");
		return IMAP_CMD_DONE;
	}
	if (login->mech == IMAP_SASL_PLAIN) {
		if (sasl_plain_parse(data, n, &user, &pass) < 0)
			imap_cmd_bad(cmd, "Invalid SASL PLAIN response");
		else
			ret = imap_login_start(cmd, "PLAIN", user, pass);
	} else if (login->login_user == NULL) {
		/* LOGIN: "Username:" then "Password:". */
		login->login_user = xstrndup(data, n);
		ret = imap_sasl_continue(cmd, "UGFzc3dvcmQ6");
	} else {
		ret = imap_login_start(cmd, "LOGIN", login->login_user, data);
	}
	xwipe(data, n);
	free(data);
	return ret;
}

int cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_login *login;
	const char *mech, *ir = NULL;
	size_t ir_len = 0;

	if (cmd->args_count < 1 || cmd->args_count > 2 ||
	    !imap_arg_get_atom(&cmd->args[0], &mech) ||
	    (cmd->args_count == 2 &&
	     !imap_arg_get_atom(&cmd->args[1], &ir))) {
		imap_cmd_bad(cmd, "Invalid AUTHENTICATE arguments");
		return IMAP_CMD_DONE;
	}
	if (!conn_plaintext_auth_ok(cmd->client->conn)) {
		imap_cmd_no(cmd, "[PRIVACYREQUIRED] Plaintext authentication "
			    "disallowed on non-secure connections");
		return IMAP_CMD_DONE;
	}
	login = xcalloc(1, sizeof(*login));
	cmd->ctx = login;
	cmd->ctx_free = imap_login_free;
	if (strcasecmp(mech, "PLAIN") == 0) {
		login->mech = IMAP_SASL_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		login->mech = IMAP_SASL_LOGIN;
	} else {
		imap_cmd_no(cmd, "Unsupported authentication mechanism");
		return IMAP_CMD_DONE;
	}
	if (ir != NULL) {
		ir_len = strlen(ir);
		return imap_sasl_step(cmd, ir, ir_len);
	}
	return imap_sasl_continue(cmd, login->mech == IMAP_SASL_PLAIN ? "" :
				  "VXNlcm5hbWU6");
}

/* ---- IDLE (RFC 2177) ---- */

static int imap_idle_resume(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	char *line;
	size_t len;
	int ret;

	if (client->mailbox_changed) {
		imap_client_sync_push(client);
		if (client->state == IMAP_STATE_LOGOUT)
			return IMAP_CMD_DONE;
	}
	/* Woken for a change: mostly nothing to read. */
	if (evbuffer_get_length(conn_input(client->conn)) == 0)
		return IMAP_CMD_AGAIN;
	ret = conn_read_line(client->conn, client->set->max_line_length,
			     &line, &len);
	if (ret == 0)
		return IMAP_CMD_AGAIN;
	client->is_idling = false;
	cmd->wants_input = false;
	if (ret > 0 && len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_cmd_ok(cmd, "Idle completed.");
	else
		imap_cmd_bad(cmd, "Expected DONE");
	if (ret > 0)
		free(line);
	return IMAP_CMD_DONE;
}

int cmd_idle(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;

	if (cmd->args_count != 0) {
		imap_cmd_bad(cmd, "IDLE takes no arguments");
		return IMAP_CMD_DONE;
	}
	imap_client_sync(client, true);
	conn_printf(client->conn, "+ idling\r\n");
	/* Idling may last hours: keep no parser, no parsed command. */
	imap_client_parser_release(client);
	imap_cmd_drop_args(cmd);
	client->is_idling = true;
	cmd->wants_input = true;
	cmd->resume = imap_idle_resume;
	return IMAP_CMD_AGAIN;
}
