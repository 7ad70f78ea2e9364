/* lmtp_client.c: one LMTP session on top of conn.h.
 *
 * The input loop reads command lines (or DATA bytes) while no recipient
 * lookup is pending and the output queue is below CONN_OUTPUT_HIWAT, so
 * pipelined commands (RFC 2920) are answered strictly in order. An idle
 * session is a struct lmtp_client only; the transaction and DATA state
 * are allocated when needed and freed at the end of the transaction
 * (or handed to a delivery batch after the final dot, lmtp_batch.c).
 * Not here: command semantics (lmtp_commands.c), storage (lmtp_deliver.c). */
#include "lmtp/lmtp_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "store/store.h"

const char *lmtp_hostname(const struct settings *set)
{
	return set->hostname != NULL && *set->hostname != '\0' ?
		set->hostname : "localhost";
}

void lmtp_reply(struct lmtp_client *client, const char *fmt, ...)
{
	char line[LMTP_REPLY_MAX + 1];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(line, sizeof(line), fmt, args);
	va_end(args);
	if (len < 0)
		len = 0;
	if ((size_t)len >= sizeof(line))
		len = sizeof(line) - 1;
	conn_write(client->conn, line, (size_t)len);
	conn_write(client->conn, "\r\n", 2);
}

void lmtp_client_close(struct lmtp_client *client, const char *reason)
{
	if (client->is_closing)
		return;
	client->is_closing = true;
	conn_close_after_flush(client->conn, reason);
}

bool lmtp_client_error(struct lmtp_client *client)
{
	/* STYLE.md section 4: count client mistakes, cut off after N */
	if (++client->errors < LMTP_MAX_ERRORS)
		return false;
	lmtp_reply(client, "421 4.7.0 %s Too many errors, closing connection",
		   lmtp_hostname(client->set));
	lmtp_client_close(client, "too many errors");
	return true;
}

void lmtp_trans_free(struct lmtp_trans **_trans)
{
	struct lmtp_trans *trans = *_trans;

	if (trans == NULL)
		return;
	*_trans = NULL;
	if (trans->lookup_req != NULL)
		auth_request_abort(&trans->lookup_req);
	for (unsigned i = 0; i < trans->rcpts_count; i++) {
		free(trans->rcpts[i].addr);
		free(trans->rcpts[i].user);
	}
	free(trans->rcpts);
	free(trans->sender);
	free(trans->lookup_addr);
	free(trans->lookup_name);
	free(trans->lookup_local);
	free(trans);
}

void lmtp_data_free(struct lmtp_data **_data)
{
	struct lmtp_data *data = *_data;

	if (data == NULL)
		return;
	*_data = NULL;
	/* The spool file is anonymous (O_TMPFILE or unlinked at creation):
	 * closing it is the cleanup. */
	if (data->spool_fd >= 0)
		close(data->spool_fd);
	/* an uncommitted tmp/ file is removed */
	store_delivery_abort(&data->d);
	lmtp_su_put(&data->su);
	free(data);
}

static size_t client_line_max(const struct lmtp_client *client)
{
	size_t max = client->set->max_line_length;

	/* RFC 5321 section 4.5.3.1.4: at least 512 octets */
	if (max == 0)
		return LMTP_DEFAULT_LINE_MAX;
	return max < 512 ? 512 : max;
}

/* Reads and runs one command line. Returns false when no complete line
 * is buffered. */
static bool client_read_command(struct lmtp_client *client)
{
	char *line;
	size_t len;
	int ret;

	ret = conn_read_line(client->conn, client_line_max(client), &line,
			     &len);
	if (ret == 0)
		return false;
	if (ret < 0) {
		/* RFC 5321 section 4.5.3.1.9; conn.h skips to EOL.
		 * RFC 3463 has no "line too long" detail: X.5.2 syntax. */
		if (!lmtp_client_error(client))
			lmtp_reply(client, "500 5.5.2 Line too long");
		return true;
	}
	lmtp_command_run(client, line, len);
	free(line);
	return true;
}

void lmtp_client_input(struct lmtp_client *client)
{
	if (client->is_in_input)
		return;
	client->is_in_input = true;
	while (!client->is_closing) {
		if (client->batch != NULL)
			break;	/* deliveries in flight */
		if (client->trans != NULL && client->trans->is_lookup_pending)
			break;
		if (client->data != NULL) {
			lmtp_data_input(client);
			if (client->data != NULL)
				break;
			continue;
		}
		conn_cmd_end(client->conn, NULL);	/* the previous one */
		/* Back-pressure: a client that doesn't read its replies
		 * waits for on_drain. */
		if (conn_output_len(client->conn) >= CONN_OUTPUT_HIWAT)
			break;
		if (!client_read_command(client))
			break;
	}
	client->is_in_input = false;
}

static void *lmtp_create(struct conn *conn)
{
	struct lmtp_client *client = xcalloc(1, sizeof(*client));

	client->conn = conn;
	client->set = conn_settings(conn);
	conn_set_idle_timeout(conn, client->set->idle_timeout_secs);
	lmtp_reply(client, "220 %s Heron LMTP ready",
		   lmtp_hostname(client->set));
	return client;
}

static void lmtp_on_input(void *session)
{
	lmtp_client_input(session);
}

static void lmtp_destroy(void *session, const char *reason)
{
	struct lmtp_client *client = session;

	if (client->data != NULL || client->trans != NULL ||
	    client->batch != NULL)
		log_info("lmtp disconnect id=%llu mid_transaction=1 "
			 "reason=\"%s\"",
			 (unsigned long long)conn_id(client->conn),
			 reason != NULL ? reason : "");
	/* deliveries in flight finish without us (lmtp_batch.c) */
	lmtp_batch_orphan(&client->batch);
	/* nothing was acknowledged: drop spool and recipients */
	lmtp_data_free(&client->data);
	lmtp_trans_free(&client->trans);
	free(client);
}

const struct proto_ops lmtp_proto_ops = {
	.name = "lmtp",
	.create = lmtp_create,
	.on_input = lmtp_on_input,
	.on_drain = lmtp_on_input,
	.destroy = lmtp_destroy,
	/* RFC 5321 section 3.8: 421 closes the channel. */
	.busy_reply = "421 4.7.0 Too many connections from your IP\r\n",
};
