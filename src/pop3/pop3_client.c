/* pop3_client.c: one POP3 session on a connection: greeting, the input
 * loop (pipelined lines are handled in order; nothing is read while an
 * auth verdict or a multi-line reply is pending), dispatch through the
 * command table, login (maildrop open, lock and snapshot) and logout.
 * It does not parse lines (pop3_parse.c) nor implement commands
 * (pop3_commands.c, pop3_auth.c). Limits: lines of max_line_length
 * (at least 255, RFC 2449 section 4), POP3_MAX_ERRORS client errors,
 * max_auth_failures failed logins, idle_timeout_secs. */
#include "pop3/pop3.h"
#include "pop3/pop3_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

void pop3_reply_error(struct pop3_session *s, const char *text)
{
	conn_printf(s->conn, "-ERR %s\r\n", text);
}

void pop3_close(struct pop3_session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = true;
	conn_close_after_flush(s->conn, reason);
}

static bool pop3_is_busy(const struct pop3_session *s)
{
	return s->auth_pending || s->cont != NULL;
}

void pop3_update_pause(struct pop3_session *s)
{
	if (!s->closing)
		conn_pause_input(s->conn, pop3_is_busy(s));
}

const char *pop3_log_str(const char *str, char *buf, size_t size)
{
	size_t i;

	if (str == NULL)
		return "-";
	for (i = 0; str[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)str[i];

		buf[i] = c < 0x21 || c >= 0x7f || c == '"' || c == '\\' ?
			'?' : (char)c;
	}
	buf[i] = '\0';
	return buf;
}

bool pop3_msg_exists(const struct pop3_session *s, uint32_t num)
{
	uint32_t i = num - 1;

	return num >= 1 && num <= s->msg_count &&
	       (s->deleted[i / 8] & (1u << (i % 8))) == 0;
}

/* Counts a client mistake (already answered); cuts off after
 * POP3_MAX_ERRORS (STYLE.md section 4). */
static void pop3_count_error(struct pop3_session *s)
{
	if (!s->closing && ++s->errors >= POP3_MAX_ERRORS) {
		pop3_reply_error(s, "Too many errors");
		pop3_close(s, "too many errors");
	}
}

static void pop3_client_error(struct pop3_session *s, const char *text)
{
	pop3_reply_error(s, text);
	pop3_count_error(s);
}

static int pop3_check_args(struct pop3_session *s,
			   const struct pop3_command *c,
			   const struct pop3_cmd *cmd)
{
	if ((c->flags & POP3_CMD_FLAG_LONG_ARGS) == 0 &&
	    cmd->max_arg_len > POP3_MAX_ARG_LEN) {
		pop3_client_error(s, "Argument too long");
		return -1;
	}
	if ((c->flags & POP3_CMD_FLAG_RAW_REST) != 0)
		return 0;
	if (cmd->argc < c->min_args || cmd->argc > c->max_args) {
		pop3_client_error(s, cmd->argc < c->min_args ?
				  "Missing argument" : "Too many arguments");
		return -1;
	}
	return 0;
}

static void pop3_run_cont(struct pop3_session *s)
{
	if (s->cont == NULL || s->closing)
		return;
	if (s->cont(s) == 0)
		return;
	s->cont = NULL;
	pop3_stream_free(s);
	pop3_update_pause(s);
}

static void pop3_handle_line(struct pop3_session *s, char *line, size_t len)
{
	const struct pop3_command *c;
	struct pop3_cmd cmd;
	const char *error;

	if (s->sasl != NULL) {
		if (pop3_sasl_input(s, line, len) < 0)
			pop3_count_error(s);
		return;
	}
	if (pop3_parse_line(line, len, &cmd, &error) < 0) {
		pop3_client_error(s, error);
		return;
	}
	c = pop3_command_find(cmd.name);
	if (c == NULL) {
		pop3_client_error(s, "Unknown command");
		return;
	}
	if ((c->states & s->state) == 0) {
		pop3_client_error(s, "Command not valid in this state");
		return;
	}
	if (pop3_check_args(s, c, &cmd) < 0)
		return;
	/* metrics: ends when the session is idle again (pop3_client_input) */
	conn_cmd_begin(s->conn, c->name, strlen(c->name));
	if (c->func(s, &cmd) < 0)
		pop3_count_error(s);
	if (s->cont != NULL) {
		pop3_update_pause(s);
		pop3_run_cont(s);
	}
}

static size_t pop3_line_limit(const struct pop3_session *s)
{
	size_t max = s->set->max_line_length;

	return max < POP3_MIN_LINE_LEN ? POP3_MIN_LINE_LEN : max;
}

void pop3_client_input(struct pop3_session *s)
{
	char *line;
	size_t len;
	int ret;

	if (s->in_input)
		return;
	s->in_input = true;
	while (!s->closing && !pop3_is_busy(s) &&
	       conn_output_len(s->conn) < CONN_OUTPUT_HIWAT) {
		conn_cmd_end(s->conn, NULL);	/* the previous command */
		ret = conn_read_line(s->conn, pop3_line_limit(s), &line, &len);
		if (ret == 0)
			break;
		if (ret < 0) {
			if (s->sasl != NULL)
				pop3_sasl_free(s);
			pop3_client_error(s, "Line too long");
			continue;
		}
		pop3_handle_line(s, line, len);
		/* PASS, APOP and AUTH lines carry secrets. */
		xwipe(line, len);
		free(line);
	}
	if (!pop3_is_busy(s))
		conn_cmd_end(s->conn, NULL);
	s->in_input = false;
}

/* ---- login ---- */

static int pop3_open_maildrop(struct pop3_session *s, const char **reply_r)
{
	const char *error;

	*reply_r = "[SYS/TEMP] Unable to open the maildrop";
	if (store_user_open(s->set, s->user, &s->su, &error) < 0) {
		log_error("pop3 store_user_open(%s) failed id=%llu: %s",
			  s->user, (unsigned long long)conn_id(s->conn), error);
		return -1;
	}
	if (store_mailbox_open(s->su, "INBOX", &s->mb, &error) < 0) {
		log_error("pop3 store_mailbox_open(%s, INBOX) failed id=%llu: "
			  "%s", s->user, (unsigned long long)conn_id(s->conn),
			  error);
		return -1;
	}
	/* RFC 1939 section 8 / RFC 2449 section 8.1.2: one session per
	 * maildrop, [IN-USE] otherwise. */
	if (store_mailbox_lock_pop3(s->mb, &error) < 0) {
		if (errno == EWOULDBLOCK) {
			*reply_r = "[IN-USE] Mailbox is locked by another "
				   "POP3 session";
			return -1;
		}
		log_error("pop3 store_mailbox_lock_pop3(%s) failed id=%llu: %s",
			  s->user, (unsigned long long)conn_id(s->conn), error);
		return -1;
	}
	if (store_mailbox_sync(s->mb, &error) < 0) {
		log_error("pop3 store_mailbox_sync(%s, INBOX) failed id=%llu: "
			  "%s", s->user, (unsigned long long)conn_id(s->conn),
			  error);
		return -1;
	}
	return 0;
}

/* RFC 1939 section 5: message numbers and sizes are fixed for the
 * session; the view is not synced again before QUIT. */
static void pop3_snapshot(struct pop3_session *s)
{
	s->msg_count = store_mailbox_count(s->mb);
	s->deleted = xcalloc((size_t)s->msg_count / 8 + 1, 1);
	s->total_bytes = 0;
	for (uint32_t i = 0; i < s->msg_count; i++)
		s->total_bytes += store_mailbox_msg(s->mb, i)->vsize;
}

void pop3_login(struct pop3_session *s, const char *user)
{
	const char *reply;

	free(s->user);
	s->user = xstrdup(user);
	if (conn_set_user(s->conn, s->user) < 0) {
		log_info("pop3 login refused id=%llu user=%s reason=%s",
			 (unsigned long long)conn_id(s->conn), s->user,
			 "max_conns_per_user");
		pop3_reply_error(s, "[SYS/TEMP] Too many connections for "
				 "this user");
		pop3_close(s, "too many connections for user");
		return;
	}
	if (pop3_open_maildrop(s, &reply) < 0) {
		pop3_reply_error(s, reply);
		pop3_close(s, "maildrop unavailable");
		return;
	}
	pop3_snapshot(s);
	s->state = POP3_STATE_TRANSACTION;
	log_info("pop3 login ok id=%llu user=%s ip=%s method=%s",
		 (unsigned long long)conn_id(s->conn), s->user,
		 conn_remote_ip(s->conn), s->auth_method);
	conn_printf(s->conn, "+OK Logged in, %u messages (%llu octets)\r\n",
		    s->msg_count, (unsigned long long)s->total_bytes);
}

/* ---- proto_ops ---- */

static void pop3_greet(struct pop3_session *s)
{
	const char *host = s->set->hostname;

	if (host == NULL || *host == '\0')
		host = "localhost";
	/* RFC 1939 section 7: the APOP timestamp is a msg-id, unique per
	 * greeting; offered only when plaintext secrets exist for it. */
	if (auth_apop_available()) {
		s->apop_timestamp = xasprintf("<%ld.%ld.%08x@%s>",
					      (long)getpid(), (long)time(NULL),
					      (unsigned)randombytes_random(),
					      host);
		conn_printf(s->conn, "+OK Heron POP3 ready %s\r\n",
			    s->apop_timestamp);
	} else {
		conn_printf(s->conn, "+OK Heron POP3 ready\r\n");
	}
}

static void *pop3_create(struct conn *conn)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->set = conn_settings(conn);
	s->state = POP3_STATE_AUTHORIZATION;
	conn_set_idle_timeout(conn, s->set->idle_timeout_secs);
	pop3_greet(s);
	return s;
}

static void pop3_on_input(void *context)
{
	pop3_client_input(context);
}

static void pop3_on_drain(void *context)
{
	struct pop3_session *s = context;

	pop3_run_cont(s);
	pop3_client_input(s);
}

static void pop3_destroy(void *context, const char *reason)
{
	struct pop3_session *s = context;

	pop3_stream_free(s);	/* adds a cut-off RETR to retr_bytes */
	if (s->state == POP3_STATE_TRANSACTION) {
		log_info("pop3 logout id=%llu user=%s reason=%s retr=%u/%llu "
			 "del=%u in=%llu out=%llu",
			 (unsigned long long)conn_id(s->conn), s->user,
			 reason, s->retr_count,
			 (unsigned long long)s->retr_bytes, s->expunged_count,
			 (unsigned long long)conn_bytes_in(s->conn),
			 (unsigned long long)conn_bytes_out(s->conn));
	} else {
		log_debug("pop3 disconnect id=%llu ip=%s reason=%s "
			  "auth_failures=%u",
			  (unsigned long long)conn_id(s->conn),
			  conn_remote_ip(s->conn), reason, s->auth_failures);
	}
	pop3_auth_abort(s);
	pop3_sasl_free(s);
	/* A dropped connection deletes nothing (RFC 1939 section 6). */
	if (s->mb != NULL)
		store_mailbox_close(&s->mb);
	if (s->su != NULL)
		store_user_close(&s->su);
	free(s->deleted);
	free(s->apop_timestamp);
	free(s->user);
	free(s->auth_user);
	free(s);
}

const struct proto_ops pop3_proto_ops = {
	.name = "pop3",
	.create = pop3_create,
	.on_input = pop3_on_input,
	.on_drain = pop3_on_drain,
	.destroy = pop3_destroy,
	/* RFC 2449 section 8.1.2: [SYS/TEMP] is a transient condition. */
	.busy_reply = "-ERR [SYS/TEMP] Too many connections from your IP\r\n",
};
