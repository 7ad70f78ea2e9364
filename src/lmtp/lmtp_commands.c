/* lmtp_commands.c: the LMTP command table and handlers (RFC 2033 on top
 * of RFC 5321, with PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE and
 * STARTTLS). The dispatcher checks arguments and LHLO; handlers check the
 * transaction state. DATA input is at the end of this file. Not here:
 * syntax (lmtp_parse.c), storage (lmtp_deliver.c), the deliveries and
 * per-recipient replies after the final dot (lmtp_batch.c). */
#include "lmtp/lmtp_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/spool.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "store/store.h"

enum lmtp_cmd_flags {
	LMTP_CMD_FLAG_NEEDS_LHLO = 1 << 0,
	LMTP_CMD_FLAG_NO_ARGS = 1 << 1,
};

struct lmtp_command {
	enum lmtp_cmd cmd;
	void (*func)(struct lmtp_client *client, const char *args,
		     size_t len);
	unsigned flags;
};

/* Client mistake reply: counted toward LMTP_MAX_ERRORS; the last one
 * gets the 421 instead. */
#define lmtp_reply_error(client, ...) do { \
	if (!lmtp_client_error(client)) \
		lmtp_reply(client, __VA_ARGS__); \
	} while (0)

/* ---- LHLO, HELO, EHLO ---- */

static void cmd_lhlo(struct lmtp_client *client, const char *args,
		     size_t len)
{
	const struct settings *set = client->set;
	const char *lines[8];
	char size_line[40];
	unsigned n = 0;

	if (len == 0) {
		lmtp_reply_error(client, "501 5.5.4 Syntax: LHLO hostname");
		return;
	}
	/* RFC 2033 section 4.1: same semantics as EHLO, which resets the
	 * transaction (RFC 5321 section 4.1.4). */
	lmtp_trans_free(&client->trans);
	client->has_lhlo = true;
	if (set->max_message_size == 0)
		snprintf(size_line, sizeof(size_line), "SIZE");
	else
		snprintf(size_line, sizeof(size_line), "SIZE %llu",
			 (unsigned long long)set->max_message_size);
	lines[n++] = lmtp_hostname(set);
	lines[n++] = "PIPELINING";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "8BITMIME";
	lines[n++] = size_line;
	/* RFC 3207 section 4.2: not after the handshake */
	if (conn_tls_available(client->conn) && !conn_is_tls(client->conn))
		lines[n++] = "STARTTLS";
	for (unsigned i = 0; i < n; i++)
		lmtp_reply(client, "250%c%s", i + 1 < n ? '-' : ' ', lines[i]);
}

static void cmd_helo(struct lmtp_client *client, const char *args,
		     size_t len)
{
	/* RFC 2033 section 4.1: MUST NOT return a positive completion;
	 * 500 is recommended. */
	lmtp_reply_error(client, "500 5.5.1 This is LMTP: use LHLO");
}

/* ---- MAIL ---- */

static bool param_is(const struct lmtp_param *p, const char *key)
{
	return strlen(key) == p->key_len &&
		strncasecmp(p->key, key, p->key_len) == 0;
}

static bool value_is(const struct lmtp_param *p, const char *value)
{
	return strlen(value) == p->value_len &&
		strncasecmp(p->value, value, p->value_len) == 0;
}

/* Checks MAIL parameters; replies and returns -1 on refusal. */
static int mail_check_params(struct lmtp_client *client,
			     const struct lmtp_path *path)
{
	uint64_t max = client->set->max_message_size, size;

	for (unsigned i = 0; i < path->params_count; i++) {
		const struct lmtp_param *p = &path->params[i];

		if (param_is(p, "SIZE")) {
			/* RFC 1870 section 6: size-value ::= 1*20DIGIT */
			if (p->value == NULL || str_to_u64(p->value,
			    p->value_len, UINT64_MAX, &size) < 0) {
				lmtp_reply_error(client,
					"501 5.5.4 Bad SIZE value");
				return -1;
			}
			if (max != 0 && size > max) {
				lmtp_reply(client, "552 5.3.4 Message size "
					   "exceeds fixed maximum message "
					   "size");
				return -1;
			}
		} else if (param_is(p, "BODY") && p->value != NULL &&
			   (value_is(p, "7BIT") || value_is(p, "8BITMIME"))) {
			/* stored as is either way */
		} else {
			lmtp_reply(client, "555 5.5.4 Unsupported parameter");
			return -1;
		}
	}
	return 0;
}

static void reply_path_error(struct lmtp_client *client,
			     enum lmtp_parse_error err, bool is_mail)
{
	switch (err) {
	case LMTP_PARSE_OK:
		break;
	case LMTP_PARSE_PREFIX:
		lmtp_reply_error(client, is_mail ?
				 "501 5.5.4 Syntax: MAIL FROM:<address>" :
				 "501 5.5.4 Syntax: RCPT TO:<address>");
		break;
	case LMTP_PARSE_PATH:
		lmtp_reply_error(client, is_mail ?
				 "501 5.1.7 Bad sender address syntax" :
				 "501 5.1.3 Bad recipient address syntax");
		break;
	case LMTP_PARSE_TOO_LONG:
		/* RFC 5321 section 4.5.3.1.9 */
		lmtp_reply_error(client, "501 5.5.4 Path too long");
		break;
	case LMTP_PARSE_PARAMS:
		lmtp_reply_error(client, "501 5.5.4 Bad parameter syntax");
		break;
	}
}

static void cmd_mail(struct lmtp_client *client, const char *args,
		     size_t len)
{
	struct lmtp_path path;
	enum lmtp_parse_error err;

	if (client->trans != NULL) {
		lmtp_reply_error(client, "503 5.5.1 Nested MAIL command");
		return;
	}
	err = lmtp_path_parse(args, len, true, &path);
	if (err != LMTP_PARSE_OK) {
		reply_path_error(client, err, true);
		return;
	}
	if (mail_check_params(client, &path) < 0)
		return;
	client->trans = xcalloc(1, sizeof(*client->trans));
	client->trans->sender = xstrdup(path.addr);
	lmtp_reply(client, "250 2.1.0 Sender OK");
}

/* ---- RCPT ---- */

static void rcpt_lookup_start(struct lmtp_client *client, const char *name);

static void rcpt_add(struct lmtp_trans *trans, const char *user)
{
	struct lmtp_rcpt *rcpt;

	if (trans->rcpts_count == trans->rcpts_alloc) {
		trans->rcpts_alloc = trans->rcpts_alloc == 0 ? 4 :
			trans->rcpts_alloc * 2;
		trans->rcpts = xreallocarray(trans->rcpts, trans->rcpts_alloc,
					     sizeof(*trans->rcpts));
	}
	rcpt = &trans->rcpts[trans->rcpts_count++];
	rcpt->addr = trans->lookup_addr;
	rcpt->user = xstrdup(user);
	trans->lookup_addr = NULL;
}

static void rcpt_lookup_cb(enum auth_result result, const char *user,
			   void *context)
{
	struct lmtp_client *client = context;
	struct lmtp_trans *trans = client->trans;
	char *local;

	trans->lookup_req = NULL;
	trans->is_lookup_pending = false;
	if ((result == AUTH_RESULT_NOUSER || result == AUTH_RESULT_FAIL) &&
	    trans->lookup_local != NULL) {
		/* "alice@example.org" unknown: try "alice" */
		local = trans->lookup_local;
		trans->lookup_local = NULL;
		rcpt_lookup_start(client, local);
		free(local);
		return;
	}
	if (result == AUTH_RESULT_OK && user != NULL) {
		lmtp_reply(client, "250 2.1.5 <%s> Recipient OK",
			   trans->lookup_addr);
		lmtp_user_cache_put(trans->lookup_name, user);
		rcpt_add(trans, user);
	} else if (result == AUTH_RESULT_TEMPFAIL) {
		lmtp_reply(client, "451 4.3.0 <%s> Temporary failure in "
			   "user lookup", trans->lookup_addr);
	} else {
		lmtp_reply(client, "550 5.1.1 <%s> User unknown",
			   trans->lookup_addr);
	}
	free(trans->lookup_addr);
	free(trans->lookup_name);
	free(trans->lookup_local);
	trans->lookup_addr = trans->lookup_name = trans->lookup_local = NULL;
	conn_pause_input(client->conn, false);
	/* Continue with pipelined commands (no-op when called from inside
	 * the input loop). */
	lmtp_client_input(client);
}

static void rcpt_lookup_start(struct lmtp_client *client, const char *name)
{
	struct lmtp_trans *trans = client->trans;
	struct auth_request *req;
	unsigned seq = ++trans->lookup_seq;

	trans->is_lookup_pending = true;
	/* Replies must stay in command order (RFC 2920 section 3.1). */
	conn_pause_input(client->conn, true);
	req = auth_lookup_user(name, rcpt_lookup_cb, client);
	/* The callback may have run already (and freed req). */
	if (trans->is_lookup_pending && trans->lookup_seq == seq) {
		trans->lookup_req = req;
		if (req == NULL)	/* not in auth.h's contract; be safe */
			rcpt_lookup_cb(AUTH_RESULT_TEMPFAIL, NULL, client);
	}
}

static void cmd_rcpt(struct lmtp_client *client, const char *args,
		     size_t len)
{
	struct lmtp_trans *trans = client->trans;
	struct lmtp_path path;
	enum lmtp_parse_error err;
	const char *at, *user;

	if (trans == NULL) {
		lmtp_reply_error(client, "503 5.5.1 MAIL first");
		return;
	}
	err = lmtp_path_parse(args, len, false, &path);
	if (err != LMTP_PARSE_OK) {
		reply_path_error(client, err, false);
		return;
	}
	if (path.params_count > 0) {
		lmtp_reply(client, "555 5.5.4 Unsupported parameter");
		return;
	}
	/* RFC 5321 section 4.5.3.1.10: over the limit is 452 */
	if (client->set->max_recipients != 0 &&
	    trans->rcpts_count >= client->set->max_recipients) {
		lmtp_reply(client, "452 4.5.3 Too many recipients");
		return;
	}
	trans->lookup_addr = xstrdup(path.addr);
	user = lmtp_user_cache_get(path.user);
	if (user != NULL) {
		/* looked up OK less than LMTP_USER_CACHE_TTL_SECS ago */
		lmtp_reply(client, "250 2.1.5 <%s> Recipient OK",
			   trans->lookup_addr);
		rcpt_add(trans, user);
		return;
	}
	trans->lookup_name = xstrdup(path.user);
	at = strrchr(path.user, '@');
	if (at != NULL && at != path.user)
		trans->lookup_local = xstrndup(path.user,
					       (size_t)(at - path.user));
	rcpt_lookup_start(client, path.user);
}

/* ---- DATA ---- */

/* One recipient: open its Maildir file now so the message is written
 * once. 0 when done; -1 to fall back to the spool (the error shows up
 * again, per recipient, after the data). */
static int data_open_direct(struct lmtp_client *client,
			    struct lmtp_data *data)
{
	const struct lmtp_rcpt *rcpt = &client->trans->rcpts[0];
	char error[LMTP_ERROR_MAX];

	if (client->trans->rcpts_count != 1)
		return -1;
	if (lmtp_delivery_open(client->set, rcpt->user, client->trans->sender,
			       rcpt->addr, &data->su, &data->d, error) < 0) {
		log_error("lmtp id=%llu user=%s: starting delivery failed: "
			  "%s: %s", (unsigned long long)conn_id(client->conn),
			  rcpt->user, error, strerror(errno));
		return -1;
	}
	return 0;
}

static void cmd_data(struct lmtp_client *client, const char *args,
		     size_t len)
{
	struct lmtp_data *data;

	if (client->trans == NULL) {
		lmtp_reply_error(client, "503 5.5.1 MAIL first");
		return;
	}
	if (client->trans->rcpts_count == 0) {
		/* RFC 2033 section 4.2: MUST fail with 503 */
		lmtp_reply_error(client, "503 5.5.1 No valid recipients");
		return;
	}
	data = xcalloc(1, sizeof(*data));
	data->spool_fd = -1;
	if (data_open_direct(client, data) < 0) {
		data->spool_fd = spool_open(client->set->state_dir);
		if (data->spool_fd < 0) {
			log_error("lmtp id=%llu: opening a spool file in %s "
				  "failed: %s",
				  (unsigned long long)conn_id(client->conn),
				  client->set->state_dir, strerror(errno));
			lmtp_reply(client, "451 4.3.0 Temporary failure");
			free(data);
			return;
		}
	}
	lmtp_hdr_scan_init(&data->hdr);
	client->data = data;
	lmtp_reply(client, "354 Start mail input; end with <CRLF>.<CRLF>");
}

/* ---- the rest ---- */

static void cmd_rset(struct lmtp_client *client, const char *args,
		     size_t len)
{
	lmtp_trans_free(&client->trans);
	lmtp_reply(client, "250 2.0.0 OK");
}

static void cmd_noop(struct lmtp_client *client, const char *args,
		     size_t len)
{
	lmtp_reply(client, "250 2.0.0 OK");
}

static void cmd_quit(struct lmtp_client *client, const char *args,
		     size_t len)
{
	lmtp_reply(client, "221 2.0.0 %s Closing connection",
		   lmtp_hostname(client->set));
	lmtp_client_close(client, "quit");
}

static void cmd_vrfy(struct lmtp_client *client, const char *args,
		     size_t len)
{
	/* RFC 5321 section 3.5.3: 252 when we will not verify */
	if (len == 0)
		lmtp_reply_error(client, "501 5.5.4 Syntax: VRFY address");
	else
		lmtp_reply(client, "252 2.5.0 Cannot VRFY user, but will "
			   "accept message and attempt delivery");
}

static void cmd_starttls(struct lmtp_client *client, const char *args,
			 size_t len)
{
	struct evbuffer *in = conn_input(client->conn);

	if (conn_is_tls(client->conn)) {
		lmtp_reply_error(client, "503 5.5.1 TLS already active");
		return;
	}
	if (!conn_tls_available(client->conn)) {
		lmtp_reply(client, "454 4.7.0 TLS not available");
		return;
	}
	lmtp_reply(client, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 section 4.2: the protocol is reset; nothing the client
	 * sent before the handshake is used, LHLO is needed again. */
	lmtp_trans_free(&client->trans);
	client->has_lhlo = false;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (conn_start_tls(client->conn) < 0) {
		log_error("lmtp id=%llu: conn_start_tls failed",
			  (unsigned long long)conn_id(client->conn));
		lmtp_client_close(client, "starttls failed");
	}
}

static const struct lmtp_command lmtp_commands[] = {
	{ LMTP_CMD_LHLO, cmd_lhlo, 0 },
	{ LMTP_CMD_HELO, cmd_helo, 0 },
	{ LMTP_CMD_EHLO, cmd_helo, 0 },
	{ LMTP_CMD_MAIL, cmd_mail, LMTP_CMD_FLAG_NEEDS_LHLO },
	{ LMTP_CMD_RCPT, cmd_rcpt, LMTP_CMD_FLAG_NEEDS_LHLO },
	{ LMTP_CMD_DATA, cmd_data,
	  LMTP_CMD_FLAG_NEEDS_LHLO | LMTP_CMD_FLAG_NO_ARGS },
	{ LMTP_CMD_RSET, cmd_rset, LMTP_CMD_FLAG_NO_ARGS },
	{ LMTP_CMD_NOOP, cmd_noop, 0 },	/* RFC 5321: argument ignored */
	{ LMTP_CMD_QUIT, cmd_quit, LMTP_CMD_FLAG_NO_ARGS },
	{ LMTP_CMD_VRFY, cmd_vrfy, 0 },
	{ LMTP_CMD_STARTTLS, cmd_starttls,
	  LMTP_CMD_FLAG_NEEDS_LHLO | LMTP_CMD_FLAG_NO_ARGS },
};

void lmtp_command_run(struct lmtp_client *client, const char *line,
		      size_t len)
{
	const struct lmtp_command *c = NULL;
	enum lmtp_cmd cmd;
	const char *args;
	size_t args_len;

	cmd = lmtp_cmd_parse(line, len, &args, &args_len);
	/* metrics: ends when the session is idle again (lmtp_client.c) */
	conn_cmd_begin(client->conn, line, strcspn(line, " "));
	for (size_t i = 0; i < sizeof(lmtp_commands) / sizeof(*c); i++) {
		if (lmtp_commands[i].cmd == cmd)
			c = &lmtp_commands[i];
	}
	/* trailing spaces are tolerated everywhere */
	while (args_len > 0 && args[args_len - 1] == ' ')
		args_len--;
	if (c == NULL)
		lmtp_reply_error(client, "500 5.5.2 Command unknown");
	else if ((c->flags & LMTP_CMD_FLAG_NO_ARGS) != 0 && args_len > 0)
		lmtp_reply_error(client, "501 5.5.4 No arguments allowed");
	else if ((c->flags & LMTP_CMD_FLAG_NEEDS_LHLO) != 0 &&
		 !client->has_lhlo)
		lmtp_reply_error(client, "503 5.5.1 Send LHLO first");
	else
		c->func(client, args, args_len);
}

/* ---- DATA input and delivery ---- */

/* Writes decoded bytes to the recipient's file or the spool; on failure
 * that target is dropped and the error kept for the replies. */
static void data_write(struct lmtp_client *client, const void *buf,
		       size_t len)
{
	struct lmtp_data *data = client->data;
	const char *error;

	if (data->d != NULL) {
		if (store_delivery_write(data->d, buf, len, &error) == 0)
			return;
		data->write_errno = errno;
		snprintf(data->write_error, sizeof(data->write_error), "%s",
			 error);
		log_error("lmtp id=%llu: %s",
			  (unsigned long long)conn_id(client->conn), error);
		store_delivery_abort(&data->d);
		errno = data->write_errno;
		return;
	}
	if (spool_write(data->spool_fd, buf, len) == 0)
		return;
	data->spool_errno = errno;
	log_error("lmtp id=%llu: write(spool) failed: %s",
		  (unsigned long long)conn_id(client->conn), strerror(errno));
	close(data->spool_fd);
	data->spool_fd = -1;
}

/* Decoded message bytes: scan headers, append to the file. */
static void data_store(struct lmtp_client *client, const void *buf,
		       size_t len)
{
	struct lmtp_data *data = client->data;
	uint64_t max = client->set->max_message_size;

	data->size += len;
	if (!data->hdr.is_done)
		lmtp_hdr_scan_feed(&data->hdr, buf, len);
	if (data->is_too_big || data->spool_errno != 0 ||
	    data->write_errno != 0 || len == 0)
		return;
	if (max == 0 || data->size <= max) {
		data_write(client, buf, len);
		return;
	}
	/* keep reading to the final dot, then 552 per recipient; removing
	 * the file now releases its space */
	data->is_too_big = true;
	store_delivery_abort(&data->d);
	if (data->spool_fd >= 0) {
		close(data->spool_fd);
		data->spool_fd = -1;
	}
}

/* One decode buffer per worker: the loop is single-threaded and
 * data_store consumes it before returning. */
static unsigned char data_out[LMTP_DATA_CHUNK + 1];

void lmtp_data_input(struct lmtp_client *client)
{
	struct evbuffer *in = conn_input(client->conn);
	struct evbuffer_iovec vec;
	size_t len, out_len = 0, n, consumed;
	int done = 0;

	while (!done && evbuffer_peek(in, -1, NULL, &vec, 1) > 0) {
		len = vec.iov_len;
		if (len == 0) {
			/* an empty chain: make the data contiguous */
			len = evbuffer_get_length(in) < LMTP_DATA_CHUNK ?
				evbuffer_get_length(in) : LMTP_DATA_CHUNK;
			vec.iov_base = evbuffer_pullup(in, (ssize_t)len);
		}
		/* out needs room for len + 1 (a held-back CR) */
		if (len > LMTP_DATA_CHUNK - out_len)
			len = LMTP_DATA_CHUNK - out_len;
		done = lmtp_data_decode(&client->data->dec, vec.iov_base, len,
					data_out + out_len, &n, &consumed);
		out_len += n;
		evbuffer_drain(in, consumed);
		if (out_len >= LMTP_DATA_CHUNK / 2) {
			data_store(client, data_out, out_len);
			out_len = 0;
		}
	}
	if (out_len > 0)
		data_store(client, data_out, out_len);
	if (done)
		/* after the final dot: deliver, reply per recipient */
		lmtp_batch_start(client);
}
