/* imap_client.c: the IMAP session. Feeds the connection's input to the
 * command parser, runs one command at a time through the command table,
 * streams APPEND literals to cmd_append.c, keeps the selected mailbox view
 * and sends its untagged updates at the points RFC 3501 section 7.4.1 and
 * RFC 2180 allow, and routes change notifications (inotify) to idling
 * sessions. Does not interpret command arguments: cmd_*.c do. */
#include "imap/imap_client.h"
#include "imap/imap_capability.h"
#include "imap/imap_quote.h"
#include "imap/imap_seqset.h"
#include "imap/imap_vanished.h"
#include "auth/auth.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Client errors (BAD) tolerated before the session is closed. */
#define IMAP_MAX_BAD_COMMANDS 20
/* Pre-login sessions get a short idle timeout (RFC 3501 5.4 concerns the
 * logged-in autologout timer, at least 30 minutes). */
#define IMAP_PRELOGIN_IDLE_SECS 180

/* Sessions by watch id (the selected mailbox's inotify watch), for
 * routing change events; a worker process has one table. */
struct imap_watcher {
	struct imap_client *client;
	struct imap_watcher *next;
	struct imap_watcher **pprev;	/* O(1) removal at unselect */
};
static struct imap_watcher **imap_watchers;	/* [watch id] -> list */
/* Per watch id: when the folder was last read for its idlers. */
struct imap_watch_state {
	uint64_t last_sync_msecs;
	struct event *timer;	/* a deferred read, at most one */
};
static struct imap_watch_state *imap_watch_state;
static int imap_watchers_cap;
static struct event *imap_watch_event;
/* Idlers' folders are read at most this often (ms). */
#define IMAP_WATCH_MIN_MSECS 20

static uint64_t imap_now_msecs(void)
{
	return time_mono_nsecs() / 1000000;
}

static void imap_client_input(struct imap_client *client);
static void imap_cmd_finish(struct imap_cmd *cmd);
static void imap_cmd_run(struct imap_cmd *cmd,
			 int (*func)(struct imap_cmd *));

/* ---- output ---- */

struct evbuffer *imap_client_output(struct imap_client *client)
{
	return client->push_out != NULL ? client->push_out :
		conn_output(client->conn);
}

/* Sends what imap_client_sync_push collected (see there). */
static void imap_client_push_end(struct imap_client *client)
{
	struct evbuffer *buf = client->push_out;

	if (buf == NULL)
		return;
	client->push_out = NULL;
	conn_send_now(client->conn, buf);
}

bool imap_client_output_full(struct imap_client *client)
{
	return conn_output_len(client->conn) >= CONN_OUTPUT_HIWAT;
}

unsigned imap_client_quote_flags(const struct imap_client *client)
{
	/* RFC 9051 Appendix A: UTF-8 strings only after ENABLE IMAP4rev2
	 * (or UTF8=ACCEPT, RFC 6855 3). */
	return imap_client_utf8_names(client) ? IMAP_QUOTE_UTF8 : 0;
}

bool imap_client_utf8_names(const struct imap_client *client)
{
	return (client->enabled & (IMAP_ENABLED_UTF8 |
				   IMAP_ENABLED_IMAP4REV2)) != 0;
}

void imap_client_untagged(struct imap_client *client, const char *fmt, ...)
{
	struct evbuffer *out = imap_client_output(client);
	va_list ap;

	evbuffer_add(out, "* ", 2);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void imap_cmd_vreply(struct imap_cmd *cmd, const char *status,
			    const char *fmt, va_list ap)
{
	struct evbuffer *out = conn_output(cmd->client->conn);

	evbuffer_add_printf(out, "%s %s ", cmd->tag, status);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

void imap_cmd_ok(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	/* Untagged updates go before the tagged reply. */
	imap_client_sync(cmd->client, cmd->def == NULL ||
			 !(cmd->def->flags & IMAP_CMD_NO_EXPUNGES) ||
			 cmd->uid);
	va_start(ap, fmt);
	imap_cmd_vreply(cmd, "OK", fmt, ap);
	va_end(ap);
}

void imap_cmd_no(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	imap_client_sync(cmd->client, cmd->def == NULL ||
			 !(cmd->def->flags & IMAP_CMD_NO_EXPUNGES) ||
			 cmd->uid);
	va_start(ap, fmt);
	imap_cmd_vreply(cmd, "NO", fmt, ap);
	va_end(ap);
}

static void imap_client_count_bad(struct imap_client *client)
{
	if (++client->bad_count < IMAP_MAX_BAD_COMMANDS)
		return;
	imap_client_untagged(client, "BYE Too many invalid commands");
	client->state = IMAP_STATE_LOGOUT;
	conn_close_after_flush(client->conn, "too many errors");
}

void imap_cmd_bad(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_cmd_vreply(cmd, "BAD", fmt, ap);
	va_end(ap);
	imap_client_count_bad(cmd->client);
}

/* ---- the selected mailbox ---- */

uint32_t imap_client_count(const struct imap_client *client)
{
	return client->mb == NULL ? 0 : store_mailbox_count(client->mb);
}

const struct store_msg *imap_client_msg(const struct imap_client *client,
					uint32_t seq)
{
	return store_mailbox_msg(client->mb, seq - 1);
}

uint32_t imap_client_uid_to_seq(const struct imap_client *client,
				uint32_t uid)
{
	uint32_t i = imap_client_uids_below(client, uid);

	return i < imap_client_count(client) &&
		imap_client_msg(client, i + 1)->uid == uid ? i + 1 : 0;
}

bool imap_client_is_recent(const struct imap_client *client, uint32_t uid)
{
	for (size_t i = 0; i < client->recent_count; i++) {
		if (uid >= client->recent[i].first &&
		    uid <= client->recent[i].last)
			return true;
	}
	return false;
}

uint32_t imap_client_uids_below(const struct imap_client *client,
				uint32_t uid)
{
	uint32_t lo = 0, hi = imap_client_count(client);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (imap_client_msg(client, mid + 1)->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Per range two binary searches, not a walk over the mailbox per idler.
 * The ranges come in UID order (claims only move forward); any overlap
 * with an earlier one is not counted twice. */
uint32_t imap_client_count_recent(const struct imap_client *client)
{
	uint32_t n = 0, next = 1;	/* UIDs below next are counted */

	for (size_t i = 0; i < client->recent_count; i++) {
		uint32_t first = client->recent[i].first;
		uint32_t last = client->recent[i].last;

		if (first < next)
			first = next;
		if (last < first || last == UINT32_MAX)
			continue;
		n += imap_client_uids_below(client, last + 1) -
			imap_client_uids_below(client, first);
		next = last + 1;
	}
	return n;
}

void imap_client_claim_recent(struct imap_client *client)
{
	uint32_t first, next = store_mailbox_uidnext(client->mb);
	const char *error;

	/* RFC 9051 2.3.2 / Appendix E item 12: \Recent is gone in
	 * IMAP4rev2; such a session takes it from nobody and shows none. */
	if (client->enabled & IMAP_ENABLED_IMAP4REV2)
		return;
	if (client->is_readonly) {
		/* RFC 3501 6.3.2: EXAMINE must not take \Recent away from
		 * other sessions, but (2.3.2) it still sees which messages
		 * are recent: those no session has claimed yet. */
		first = store_mailbox_first_recent_uid(client->mb);
		if (client->recent_count > 0 &&
		    first <= client->recent[client->recent_count - 1].last)
			first = client->recent[client->recent_count - 1].last
				+ 1;
	} else if (store_mailbox_claim_recent(client->mb, &first,
					      &error) < 0) {
		log_warn("imap claim_recent user=%s mailbox=%s failed: %s",
			 client->user, client->mailbox_name, error);
		return;
	}
	if (first >= next)
		return;
	client->recent = xreallocarray(client->recent,
				       client->recent_count + 1,
				       sizeof(*client->recent));
	client->recent[client->recent_count].first = first;
	client->recent[client->recent_count].last = next - 1;
	client->recent_count++;
}

/* "* <n> <word>\r\n" without printf: IDLE sends these to thousands of
 * sessions at once. */
static void imap_client_untagged_num(struct imap_client *client, uint32_t n,
				     const char *word)
{
	char buf[48], *p = buf + 16;
	size_t wlen = strlen(word);

	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	*--p = ' ';
	*--p = '*';
	memcpy(buf + 16, " ", 1);
	memcpy(buf + 17, word, wlen);
	memcpy(buf + 17 + wlen, "\r\n", 2);
	evbuffer_add(imap_client_output(client), p,
		     (size_t)(buf + 19 + wlen - p));
}

static void imap_client_send_flag_change(struct imap_client *client,
					 uint32_t uid)
{
	struct evbuffer *out = imap_client_output(client);
	uint32_t seq = imap_client_uid_to_seq(client, uid);
	const struct store_msg *msg;

	if (seq == 0)
		return;
	msg = imap_client_msg(client, seq);
	evbuffer_add_printf(out, "* %u FETCH (UID %u FLAGS (", seq, uid);
	imap_client_append_flags(client, out, msg);
	evbuffer_add(out, ")", 1);
	if (client->enabled & (IMAP_ENABLED_CONDSTORE | IMAP_ENABLED_QRESYNC))
		evbuffer_add_printf(out, " MODSEQ (%llu)",
				    (unsigned long long)msg->modseq);
	evbuffer_add(out, ")\r\n", 3);
}

static void imap_client_send_changes(struct imap_client *client,
				     const struct store_changes *ch)
{
	uint32_t count = imap_client_count(client), recent;

	/* RFC 7162 3.2.10.2: with QRESYNC one VANISHED (UIDs) instead.
	 * RFC 3501 7.4.1: each EXPUNGE shifts the later numbers down. */
	if (client->enabled & IMAP_ENABLED_QRESYNC) {
		imap_vanished_send(client, ch->expunged_uids,
				   ch->expunged_count);
	} else {
		for (size_t i = 0; i < ch->expunged_count; i++)
			imap_client_untagged(client, "%u EXPUNGE",
				ch->expunged_seqs[i] - (uint32_t)i);
	}
	/* Each EXPUNGE already lowered the client's message count. */
	client->exists_sent -= ch->expunged_count < client->exists_sent ?
		(uint32_t)ch->expunged_count : client->exists_sent;
	if (ch->new_count > 0 || count != client->exists_sent) {
		if (ch->new_count > 0)
			imap_client_claim_recent(client);
		imap_client_untagged_num(client, count, "EXISTS");
		client->exists_sent = count;
	}
	recent = imap_client_count_recent(client);
	/* RFC 9051 Appendix E item 12: no RECENT responses in IMAP4rev2 */
	if ((client->enabled & IMAP_ENABLED_IMAP4REV2) == 0 &&
	    (recent != client->recent_sent || ch->new_count > 0)) {
		imap_client_untagged_num(client, recent, "RECENT");
		client->recent_sent = recent;
	}
	for (size_t i = 0; i < ch->changed_count; i++)
		imap_client_send_flag_change(client, ch->changed_uids[i]);
}

/* IDLE fan-out (imap_watch_notify_idlers): the first idler refreshes its
 * view from the index as usual and becomes the leader; the others still
 * on the leader's old view take its new one and its changes
 * (store_mailbox_follow) instead of each reading the index and comparing
 * views again. Only set while the idlers of one mailbox are told. */
static struct {
	bool active;
	struct imap_client *candidate, *leader;
	struct store_follow *follow;
	struct store_changes changes;	/* the leader's */
} fanout;

static void fanout_begin(void)
{
	memset(&fanout, 0, sizeof(fanout));
	fanout.active = true;
}

static void fanout_end(void)
{
	if (fanout.leader != NULL)
		store_changes_free(&fanout.changes);
	store_follow_end(&fanout.follow);
	memset(&fanout, 0, sizeof(fanout));
}

/* After the refresh: BYE if the mailbox was recreated, else the
 * untagged updates. */
static void imap_client_sync_done(struct imap_client *client,
				  const struct store_changes *ch)
{
	client->index_is_fresh = false;
	if (ch->uidvalidity_changed) {
		imap_client_untagged(client, "BYE [UIDVALIDITY] Mailbox was "
				     "recreated");
		imap_client_push_end(client);
		client->state = IMAP_STATE_LOGOUT;
		conn_close_after_flush(client->conn, "uidvalidity changed");
	} else {
		imap_client_send_changes(client, ch);
	}
}

void imap_client_sync(struct imap_client *client, bool allow_expunges)
{
	struct store_changes ch;
	const char *error;

	if (client->state != IMAP_STATE_SELECTED || client->mb == NULL)
		return;
	/* Without expunges allowed the view stays as it is: the updates
	 * come at the next point where all of them may be sent. */
	if (!allow_expunges)
		return;
	client->mailbox_changed = false;
	if (fanout.leader != NULL && client->index_is_fresh &&
	    store_mailbox_follow(client->mb, fanout.follow,
				 fanout.leader->mb)) {
		imap_client_sync_done(client, &fanout.changes);
		return;
	}
	if (fanout.active && fanout.candidate == NULL &&
	    client->index_is_fresh) {
		fanout.candidate = client;
		fanout.follow = store_follow_begin(client->mb);
	}
	if ((client->index_is_fresh ?
	     store_mailbox_refresh_changes(client->mb, &ch, &error) :
	     store_mailbox_sync_changes(client->mb, &ch, &error)) < 0) {
		client->index_is_fresh = false;
		if (errno == ENOENT) {
			/* RFC 2180 3.3: another session deleted it. */
			imap_client_untagged(client, "BYE Selected mailbox "
					     "was deleted");
			imap_client_push_end(client);
			client->state = IMAP_STATE_LOGOUT;
			conn_close_after_flush(client->conn,
					       "mailbox deleted");
			return;
		}
		log_error("imap sync user=%s mailbox=%s failed: %s",
			  client->user, client->mailbox_name, error);
		return;
	}
	imap_client_sync_done(client, &ch);
	if (fanout.candidate == client && fanout.leader == NULL &&
	    fanout.follow != NULL && !ch.uidvalidity_changed) {
		fanout.leader = client;
		fanout.changes = ch;	/* freed by fanout_end */
		return;
	}
	store_changes_free(&ch);
}

/* IDLE: the updates are sent as soon as they are made (conn_send_now),
 * not at the next turn of the event loop, so with thousands of idlers on
 * one mailbox the first needn't wait until the last is prepared, and an
 * idler costs one send() instead of a trip through the loop's write
 * events. */
void imap_client_sync_push(struct imap_client *client)
{
	static struct evbuffer *scratch;

	if (scratch == NULL)
		scratch = evbuffer_new();
	client->push_out = scratch;
	imap_client_sync(client, true);
	imap_client_push_end(client);
}

int imap_client_seqset(struct imap_client *client, const struct imap_arg *arg,
		       bool is_uid, uint32_t **seqs_r, size_t *count_r,
		       const char **error_r)
{
	uint32_t count = imap_client_count(client), *seqs = NULL;
	struct imap_seqset set;
	const char *str;
	bool is_saved = false;
	size_t n = 0;

	/* '*' is not an ATOM-CHAR: take the raw atom and let the set
	 * parser judge it. */
	if (arg == NULL || arg->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	str = arg->str;
	if (strcmp(str, "$") == 0) {
		/* RFC 5182: the saved search result (UIDs). */
		seqs = xreallocarray(NULL, client->saved_count + 1,
				     sizeof(*seqs));
		for (size_t i = 0; i < client->saved_count; i++) {
			uint32_t seq = imap_client_uid_to_seq(
				client, client->saved_uids[i]);
			if (seq != 0)
				seqs[n++] = seq;
		}
		*seqs_r = seqs;
		*count_r = n;
		return 0;
	}
	/* An empty mailbox makes "1:*" an empty set, which we answer with
	 * OK and nothing rather than BAD (clients send it blindly). */
	if (imap_seqset_parse(str, strlen(str), is_uid ?
			      (count > 0 ? imap_client_msg(client,
							   count)->uid : 0) :
			      count, &set, &is_saved, error_r) < 0)
		return -1;
	if (!is_uid && imap_seqset_max(&set) > count) {
		imap_seqset_free(&set);
		*error_r = "Invalid messageset";
		return -1;
	}
	seqs = xreallocarray(NULL, count + 1, sizeof(*seqs));
	for (uint32_t seq = 1; seq <= count; seq++) {
		uint32_t key = is_uid ? imap_client_msg(client, seq)->uid : seq;
		if (imap_seqset_contains(&set, key))
			seqs[n++] = seq;
	}
	imap_seqset_free(&set);
	*seqs_r = seqs;
	*count_r = n;
	return 0;
}

/* Tells the idlers (collected by imap_watch_sync: the watcher list may
 * change under us, as a BYE closes a session). */
static void imap_watch_notify_idlers(struct imap_client **idlers, size_t n)
{
	fanout_begin();
	for (size_t i = 0; i < n; i++) {
		struct imap_client *client = idlers[i];

		/* Still idling: nothing can have ended it meanwhile, as
		 * sessions only end from their own events. The leader
		 * stays valid: only its own events could end it. */
		if (client->is_idling && client->cmd != NULL &&
		    client->cmd->resume != NULL)
			imap_cmd_run(client->cmd, client->cmd->resume);
	}
	fanout_end();
}

static bool imap_watch_has_idlers(int id)
{
	for (struct imap_watcher *w = imap_watchers[id]; w != NULL;
	     w = w->next) {
		if (w->client->is_idling)
			return true;
	}
	return false;
}

/* Reads the folder once for the whole process, then every session on it
 * refreshes its view from the index alone (thousands of IDLE sessions on
 * one mailbox cost one scan) and idlers are told at once. */
static void imap_watch_sync(int id)
{
	struct imap_client **idlers = NULL;
	size_t n = 0, cap = 0;
	const char *error;

	imap_watch_state[id].last_sync_msecs = imap_now_msecs();
	if (store_mailbox_sync_index(imap_watchers[id]->client->mb,
				     &error) < 0) {
		/* Each session syncs (and reports) on its own then. */
		log_debug("imap sync_index failed: %s", error);
		return;
	}
	/* One walk over the sessions (thousands of them): each may now
	 * refresh from the index alone; the idlers are told at once,
	 * without a timer each. */
	for (struct imap_watcher *w = imap_watchers[id]; w != NULL;
	     w = w->next) {
		w->client->index_is_fresh = true;
		if (!w->client->is_idling || w->client->cmd == NULL)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			idlers = xreallocarray(idlers, cap, sizeof(*idlers));
		}
		idlers[n++] = w->client;
	}
	imap_watch_notify_idlers(idlers, n);
	free(idlers);
}

static void imap_watch_timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	int id = (int)(intptr_t)ctx;

	if (id < imap_watchers_cap && imap_watchers[id] != NULL &&
	    imap_watch_has_idlers(id))
		imap_watch_sync(id);
}

/* One change of a watched folder. Sessions not idling only take note:
 * their next command syncs. With idlers the folder is read at most once
 * per IMAP_WATCH_MIN_MSECS, so a burst of changes (our own background
 * renames after a big STORE) can't turn into a scan per event. */
static void imap_watch_changed(int id, void *ctx)
{
	struct imap_watch_state *ws;
	bool idlers = false;
	uint64_t now;

	if (id < 0 || id >= imap_watchers_cap || imap_watchers[id] == NULL)
		return;
	for (struct imap_watcher *w = imap_watchers[id]; w != NULL;
	     w = w->next) {
		w->client->mailbox_changed = true;
		idlers = idlers || w->client->is_idling;
	}
	if (!idlers)
		return;
	ws = &imap_watch_state[id];
	now = imap_now_msecs();
	if (now - ws->last_sync_msecs >= IMAP_WATCH_MIN_MSECS) {
		imap_watch_sync(id);
	} else if (ws->timer == NULL ||
		   !evtimer_pending(ws->timer, NULL)) {
		struct timeval tv = { 0, (suseconds_t)(IMAP_WATCH_MIN_MSECS -
					 (now - ws->last_sync_msecs)) * 1000 };
		if (ws->timer == NULL)
			ws->timer = evtimer_new(event_get_base(imap_watch_event),
						imap_watch_timer_cb,
						(void *)(intptr_t)id);
		evtimer_add(ws->timer, &tv);
	}
}

static void imap_watch_cb(evutil_socket_t fd, short what, void *ctx)
{
	if (store_watch_read(imap_watch_changed, NULL) < 0)
		log_warn("imap store_watch_read failed");
}

/* Hooks the process's inotify fd into the loop (once) and lists the
 * client for routing. Called after a successful store_watch_add. */
void imap_client_watch_start(struct imap_client *client)
{
	struct imap_watcher *w;
	int id = client->watch_id;

	if (id < 0)
		return;
	if (imap_watch_event == NULL && store_watch_fd() >= 0) {
		imap_watch_event = event_new(conn_event_base(client->conn),
					     store_watch_fd(),
					     EV_READ | EV_PERSIST,
					     imap_watch_cb, NULL);
		event_add(imap_watch_event, NULL);
	}
	if (id >= imap_watchers_cap) {
		int cap = imap_watchers_cap == 0 ? 64 : imap_watchers_cap;

		while (cap <= id)
			cap *= 2;
		imap_watchers = xreallocarray(imap_watchers, (size_t)cap,
					      sizeof(*imap_watchers));
		memset(imap_watchers + imap_watchers_cap, 0,
		       (size_t)(cap - imap_watchers_cap) *
		       sizeof(*imap_watchers));
		imap_watch_state = xreallocarray(imap_watch_state, (size_t)cap,
						 sizeof(*imap_watch_state));
		memset(imap_watch_state + imap_watchers_cap, 0,
		       (size_t)(cap - imap_watchers_cap) *
		       sizeof(*imap_watch_state));
		imap_watchers_cap = cap;
	}
	w = xcalloc(1, sizeof(*w));
	w->client = client;
	w->next = imap_watchers[id];
	if (w->next != NULL)
		w->next->pprev = &w->next;
	w->pprev = &imap_watchers[id];
	imap_watchers[id] = w;
	client->watcher = w;
}

static void imap_client_watch_stop(struct imap_client *client)
{
	int id = client->watch_id;

	struct imap_watcher *w = client->watcher;

	if (id < 0)
		return;
	if (w != NULL) {
		*w->pprev = w->next;
		if (w->next != NULL)
			w->next->pprev = w->pprev;
		free(w);
		client->watcher = NULL;
	}
	store_watch_remove(id);
	client->watch_id = -1;
}

void imap_client_unselect(struct imap_client *client)
{
	imap_client_watch_stop(client);
	if (client->mb != NULL)
		store_mailbox_close(&client->mb);
	free(client->mailbox_name);
	client->mailbox_name = NULL;
	free(client->recent);
	client->recent = NULL;
	client->recent_count = 0;
	free(client->saved_uids);
	client->saved_uids = NULL;
	client->saved_count = 0;
	client->exists_sent = client->recent_sent = 0;
	client->mailbox_changed = false;
	client->is_readonly = false;
	if (client->state == IMAP_STATE_SELECTED)
		client->state = IMAP_STATE_AUTH;
}

/* ---- commands ---- */

static void imap_cmd_free(struct imap_cmd **cmdp)
{
	struct imap_cmd *cmd = *cmdp;

	if (cmd->ctx != NULL && cmd->ctx_free != NULL)
		cmd->ctx_free(cmd->ctx);
	imap_command_free(&cmd->parsed);
	free(cmd->tag_owned);
	free(cmd);
	*cmdp = NULL;
}

/* Renames of Maildir files after flag changes, a slice per loop turn so
 * a STORE on a big mailbox never blocks other sessions. */
#define IMAP_RENAME_SLICE 500

static void imap_flush_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_client *client = ctx;
	struct timeval tv = { 0, 0 };
	const char *error;
	int left;

	/* Commands first: imap_cmd_finish schedules us again. */
	if (client->mb == NULL || client->cmd != NULL)
		goto out_free;
	left = store_mailbox_flush_renames(client->mb, IMAP_RENAME_SLICE,
					   &error);
	if (left < 0)
		log_warn("imap flush_renames user=%s mailbox=%s failed: %s",
			 client->user, client->mailbox_name, error);
	if (left > 0) {
		evtimer_add(client->flush_event, &tv);
		return;
	}
out_free:
	/* An idle session keeps no timer (~150 bytes each). A
	 * non-persistent event may be freed in its own callback. */
	event_free(client->flush_event);
	client->flush_event = NULL;
}

static void imap_client_schedule_flush(struct imap_client *client)
{
	struct timeval tv = { 0, 0 };

	if (client->mb == NULL)
		return;
	if (client->flush_event == NULL)
		client->flush_event = evtimer_new(conn_event_base(client->conn),
						  imap_flush_cb, client);
	if (!evtimer_pending(client->flush_event, NULL))
		evtimer_add(client->flush_event, &tv);
}

static void imap_cmd_finish(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;

	/* Flag changes (STORE, FETCH setting \Seen) reach the file names in
	 * the background; nothing to do costs nothing. */
	imap_client_schedule_flush(client);

	/* A wake-up still pending belongs to this command, not the next;
	 * an idle session keeps no timer. */
	if (client->wake_event != NULL) {
		event_free(client->wake_event);
		client->wake_event = NULL;
	}
	client->cmd = NULL;
	conn_cmd_end(client->conn, cmd->name);	/* metrics: latency */
	imap_cmd_free(&cmd);
}

static void imap_cmd_run(struct imap_cmd *cmd, int (*func)(struct imap_cmd *))
{
	struct imap_client *client = cmd->client;

	/* A handler returning AGAIN keeps its resume function unless it
	 * sets another one. */
	client->cmd = cmd;
	if (func(cmd) == IMAP_CMD_DONE)
		imap_cmd_finish(cmd);
	else if (cmd->resume == NULL)
		log_fatal("imap command %s returned AGAIN without resume",
			  cmd->name);
}

static void imap_cmd_wake_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_client *client = ctx;
	struct imap_cmd *cmd = client->cmd;

	if (cmd != NULL && cmd->resume != NULL)
		imap_cmd_run(cmd, cmd->resume);
	if (client->cmd == NULL)
		imap_client_input(client);
}

void imap_cmd_drop_args(struct imap_cmd *cmd)
{
	if (cmd->parsed == NULL || cmd->def == NULL)
		return;
	cmd->tag_owned = cmd->parsed->tag;
	cmd->parsed->tag = NULL;
	cmd->tag = cmd->tag_owned;
	cmd->name = cmd->def->name;
	cmd->args = NULL;
	cmd->args_count = 0;
	imap_command_free(&cmd->parsed);
}

void imap_cmd_wake(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct timeval tv = { 0, 0 };

	if (client->wake_event == NULL)
		client->wake_event = evtimer_new(conn_event_base(client->conn),
						 imap_cmd_wake_cb, client);
	evtimer_add(client->wake_event, &tv);
}

/* Checks the command's state flags against the session. */
static bool imap_cmd_allowed(const struct imap_client *client,
			     const struct imap_cmd_def *def)
{
	switch (client->state) {
	case IMAP_STATE_NOT_AUTH:
		return (def->flags & IMAP_CMD_NOT_AUTH) != 0;
	case IMAP_STATE_AUTH:
		return (def->flags & IMAP_CMD_AUTH) != 0 &&
			!(def->flags & IMAP_CMD_SELECTED);
	case IMAP_STATE_SELECTED:
		return (def->flags & (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)) != 0;
	case IMAP_STATE_LOGOUT:
		return false;
	}
	return false;
}

static void imap_client_dispatch(struct imap_client *client,
				 struct imap_command *parsed)
{
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));
	const char *name;

	conn_cmd_begin(client->conn, NULL, 0);	/* metrics: latency */
	cmd->client = client;
	cmd->parsed = parsed;
	cmd->tag = parsed->tag;
	cmd->name = parsed->name;
	cmd->args = parsed->args;
	cmd->args_count = parsed->args_count;
	client->cmd = cmd;
	if (strcmp(parsed->name, "UID") == 0) {
		if (parsed->args_count == 0 ||
		    !imap_arg_get_atom(&parsed->args[0], &name)) {
			imap_cmd_bad(cmd, "UID needs a command");
			goto out_finish;
		}
		cmd->uid = true;
		cmd->name = name;
		cmd->args++;
		cmd->args_count--;
	}
	cmd->def = imap_command_find(cmd->name);
	if (cmd->def == NULL || (cmd->uid &&
				 !(cmd->def->flags & IMAP_CMD_UID_OK))) {
		cmd->def = NULL;
		imap_cmd_bad(cmd, "Unknown command");
		goto out_finish;
	}
	if (!imap_cmd_allowed(client, cmd->def)) {
		const struct imap_cmd_def *def = cmd->def;
		cmd->def = NULL;
		if (client->state == IMAP_STATE_NOT_AUTH)
			imap_cmd_bad(cmd, "Please log in first");
		else if (def->flags & IMAP_CMD_SELECTED)
			imap_cmd_bad(cmd, "No mailbox selected");
		else
			imap_cmd_bad(cmd, "Command not valid in this state");
		goto out_finish;
	}
	imap_cmd_run(cmd, cmd->def->func);
	return;
out_finish:
	imap_cmd_finish(cmd);
}

/* A literal was announced in the command being parsed. */
static void imap_client_literal(struct imap_client *client)
{
	const struct imap_literal_info *info =
		imap_parser_literal_info(client->parser);
	const struct imap_command *partial =
		imap_parser_partial(client->parser);

	if (partial->name != NULL && strcmp(partial->name, "APPEND") == 0 &&
	    info->depth <= 1 &&	/* 1: RFC 6855 "UTF8 (~{n})" */
	    client->state != IMAP_STATE_NOT_AUTH) {
		if (imap_append_literal_start(client, partial, info) < 0) {
			imap_parser_abort_command(client->parser);
			return;
		}
		imap_parser_literal_accept(client->parser, IMAP_LITERAL_STREAM);
	} else if (imap_parser_literal_accept(client->parser,
					      IMAP_LITERAL_MEMORY) < 0) {
		/* RFC 7888 section 4 / RFC 4469: too big for memory. */
		conn_printf(client->conn, "%s %s [TOOBIG] Literal too large\r\n",
			    partial->tag != NULL ? partial->tag : "*",
			    partial->tag != NULL ? "NO" : "BAD");
		imap_parser_abort_command(client->parser);
		return;
	}
	if (info->is_sync)
		conn_printf(client->conn, "+ OK\r\n");
}

static void imap_client_parse_error(struct imap_client *client)
{
	const struct imap_parse_error *err = imap_parser_error(client->parser);

	if (client->append != NULL)
		imap_append_abort(client);
	if (err->code == IMAP_PARSE_ERR_EMPTY)
		return;	/* RFC 3501 doesn't define empty lines: ignore */
	conn_printf(client->conn, "%s BAD %s\r\n",
		    err->tag != NULL ? err->tag : "*", err->message);
	if (err->is_fatal) {
		imap_client_untagged(client, "BYE Protocol error");
		client->state = IMAP_STATE_LOGOUT;
		conn_close_after_flush(client->conn, "protocol error");
		return;
	}
	imap_client_count_bad(client);
}

static void imap_client_parser_settings(const struct imap_client *client,
					struct imap_parser_settings *pset)
{
	size_t max_line = client->set->max_line_length;

	if (client->state == IMAP_STATE_NOT_AUTH) {
		imap_parser_settings_default(pset, false);
	} else {
		imap_parser_settings_default(pset, true);
		if (max_line < 65536)
			max_line = 65536;
	}
	pset->max_line_length = max_line;
	/* RFC 6855 3: UTF-8 in quoted strings after ENABLE UTF8=ACCEPT */
	pset->utf8 = imap_client_utf8_names(client);	/* RFC 9051 4.3.1 */
}

void imap_client_parser_update(struct imap_client *client)
{
	struct imap_parser_settings pset;

	if (client->parser == NULL)
		return;	/* imap_client_input creates it with them */
	imap_client_parser_settings(client, &pset);
	imap_parser_set_settings(client->parser, &pset);
}

void imap_client_parser_release(struct imap_client *client)
{
	if (client->parser != NULL && imap_parser_is_idle(client->parser))
		imap_parser_destroy(&client->parser);
}

/* Parses and runs pipelined commands while the session may. */
static void imap_client_input(struct imap_client *client)
{
	struct evbuffer *in = conn_input(client->conn);
	struct imap_parser_settings pset;
	const unsigned char *data;
	size_t size;
	bool is_last;

	while (client->cmd == NULL && client->state != IMAP_STATE_LOGOUT &&
	       !imap_client_output_full(client)) {
		if (client->parser == NULL) {
			imap_client_parser_settings(client, &pset);
			client->parser = imap_parser_create(&pset);
		}
		switch (imap_parser_feed_evbuffer(client->parser, in)) {
		case IMAP_PARSE_NEED_MORE:
			imap_client_parser_release(client);
			return;
		case IMAP_PARSE_DONE:
			imap_client_dispatch(client,
				imap_parser_take_command(client->parser));
			break;
		case IMAP_PARSE_LITERAL:
			imap_client_literal(client);
			break;
		case IMAP_PARSE_LITERAL_DATA:
			imap_parser_literal_chunk(client->parser, &data, &size,
						  &is_last);
			if (client->append != NULL &&
			    imap_append_literal_data(client, data, size,
						     is_last) < 0)
				imap_parser_abort_command(client->parser);
			break;
		case IMAP_PARSE_ERROR:
			imap_client_parse_error(client);
			break;
		}
	}
}

/* ---- proto_ops ---- */

static void *imap_create(struct conn *conn)
{
	struct imap_client *client = xcalloc(1, sizeof(*client));

	client->conn = conn;
	client->set = conn_settings(conn);
	client->watch_id = -1;
	/* client->parser: created by imap_client_input when input comes */
	conn_set_idle_timeout(conn, client->set->idle_timeout_secs <
			      IMAP_PRELOGIN_IDLE_SECS ?
			      client->set->idle_timeout_secs :
			      IMAP_PRELOGIN_IDLE_SECS);
	conn_printf(conn, "* OK [CAPABILITY %s] Heron IMAP ready.\r\n",
		    imap_capability_string(client));
	return client;
}

static void imap_on_input(void *session)
{
	struct imap_client *client = session;

	if (client->cmd != NULL) {
		/* IDLE and AUTHENTICATE read their own lines. */
		if (client->cmd->wants_input && client->cmd->resume != NULL)
			imap_cmd_run(client->cmd, client->cmd->resume);
		if (client->cmd != NULL)
			return;
	}
	imap_client_input(client);
}

static void imap_on_drain(void *session)
{
	struct imap_client *client = session;

	if (client->cmd != NULL && !client->cmd->wants_input &&
	    client->cmd->resume != NULL)
		imap_cmd_run(client->cmd, client->cmd->resume);
	if (client->cmd == NULL)
		imap_client_input(client);
}

static void imap_destroy(void *session, const char *reason)
{
	struct imap_client *client = session;

	if (client->user != NULL)
		log_info("imap logout id=%llu user=%s reason=%s in=%llu "
			 "out=%llu", (unsigned long long)conn_id(client->conn),
			 client->user, reason,
			 (unsigned long long)conn_bytes_in(client->conn),
			 (unsigned long long)conn_bytes_out(client->conn));
	if (client->cmd != NULL)
		imap_cmd_free(&client->cmd);
	if (client->append != NULL)
		imap_append_abort(client);
	if (client->auth_req != NULL)
		auth_request_abort(&client->auth_req);
	imap_client_unselect(client);
	imap_client_user_close(client);
	if (client->wake_event != NULL)
		event_free(client->wake_event);
	if (client->flush_event != NULL)
		event_free(client->flush_event);
	imap_parser_destroy(&client->parser);
	free(client->user);
	free(client);
}

const struct proto_ops imap_proto_ops = {
	.name = "imap",
	.create = imap_create,
	.on_input = imap_on_input,
	.on_drain = imap_on_drain,
	.destroy = imap_destroy,
	/* RFC 3501 7.1.5: BYE, then the server closes. */
	.busy_reply = "* BYE Too many connections from your IP\r\n",
	/* RFC 3501 7.1.5: BYE before an autologout. */
	.login_timeout_reply = "* BYE Login timeout\r\n",
};
