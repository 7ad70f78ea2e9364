/* view.c: message views shared by the sessions of one process.
 *
 * Sessions of one mailbox mostly hold the same view: thousands of IDLE
 * sessions on one INBOX, or a webmail opening the same folder again and
 * again. A view built from an index record is listed in a table keyed by
 * the index file, the mailbox key and whether it has names; a session
 * that needs the view of that same record takes a reference instead of
 * reading the index and copying every message again. Views are immutable
 * while shared: a session that changes its copy (its own STORE, a rename
 * it followed) first takes a private one (store_view_own). The table holds
 * no reference: a view leaves it when its last session lets go of it, or
 * when a newer view of the same mailbox is listed. One process, one
 * thread: no locking. */
#include "store/store_private.h"
#include "lib/xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define VIEW_BUCKETS 1024

struct store_view {
	unsigned refs;
	bool listed;
	bool no_names;
	uint32_t hash;
	struct store_view *next, **pprev;	/* bucket chain when listed */
	char *idx_path;
	char *key;
	struct index_mbox rec;
	struct store_msg *msgs;
	uint32_t count;
	char *strings;		/* names of msgs, one block */
	size_t strings_len;
};

static struct store_view *view_buckets[VIEW_BUCKETS];

/* FNV-1a over the index path and the mailbox key. */
static uint32_t view_hash(const char *idx_path, const char *key)
{
	uint32_t h = 2166136261u;

	for (const char *p = idx_path; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (const char *p = key; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

static bool view_matches(const struct store_view *v, uint32_t hash,
			 const struct store_mailbox *mb)
{
	return v->hash == hash && v->no_names == mb->no_names &&
		strcmp(v->key, mb->key) == 0 &&
		strcmp(v->idx_path, mb->su->index->path) == 0;
}

static void view_unlist(struct store_view *v)
{
	if (!v->listed)
		return;
	*v->pprev = v->next;
	if (v->next != NULL)
		v->next->pprev = v->pprev;
	v->listed = false;
}

static void view_free(struct store_view *v)
{
	view_unlist(v);
	free(v->msgs);
	free(v->strings);
	free(v->idx_path);
	free(v->key);
	free(v);
}

struct store_view *store_view_lookup(struct store_mailbox *mb,
				     const struct index_mbox *rec)
{
	uint32_t hash = view_hash(mb->su->index->path, mb->key);

	for (struct store_view *v = view_buckets[hash % VIEW_BUCKETS];
	     v != NULL; v = v->next) {
		if (!view_matches(v, hash, mb))
			continue;
		/* One listed view per mailbox: the newest. */
		if (v->rec.id != rec->id ||
		    v->rec.uidvalidity != rec->uidvalidity ||
		    v->rec.uidnext != rec->uidnext ||
		    v->rec.count != rec->count ||
		    v->rec.highestmodseq != rec->highestmodseq)
			return NULL;
		v->refs++;
		return v;
	}
	return NULL;
}

struct store_view *store_view_new(struct store_mailbox *mb,
				  const struct index_mbox *rec,
				  struct store_msg *msgs, uint32_t count,
				  char *strings, size_t strings_len)
{
	struct store_view *v = xcalloc(1, sizeof(*v)), **head;

	v->refs = 1;
	v->no_names = mb->no_names;
	v->idx_path = xstrdup(mb->su->index->path);
	v->key = xstrdup(mb->key);
	v->hash = view_hash(v->idx_path, v->key);
	v->rec = *rec;
	v->msgs = msgs;
	v->count = count;
	v->strings = strings;
	v->strings_len = strings_len;
	head = &view_buckets[v->hash % VIEW_BUCKETS];
	for (struct store_view *o = *head; o != NULL; o = o->next) {
		if (view_matches(o, v->hash, mb)) {
			view_unlist(o);	/* superseded; its holders keep it */
			break;
		}
	}
	v->next = *head;
	if (v->next != NULL)
		v->next->pprev = &v->next;
	v->pprev = head;
	*head = v;
	v->listed = true;
	return v;
}

void store_view_unref(struct store_view **_v)
{
	struct store_view *v = *_v;

	if (v == NULL)
		return;
	*_v = NULL;
	if (--v->refs == 0)
		view_free(v);
}

const struct store_msg *store_view_msgs(const struct store_view *v,
					uint32_t *count_r)
{
	*count_r = v->count;
	return v->msgs;
}

void store_mailbox_set_view(struct store_mailbox *mb, struct store_view *v)
{
	store_view_unref(&mb->view);
	mb->view = v;
	mb->msgs = v != NULL ? v->msgs : NULL;
	mb->count = v != NULL ? v->count : 0;
}

void store_view_own(struct store_mailbox *mb)
{
	struct store_view *v = mb->view, *c;

	if (v == NULL)
		return;
	if (v->refs == 1) {
		view_unlist(v);	/* nobody else may take it from now on */
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->no_names = v->no_names;
	c->idx_path = xstrdup(v->idx_path);
	c->key = xstrdup(v->key);
	c->hash = v->hash;
	c->rec = v->rec;
	c->count = v->count;
	c->msgs = xreallocarray(NULL, v->count > 0 ? v->count : 1,
				sizeof(*c->msgs));
	memcpy(c->msgs, v->msgs, v->count * sizeof(*c->msgs));
	if (v->strings != NULL) {
		c->strings = xmalloc(v->strings_len > 0 ? v->strings_len : 1);
		memcpy(c->strings, v->strings, v->strings_len);
		c->strings_len = v->strings_len;
		/* Names point into the block: same offsets in the copy. */
		for (uint32_t i = 0; i < c->count; i++) {
			struct store_msg *m = &c->msgs[i];

			if (m->basename != NULL)
				m->basename = c->strings +
					(m->basename - v->strings);
			if (m->path != NULL)
				m->path = c->strings + (m->path - v->strings);
		}
	}
	store_mailbox_set_view(mb, c);
}

struct store_msg *store_view_find_mut(struct store_mailbox *mb,
				      uint32_t uid)
{
	if (store_view_find(mb, uid) == NULL)
		return NULL;
	store_view_own(mb);
	return store_view_find(mb, uid);
}

/* ---- IDLE fan-out ---- */

struct store_follow {
	struct store_view *old;		/* referenced: can't be reused */
	struct index_mbox old_rec;	/* the leader's view_rec */
};

static bool view_rec_same(const struct index_mbox *a,
			  const struct index_mbox *b)
{
	return a->id == b->id && a->uidvalidity == b->uidvalidity &&
		a->uidnext == b->uidnext && a->count == b->count &&
		a->highestmodseq == b->highestmodseq;
}

struct store_follow *store_follow_begin(const struct store_mailbox *leader)
{
	struct store_follow *f;

	if (!leader->has_view || leader->view == NULL)
		return NULL;
	f = xcalloc(1, sizeof(*f));
	f->old = leader->view;
	f->old->refs++;
	f->old_rec = leader->view_rec;
	return f;
}

bool store_mailbox_follow(struct store_mailbox *mb,
			  const struct store_follow *follow,
			  const struct store_mailbox *leader)
{
	if (follow == NULL || !mb->has_view || mb->view != follow->old ||
	    !view_rec_same(&mb->view_rec, &follow->old_rec) ||
	    !leader->has_view || leader->view == NULL ||
	    leader->view == follow->old)
		return false;
	leader->view->refs++;
	store_mailbox_set_view(mb, leader->view);
	mb->view_rec = leader->view_rec;
	mb->rec = leader->rec;
	return true;
}

void store_follow_end(struct store_follow **_f)
{
	struct store_follow *f = *_f;

	if (f == NULL)
		return;
	*_f = NULL;
	store_view_unref(&f->old);
	free(f);
}
