/* pop3_commands.c: the POP3 command table (STYLE.md section 8) and the
 * commands other than authentication: CAPA, STLS, QUIT and the
 * TRANSACTION commands of RFC 1939. Multi-line replies (LIST, UIDL, RETR,
 * TOP) are produced only while the output queue is below
 * CONN_OUTPUT_HIWAT and continue from on_drain; messages are streamed
 * from their files in POP3_CHUNK_SIZE pieces, never loaded whole.
 * The dispatcher (pop3_client.c) enforces states and argument counts. */
#include "pop3/pop3_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

/* Read size while streaming a message; the buffer exists only then. */
#define POP3_CHUNK_SIZE (16 * 1024)

struct pop3_stream {
	int fd;			/* RETR/TOP: the message file; else -1 */
	bool is_retr;		/* counts towards retr= in the logout line */
	bool is_uidl;		/* listing: UIDL, else LIST */
	uint32_t num;		/* RETR/TOP: message number */
	uint32_t next;		/* listing: next message index */
	uint64_t sent;		/* bytes queued so far */
	struct pop3_xform xf;
	unsigned char *buf;	/* POP3_CHUNK_SIZE in, 2 * that out */
};

void pop3_stream_free(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;

	if (st == NULL)
		return;
	if (st->is_retr)
		s->retr_bytes += st->sent;
	if (st->fd >= 0)
		close(st->fd);
	free(st->buf);
	free(st);
	s->stream = NULL;
}

static struct pop3_stream *pop3_stream_new(struct pop3_session *s,
					   pop3_cont_func *cont)
{
	struct pop3_stream *st = xcalloc(1, sizeof(*st));

	st->fd = -1;
	s->stream = st;
	s->cont = cont;
	return st;
}

/* Parses a message number argument. Returns 1 for an existing message,
 * 0 after replying "no such message", -1 after a syntax error reply. */
static int pop3_get_msg(struct pop3_session *s, const struct pop3_token *tok,
			uint32_t *num_r)
{
	if (pop3_parse_msgnum(tok, num_r) < 0) {
		pop3_reply_error(s, "Invalid message number");
		return -1;
	}
	/* RFC 1939 section 5: deleted messages may not be referenced. */
	if (!pop3_msg_exists(s, *num_r)) {
		pop3_reply_error(s, "No such message");
		return 0;
	}
	return 1;
}

static const struct store_msg *pop3_msg(struct pop3_session *s, uint32_t num)
{
	return store_mailbox_msg(s->mb, num - 1);
}

/* ---- AUTHORIZATION and both states ---- */

static int pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	bool is_auth = s->state == POP3_STATE_AUTHORIZATION;
	bool plain_ok = is_auth && conn_plaintext_auth_ok(s->conn);

	/* RFC 2449 section 5; USER and SASL only where they would be
	 * accepted (RFC 5034 section 6: no plaintext offer on insecure
	 * connections), STLS before TLS and login (RFC 2595 section 4). */
	conn_printf(s->conn, "+OK Capability list follows\r\n"
		    "TOP\r\n%sUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
		    "PIPELINING\r\n%s%sIMPLEMENTATION Heron\r\n.\r\n",
		    plain_ok ? "USER\r\n" : "",
		    plain_ok ? "SASL PLAIN LOGIN\r\n" : "",
		    is_auth && conn_tls_available(s->conn) &&
		    !conn_is_tls(s->conn) ? "STLS\r\n" : "");
	return 0;
}

static int pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (conn_is_tls(s->conn)) {
		pop3_reply_error(s, "TLS is already active");
		return -1;
	}
	if (!conn_tls_available(s->conn)) {
		pop3_reply_error(s, "TLS is not available");
		return -1;
	}
	/* RFC 2595 section 4: the OK, then the handshake; conn drops any
	 * input pipelined after STLS. What the client said before (USER)
	 * is forgotten. */
	conn_printf(s->conn, "+OK Begin TLS negotiation\r\n");
	free(s->user);
	s->user = NULL;
	if (conn_start_tls(s->conn) < 0) {
		log_error("pop3 conn_start_tls failed id=%llu",
			  (unsigned long long)conn_id(s->conn));
		pop3_close(s, "TLS failed");
	}
	return 0;
}

/* RFC 1939 section 6: the UPDATE state removes the marked messages. */
static void pop3_update(struct pop3_session *s)
{
	uint32_t *uids, n = 0;
	const char *error;

	if (s->deleted_count == 0) {
		conn_printf(s->conn, "+OK Logging out\r\n");
		return;
	}
	uids = xreallocarray(NULL, s->deleted_count, sizeof(*uids));
	for (uint32_t i = 0; i < s->msg_count; i++) {
		if (!pop3_msg_exists(s, i + 1))
			uids[n++] = pop3_msg(s, i + 1)->uid;
	}
	if (store_mailbox_expunge(s->mb, uids, n, &error) < 0) {
		log_error("pop3 store_mailbox_expunge(%s, %u messages) failed "
			  "id=%llu: %s", s->user, n,
			  (unsigned long long)conn_id(s->conn), error);
		pop3_reply_error(s, "[SYS/TEMP] Some deleted messages were "
				 "not removed");
	} else {
		s->expunged_count = n;
		conn_printf(s->conn, "+OK Logging out (%u message%s "
			    "deleted)\r\n", n, n == 1 ? "" : "s");
	}
	free(uids);
}

static int pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (s->state == POP3_STATE_TRANSACTION)
		pop3_update(s);
	else
		conn_printf(s->conn, "+OK Logging out\r\n");
	/* Release the maildrop lock before the client can see the reply, so
	 * its next session is not refused with [IN-USE]. */
	if (s->mb != NULL)
		store_mailbox_close(&s->mb);
	pop3_close(s, "QUIT");
	return 0;
}

/* ---- TRANSACTION ---- */

static int pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	conn_printf(s->conn, "+OK\r\n");
	return 0;
}

static int pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	conn_printf(s->conn, "+OK %u %llu\r\n",
		    s->msg_count - s->deleted_count,
		    (unsigned long long)(s->total_bytes - s->deleted_bytes));
	return 0;
}

/* RFC 1939 section 7 unique-id: Dovecot's default format (or the UIDL
 * Dovecot stored), so users moved from Dovecot download nothing again
 * (store_msg_pop3_uidl); pop3_uidl keeps it within the RFC's limits. */
static const char *pop3_msg_uidl(struct pop3_session *s,
				 const struct store_msg *msg,
				 char buf[POP3_UIDL_BUF_SIZE])
{
	char tmp[POP3_UIDL_BUF_SIZE];
	const char *id, *ret;

	/* id is buf or owned by s->mb; ret is id or tmp. */
	id = store_msg_pop3_uidl(s->mb, msg, buf, POP3_UIDL_BUF_SIZE);
	ret = pop3_uidl(id, tmp);
	if (ret == tmp) {
		memcpy(buf, tmp, sizeof(tmp));
		return buf;
	}
	return ret;
}

static int pop3_cont_listing(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	char buf[POP3_UIDL_BUF_SIZE];

	while (st->next < s->msg_count) {
		const struct store_msg *msg;
		uint32_t num = ++st->next;

		if (conn_output_len(s->conn) >= CONN_OUTPUT_HIWAT) {
			st->next--;
			return 0;
		}
		if (!pop3_msg_exists(s, num))
			continue;
		msg = pop3_msg(s, num);
		if (st->is_uidl) {
			conn_printf(s->conn, "%u %s\r\n", num,
				    pop3_msg_uidl(s, msg, buf));
		} else {
			conn_printf(s->conn, "%u %llu\r\n", num,
				    (unsigned long long)msg->vsize);
		}
	}
	conn_write(s->conn, ".\r\n", 3);
	return 1;
}

static int pop3_listing(struct pop3_session *s, const struct pop3_cmd *cmd,
			bool is_uidl)
{
	char buf[POP3_UIDL_BUF_SIZE];
	const struct store_msg *msg;
	uint32_t num;
	int ret;

	if (cmd->argc == 0) {
		pop3_stream_new(s, pop3_cont_listing)->is_uidl = is_uidl;
		conn_printf(s->conn, "+OK %u messages (%llu octets)\r\n",
			    s->msg_count - s->deleted_count,
			    (unsigned long long)(s->total_bytes -
						 s->deleted_bytes));
		return 0;
	}
	if ((ret = pop3_get_msg(s, &cmd->args[0], &num)) <= 0)
		return ret;
	msg = pop3_msg(s, num);
	if (is_uidl) {
		conn_printf(s->conn, "+OK %u %s\r\n", num,
			    pop3_msg_uidl(s, msg, buf));
	} else {
		conn_printf(s->conn, "+OK %u %llu\r\n", num,
			    (unsigned long long)msg->vsize);
	}
	return 0;
}

static int pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	return pop3_listing(s, cmd, false);
}

static int pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	return pop3_listing(s, cmd, true);
}

static int pop3_cont_msg(struct pop3_session *s)
{
	struct pop3_stream *st = s->stream;
	unsigned char *in = st->buf, *out = st->buf + POP3_CHUNK_SIZE;
	size_t len;
	ssize_t n;

	while (!st->xf.is_done) {
		if (conn_output_len(s->conn) >= CONN_OUTPUT_HIWAT)
			return 0;
		n = read(st->fd, in, POP3_CHUNK_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* Mid-reply: no -ERR possible, the client must see
			 * the reply cut short. */
			log_error("pop3 read(%s) failed id=%llu user=%s: %s",
				  pop3_msg(s, st->num)->path,
				  (unsigned long long)conn_id(s->conn),
				  s->user, strerror(errno));
			pop3_close(s, "message read error");
			return 1;
		}
		if (n == 0)
			break;
		len = pop3_xform_feed(&st->xf, in, (size_t)n, out);
		conn_write(s->conn, out, len);
		st->sent += len;
	}
	len = pop3_xform_finish(&st->xf, out);
	conn_write(s->conn, out, len);
	st->sent += len;
	return 1;
}

static int pop3_send_msg(struct pop3_session *s, uint32_t num, bool is_top,
			 uint64_t top_lines)
{
	const struct store_msg *msg = pop3_msg(s, num);
	struct pop3_stream *st;
	const char *error;
	int fd;

	fd = store_msg_open(s->mb, msg, &error);
	if (fd < 0) {
		bool is_gone = errno == ENOENT;

		log_warn("pop3 store_msg_open(%s) failed id=%llu user=%s: %s",
			 msg->path, (unsigned long long)conn_id(s->conn),
			 s->user, error);
		pop3_reply_error(s, is_gone ?
				 "Message was removed by another session" :
				 "[SYS/TEMP] Unable to read the message");
		return 0;
	}
	st = pop3_stream_new(s, pop3_cont_msg);
	st->fd = fd;
	st->num = num;
	st->is_retr = !is_top;
	st->buf = xmalloc(POP3_CHUNK_SIZE * 3);	/* SIZE-MATH: in + 2x out */
	pop3_xform_init(&st->xf, is_top, top_lines);
	if (is_top) {
		conn_printf(s->conn, "+OK\r\n");
	} else {
		s->retr_count++;
		conn_printf(s->conn, "+OK %llu octets\r\n",
			    (unsigned long long)msg->vsize);
	}
	return 0;
}

static int pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t num;
	int ret;

	if ((ret = pop3_get_msg(s, &cmd->args[0], &num)) <= 0)
		return ret;
	return pop3_send_msg(s, num, false, 0);
}

static int pop3_cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint64_t lines;
	uint32_t num;
	int ret;

	if (pop3_parse_u64(&cmd->args[1], &lines) < 0) {
		pop3_reply_error(s, "Invalid line count");
		return -1;
	}
	if ((ret = pop3_get_msg(s, &cmd->args[0], &num)) <= 0)
		return ret;
	return pop3_send_msg(s, num, true, lines);
}

static int pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t num;
	int ret;

	if ((ret = pop3_get_msg(s, &cmd->args[0], &num)) <= 0)
		return ret;
	s->deleted[(num - 1) / 8] |= (uint8_t)(1u << ((num - 1) % 8));
	s->deleted_count++;
	s->deleted_bytes += pop3_msg(s, num)->vsize;
	conn_printf(s->conn, "+OK Message %u deleted\r\n", num);
	return 0;
}

static int pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	memset(s->deleted, 0, (size_t)s->msg_count / 8 + 1);
	s->deleted_count = 0;
	s->deleted_bytes = 0;
	conn_printf(s->conn, "+OK Maildrop has %u messages (%llu octets)\r\n",
		    s->msg_count, (unsigned long long)s->total_bytes);
	return 0;
}

#define AUTHZ POP3_STATE_AUTHORIZATION
#define TRANS POP3_STATE_TRANSACTION

static const struct pop3_command pop3_commands[] = {
	{ "APOP", pop3_cmd_apop, AUTHZ, 2, 2, 0 },
	{ "AUTH", pop3_cmd_auth, AUTHZ, 0, 2, POP3_CMD_FLAG_LONG_ARGS },
	{ "CAPA", pop3_cmd_capa, AUTHZ | TRANS, 0, 0, 0 },
	{ "DELE", pop3_cmd_dele, TRANS, 1, 1, 0 },
	{ "LIST", pop3_cmd_list, TRANS, 0, 1, 0 },
	{ "NOOP", pop3_cmd_noop, TRANS, 0, 0, 0 },
	{ "PASS", pop3_cmd_pass, AUTHZ, 1, 1,
	  POP3_CMD_FLAG_LONG_ARGS | POP3_CMD_FLAG_RAW_REST },
	{ "QUIT", pop3_cmd_quit, AUTHZ | TRANS, 0, 0, 0 },
	{ "RETR", pop3_cmd_retr, TRANS, 1, 1, 0 },
	{ "RSET", pop3_cmd_rset, TRANS, 0, 0, 0 },
	{ "STAT", pop3_cmd_stat, TRANS, 0, 0, 0 },
	{ "STLS", pop3_cmd_stls, AUTHZ, 0, 0, 0 },
	{ "TOP", pop3_cmd_top, TRANS, 2, 2, 0 },
	{ "UIDL", pop3_cmd_uidl, TRANS, 0, 1, 0 },
	{ "USER", pop3_cmd_user, AUTHZ, 1, 1, 0 },
};

const struct pop3_command *pop3_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(*pop3_commands);
	     i++) {
		if (strcmp(pop3_commands[i].name, name) == 0)
			return &pop3_commands[i];
	}
	return NULL;
}
