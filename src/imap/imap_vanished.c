/* imap_vanished.c: VANISHED and VANISHED (EARLIER) responses (RFC 7162
 * 3.2.10). UIDs are written as merged ascending ranges. The expunge
 * history's ranges are collected in one array (bounded by the store's
 * record limit), sorted and merged, intersected with the client's known
 * UIDs, and the UIDs still in the view are left out by walking the view
 * (sorted by UID) once. Not here: when these may be sent (the session's
 * sync rules, RFC 7162 3.2.10.2), parsing of the UID sets. */
#include "imap/imap_vanished.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* Writes ranges given in ascending order, merging adjacent ones. */
struct vanished_out {
	struct evbuffer *out;
	const char *prefix;		/* VANISHED [(EARLIER)] */
	size_t line_ranges;		/* ranges on the open line */
	bool has_pending;
	uint32_t first, last;		/* the pending range */
};

/* The expunge history's ranges (heap). */
struct vanished_hist {
	struct imap_seq_range *ranges;
	size_t count, cap;
};

static void vout_init(struct vanished_out *vo, struct imap_client *client,
		      const char *prefix)
{
	vo->out = imap_client_output(client);
	vo->prefix = prefix;
	vo->line_ranges = 0;
	vo->has_pending = false;
	vo->first = vo->last = 0;
}

static void vout_write_pending(struct vanished_out *vo)
{
	if (!vo->has_pending)
		return;
	vo->has_pending = false;
	if (vo->line_ranges == IMAP_VANISHED_RANGES_PER_LINE) {
		evbuffer_add(vo->out, "\r\n", 2);
		vo->line_ranges = 0;
	}
	if (vo->line_ranges++ == 0)
		evbuffer_add_printf(vo->out, "* %s ", vo->prefix);
	else
		evbuffer_add(vo->out, ",", 1);
	if (vo->first == vo->last)
		evbuffer_add_printf(vo->out, "%u", vo->first);
	else
		evbuffer_add_printf(vo->out, "%u:%u", vo->first, vo->last);
}

static void vout_add(struct vanished_out *vo, uint32_t first, uint32_t last)
{
	if (vo->has_pending && first <= (uint64_t)vo->last + 1) {
		if (last > vo->last)
			vo->last = last;
		return;
	}
	vout_write_pending(vo);
	vo->first = first;
	vo->last = last;
	vo->has_pending = true;
}

static void vout_end(struct vanished_out *vo)
{
	vout_write_pending(vo);
	if (vo->line_ranges > 0)
		evbuffer_add(vo->out, "\r\n", 2);
}

void imap_vanished_send(struct imap_client *client, const uint32_t *uids,
			size_t count)
{
	struct vanished_out vo;

	vout_init(&vo, client, "VANISHED");
	for (size_t i = 0; i < count; i++)
		vout_add(&vo, uids[i], uids[i]);
	vout_end(&vo);
}

/* Adds first..last minus the UIDs of the view. */
static void vout_add_not_in_view(struct vanished_out *vo,
				 const struct imap_client *client,
				 uint32_t first, uint32_t last)
{
	uint32_t count = imap_client_count(client);
	uint64_t next = first;

	for (uint32_t i = imap_client_uids_below(client, first); i < count;
	     i++) {
		uint32_t uid = imap_client_msg(client, i + 1)->uid;

		if (uid > last)
			break;
		if (uid > next)
			vout_add(vo, (uint32_t)next, uid - 1);
		next = (uint64_t)uid + 1;
	}
	if (next <= last)
		vout_add(vo, (uint32_t)next, last);
}

/* Adds (a and known, from min_uid on) minus the view; a and known->ranges are
 * sorted and non-overlapping, so the output is ascending. */
static void vout_add_intersection(struct vanished_out *vo,
				  const struct imap_client *client,
				  const struct imap_seq_range *a,
				  size_t a_count,
				  const struct imap_seqset *known,
				  uint32_t min_uid)
{
	size_t i = 0, j = 0;

	while (i < a_count && j < known->count) {
		const struct imap_seq_range *k = &known->ranges[j];
		uint32_t lo = a[i].first > k->first ? a[i].first : k->first;
		uint32_t hi = a[i].last < k->last ? a[i].last : k->last;

		if (lo < min_uid)
			lo = min_uid;
		if (lo <= hi)
			vout_add_not_in_view(vo, client, lo, hi);
		if (a[i].last < k->last)
			i++;
		else
			j++;
	}
}

static void hist_add(uint32_t first_uid, uint32_t last_uid, uint64_t modseq,
		     void *ctx)
{
	struct vanished_hist *hist = ctx;

	if (first_uid == 0 || first_uid > last_uid)
		return;		/* not a range: ignore */
	if (hist->count == hist->cap) {
		hist->cap = hist->cap == 0 ? 64 : hist->cap * 2;
		hist->ranges = xreallocarray(hist->ranges, hist->cap,
					     sizeof(*hist->ranges));
	}
	hist->ranges[hist->count].first = first_uid;
	hist->ranges[hist->count].last = last_uid;
	hist->count++;
}

static int range_cmp(const void *p1, const void *p2)
{
	const struct imap_seq_range *r1 = p1, *r2 = p2;

	return r1->first < r2->first ? -1 : r1->first > r2->first;
}

/* Sorts the history by UID and merges overlapping or adjacent ranges. */
static void hist_normalize(struct vanished_hist *hist)
{
	size_t n = 0;

	if (hist->count == 0)
		return;
	qsort(hist->ranges, hist->count, sizeof(*hist->ranges), range_cmp);
	for (size_t i = 1; i < hist->count; i++) {
		struct imap_seq_range *cur = &hist->ranges[n];

		if (hist->ranges[i].first <= (uint64_t)cur->last + 1) {
			if (hist->ranges[i].last > cur->last)
				cur->last = hist->ranges[i].last;
		} else {
			hist->ranges[++n] = hist->ranges[i];
		}
	}
	hist->count = n + 1;
}

int imap_vanished_send_earlier(struct imap_client *client,
			       const struct imap_seqset *known,
			       uint32_t min_uid, uint64_t modseq)
{
	struct vanished_hist hist = { NULL, 0, 0 };
	struct imap_seq_range all;
	struct vanished_out vo;
	const char *error;
	int ret;

	ret = store_mailbox_expunged_since(client->mb, modseq, hist_add,
					   &hist, &error);
	if (ret < 0) {
		log_error("imap expunged_since user=%s mailbox=%s failed: %s",
			  client->user, client->mailbox_name, error);
		free(hist.ranges);
		return -1;
	}
	vout_init(&vo, client, "VANISHED (EARLIER)");
	if (ret == 1) {
		/* RFC 7162 3.2.6: older than the history we keep: every
		 * known UID the mailbox lacks. */
		all.first = 1;
		all.last = store_mailbox_uidnext(client->mb);
		if (all.last-- > 1)
			vout_add_intersection(&vo, client, &all, 1, known,
					      min_uid);
	} else {
		hist_normalize(&hist);
		vout_add_intersection(&vo, client, hist.ranges, hist.count,
				      known, min_uid);
	}
	vout_end(&vo);
	free(hist.ranges);
	return 0;
}

/* The saved search result (RFC 5182 "$", kept ascending) as ranges. */
static void saved_to_set(const struct imap_client *client,
			 struct imap_seqset *set)
{
	const uint32_t *uids = client->saved_uids;
	size_t n = 0;

	set->ranges = xreallocarray(NULL, client->saved_count + 1,
				    sizeof(*set->ranges));
	for (size_t i = 0; i < client->saved_count; i++) {
		struct imap_seq_range *prev = &set->ranges[n > 0 ? n - 1 : 0];

		if (n > 0 && uids[i] <= (uint64_t)prev->last + 1) {
			if (uids[i] > prev->last)
				prev->last = uids[i];
			continue;
		}
		set->ranges[n].first = set->ranges[n].last = uids[i];
		n++;
	}
	set->count = n;
	set->has_star = false;
}

int imap_vanished_send_for_set(struct imap_client *client,
			       const struct imap_arg *arg, uint64_t modseq)
{
	uint32_t star = store_mailbox_uidnext(client->mb);
	struct imap_seqset set;
	const char *str, *error;
	bool is_saved;
	int ret;

	/* '*' is no ATOM-CHAR: the raw atom, as imap_client_seqset */
	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	str = arg->str;
	if (imap_seqset_parse(str, strlen(str), star > 0 ? star - 1 : 0,
			      &set, &is_saved, &error) < 0)
		return -1;
	if (is_saved) {
		imap_seqset_free(&set);
		saved_to_set(client, &set);
	}
	ret = imap_vanished_send_earlier(client, &set, 1, modseq);
	imap_seqset_free(&set);
	return ret;
}
