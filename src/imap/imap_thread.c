/* imap_thread.c: RFC 5256 3 threading (see imap_thread.h). Sections:
 * Message-ID parsing, the node tree (parallel arrays of indices, NONE =
 * no node), a string hash table (Message-IDs, then base subjects), the
 * REFERENCES steps 1-6, ORDEREDSUBJECT, and the reply writer. Tree walks
 * use an explicit pre-order list, so deep trees need no stack. */
#include "imap/imap_thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "mail/rfc5322.h"

#define NONE UINT32_MAX

/* ---- Message-IDs ---- */

void imap_thread_msg_free(struct imap_thread_msg *msg)
{
	for (size_t i = 0; i < msg->refs_count; i++)
		free(msg->refs[i]);
	free(msg->refs);
	free(msg->msgid);
	free(msg->subject);
	msg->refs = NULL;
	msg->refs_count = 0;
	msg->msgid = msg->subject = NULL;
}

/* RFC 5256 3: <"a b"@x> and <a b@x> are the same Message ID: quotes and
 * quoting backslashes go. NULL when too long. */
static char *msgid_normalize(char *id)
{
	size_t n = 0;

	for (size_t i = 0; id[i] != '\0'; i++) {
		if (id[i] == '"')
			continue;
		if (id[i] == '\\' && id[i + 1] != '\0')
			i++;
		id[n++] = id[i];
	}
	id[n] = '\0';
	if (n > IMAP_THREAD_MSGID_MAX) {
		free(id);
		return NULL;
	}
	return id;
}

static char *msgid_first(const char *value, size_t len)
{
	size_t pos = 0;
	char *id;

	if (value == NULL || rfc5322_msgid_next(value, len, &pos, &id) < 0)
		return NULL;
	return msgid_normalize(id);
}

/* All ids of a References value, the last IMAP_THREAD_REFS_MAX kept. */
static void refs_parse(struct imap_thread_msg *msg, const char *value,
		       size_t len)
{
	size_t pos = 0, cap = 0;
	char *id;

	while (rfc5322_msgid_next(value, len, &pos, &id) == 0) {
		if ((id = msgid_normalize(id)) == NULL)
			continue;
		if (msg->refs_count == IMAP_THREAD_REFS_MAX) {
			free(msg->refs[0]);
			memmove(msg->refs, msg->refs + 1,
				(msg->refs_count - 1) * sizeof(char *));
			msg->refs_count--;
		}
		if (msg->refs_count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			msg->refs = xreallocarray(msg->refs, cap,
						  sizeof(char *));
		}
		msg->refs[msg->refs_count++] = id;
	}
}

void imap_thread_msg_set_ids(struct imap_thread_msg *msg,
			     const char *message_id, size_t message_id_len,
			     const char *references, size_t references_len,
			     const char *in_reply_to, size_t in_reply_to_len)
{
	char *id;

	msg->msgid = msgid_first(message_id, message_id_len);
	if (references != NULL)
		refs_parse(msg, references, references_len);
	/* RFC 5256 3: no valid id in References: the first valid one of
	 * In-Reply-To is the only reference */
	if (msg->refs_count == 0 &&
	    (id = msgid_first(in_reply_to, in_reply_to_len)) != NULL) {
		msg->refs = xmalloc(sizeof(char *));
		msg->refs[0] = id;
		msg->refs_count = 1;
	}
}

/* ---- the tree ---- */

struct node {
	uint32_t parent, first_child;
	uint32_t prev, next;	/* siblings */
	uint32_t msg;		/* index into msgs, NONE for a dummy */
};

struct tree {
	const struct imap_thread_msg *msgs;
	struct node *nodes;
	size_t count, cap;
	uint32_t root;
};

static uint32_t node_new(struct tree *t, uint32_t msg)
{
	struct node *n;

	if (t->count == t->cap) {
		t->cap = t->cap == 0 ? 64 : t->cap * 2;
		t->nodes = xreallocarray(t->nodes, t->cap, sizeof(*n));
	}
	n = &t->nodes[t->count];
	n->parent = n->first_child = n->prev = n->next = NONE;
	n->msg = msg;
	return (uint32_t)t->count++;
}

static bool is_dummy(const struct tree *t, uint32_t n)
{
	return t->nodes[n].msg == NONE;
}

static void node_unlink(struct tree *t, uint32_t n)
{
	struct node *nn = &t->nodes[n];

	if (nn->parent == NONE)
		return;
	if (nn->prev != NONE)
		t->nodes[nn->prev].next = nn->next;
	else
		t->nodes[nn->parent].first_child = nn->next;
	if (nn->next != NONE)
		t->nodes[nn->next].prev = nn->prev;
	nn->parent = nn->prev = nn->next = NONE;
}

/* Makes n the first child of p (the order is fixed by the sorts). */
static void node_add_child(struct tree *t, uint32_t p, uint32_t n)
{
	uint32_t first = t->nodes[p].first_child;

	node_unlink(t, n);
	t->nodes[n].parent = p;
	t->nodes[n].next = first;
	if (first != NONE)
		t->nodes[first].prev = n;
	t->nodes[p].first_child = n;
}

/* Makes kids[0..n) the children of p, in this order. */
static void node_set_children(struct tree *t, uint32_t p,
			      const uint32_t *kids, size_t n)
{
	uint32_t prev = NONE;

	t->nodes[p].first_child = n > 0 ? kids[0] : NONE;
	for (size_t i = 0; i < n; i++) {
		struct node *kn = &t->nodes[kids[i]];

		kn->parent = p;
		kn->prev = prev;
		kn->next = i + 1 < n ? kids[i + 1] : NONE;
		prev = kids[i];
	}
}

/* Would making p the parent of c make a loop (p == c or p below c)? */
static bool would_loop(const struct tree *t, uint32_t p, uint32_t c)
{
	if (p == c)
		return true;
	if (t->nodes[c].first_child == NONE)
		return false;	/* nothing below c */
	for (; p != NONE; p = t->nodes[p].parent)
		if (p == c)
			return true;
	return false;
}

/* All nodes below and including top, parents before children. */
static uint32_t *preorder(const struct tree *t, uint32_t top, size_t *n_r)
{
	uint32_t *order = xreallocarray(NULL, t->count, sizeof(uint32_t));
	size_t n = 0;

	order[n++] = top;
	/* order[] doubles as the queue: breadth first is a fine
	 * parents-first order */
	for (size_t i = 0; i < n; i++)
		for (uint32_t c = t->nodes[order[i]].first_child; c != NONE;
		     c = t->nodes[c].next)
			order[n++] = c;
	*n_r = n;
	return order;
}

/* ---- string table (open addressing) ---- */

struct strtab {
	const char **keys;
	uint32_t *vals;
	size_t cap, count;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t strtab_slot(const struct strtab *st, const char *key)
{
	size_t i = (size_t)str_hash(key) & (st->cap - 1);

	while (st->keys[i] != NULL && strcmp(st->keys[i], key) != 0)
		i = (i + 1) & (st->cap - 1);
	return i;
}

static void strtab_grow(struct strtab *st)
{
	struct strtab old = *st;

	st->cap = old.cap == 0 ? 64 : old.cap * 2;
	st->keys = xcalloc(st->cap, sizeof(*st->keys));
	st->vals = xcalloc(st->cap, sizeof(*st->vals));
	for (size_t i = 0; i < old.cap; i++) {
		if (old.keys[i] != NULL) {
			size_t j = strtab_slot(st, old.keys[i]);

			st->keys[j] = old.keys[i];
			st->vals[j] = old.vals[i];
		}
	}
	free(old.keys);
	free(old.vals);
}

/* The value of key, or NONE. */
static uint32_t strtab_get(const struct strtab *st, const char *key)
{
	size_t i;

	if (st->cap == 0)
		return NONE;
	i = strtab_slot(st, key);
	return st->keys[i] != NULL ? st->vals[i] : NONE;
}

/* Sets key (kept by pointer: it must outlive the table). */
static void strtab_set(struct strtab *st, const char *key, uint32_t val)
{
	size_t i;

	if ((st->count + 1) * 2 > st->cap)
		strtab_grow(st);
	i = strtab_slot(st, key);
	if (st->keys[i] == NULL) {
		st->keys[i] = key;
		st->count++;
	}
	st->vals[i] = val;
}

static void strtab_free(struct strtab *st)
{
	free(st->keys);
	free(st->vals);
	memset(st, 0, sizeof(*st));
}

/* ---- sorting by sent date ---- */

/* A node's date: its message's, or a dummy's first child's (RFC 5256
 * 3 REFERENCES steps 4 and 6). */
static const struct imap_thread_msg *node_date_msg(const struct tree *t,
						   uint32_t n)
{
	while (n != NONE && is_dummy(t, n))
		n = t->nodes[n].first_child;
	return n == NONE ? NULL : &t->msgs[t->nodes[n].msg];
}

static int cmp_nodes(const void *pa, const void *pb, void *ctx)
{
	const struct tree *t = ctx;
	const struct imap_thread_msg *a, *b;

	a = node_date_msg(t, *(const uint32_t *)pa);
	b = node_date_msg(t, *(const uint32_t *)pb);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	/* RFC 5256 2.2: then by sequence number */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts p's children by date; scratch has room for all nodes. */
static void sort_children(struct tree *t, uint32_t p, uint32_t *scratch)
{
	size_t n = 0;

	for (uint32_t c = t->nodes[p].first_child; c != NONE;
	     c = t->nodes[c].next)
		scratch[n++] = c;
	if (n < 2)
		return;
	qsort_r(scratch, n, sizeof(*scratch), cmp_nodes, t);
	node_set_children(t, p, scratch, n);
}

/* Step 6 (and 4 for the top level): every sibling set, the deepest
 * first. */
static void sort_all(struct tree *t)
{
	size_t n;
	uint32_t *order = preorder(t, t->root, &n);
	uint32_t *scratch = xreallocarray(NULL, t->count, sizeof(uint32_t));

	for (size_t i = n; i-- > 0;)
		sort_children(t, order[i], scratch);
	free(scratch);
	free(order);
}

/* ---- REFERENCES ---- */

/* The node of id: a dummy made on first sight (step 1A). */
static uint32_t id_node(struct tree *t, struct strtab *ids, const char *id)
{
	uint32_t n = strtab_get(ids, id);

	if (n == NONE) {
		n = node_new(t, NONE);
		strtab_set(ids, id, n);
	}
	return n;
}

/* Step 1A: the message's node, claiming a dummy made for its id; a
 * missing or duplicate id gets a node no reference can reach. */
static uint32_t msg_node(struct tree *t, struct strtab *ids, uint32_t i)
{
	const char *id = t->msgs[i].msgid;
	uint32_t n;

	if (id == NULL)
		return node_new(t, i);
	n = id_node(t, ids, id);
	if (!is_dummy(t, n))
		return node_new(t, i);	/* duplicate: a unique id */
	t->nodes[n].msg = i;
	return n;
}

static void link_refs(struct tree *t, struct strtab *ids, uint32_t i)
{
	const struct imap_thread_msg *m = &t->msgs[i];
	uint32_t self = msg_node(t, ids, i), prev = NONE, cur;

	for (size_t r = 0; r < m->refs_count; r++) {
		cur = id_node(t, ids, m->refs[r]);
		/* step 1A: keep an existing parent; no loops */
		if (prev != NONE && t->nodes[cur].parent == NONE &&
		    !would_loop(t, prev, cur))
			node_add_child(t, prev, cur);
		prev = cur;
	}
	/* step 1B: the last reference is the parent, replacing any
	 * parent set from another message's References */
	node_unlink(t, self);
	if (prev != NONE && !would_loop(t, prev, self))
		node_add_child(t, prev, self);
}

/* Step 3 for node p, whose children are already pruned (so a dummy's
 * children are all messages). */
static void prune_children(struct tree *t, uint32_t p, uint32_t *kids)
{
	bool is_root = p == t->root;
	size_t n = 0;

	for (uint32_t c = t->nodes[p].first_child; c != NONE;
	     c = t->nodes[c].next) {
		struct node *cn = &t->nodes[c];
		uint32_t gc = cn->first_child;

		/* RFC 5256 3 step 3: no promotion to the root unless
		 * there is only one child */
		if (!is_dummy(t, c) ||
		    (is_root && gc != NONE && t->nodes[gc].next != NONE)) {
			kids[n++] = c;
			continue;
		}
		/* a dummy: deleted, its children take its place */
		for (; gc != NONE; gc = t->nodes[gc].next)
			kids[n++] = gc;
		cn->first_child = NONE;
	}
	node_set_children(t, p, kids, n);
}

static void prune(struct tree *t)
{
	size_t n;
	uint32_t *order = preorder(t, t->root, &n);
	uint32_t *kids = xreallocarray(NULL, t->count, sizeof(uint32_t));

	for (size_t i = n; i-- > 0;)
		prune_children(t, order[i], kids);
	free(kids);
	free(order);
}

/* The thread subject of a top-level node (step 5.B.i). */
static const struct imap_thread_msg *thread_msg(const struct tree *t,
						uint32_t n)
{
	if (is_dummy(t, n))
		n = t->nodes[n].first_child;
	return n == NONE || is_dummy(t, n) ? NULL : &t->msgs[t->nodes[n].msg];
}

static const char *thread_subject(const struct tree *t, uint32_t n)
{
	const struct imap_thread_msg *m = thread_msg(t, n);

	return m == NULL || m->subject == NULL || *m->subject == '\0' ?
		NULL : m->subject;
}

static bool node_is_reply(const struct tree *t, uint32_t n)
{
	return !is_dummy(t, n) && t->msgs[t->nodes[n].msg].is_reply;
}

/* Step 5.B: one node per subject. */
static void subjects_fill(struct tree *t, struct strtab *subj)
{
	for (uint32_t c = t->nodes[t->root].first_child; c != NONE;
	     c = t->nodes[c].next) {
		const char *s = thread_subject(t, c);
		uint32_t old;

		if (s == NULL)
			continue;
		old = strtab_get(subj, s);
		if (old == NONE ||
		    (!is_dummy(t, old) &&
		     (is_dummy(t, c) ||
		      (node_is_reply(t, old) && !node_is_reply(t, c)))))
			strtab_set(subj, s, c);
	}
}

/* Step 5.C for top-level node c and the table's node old. */
static void subject_merge(struct tree *t, struct strtab *subj,
			  const char *s, uint32_t c, uint32_t old)
{
	uint32_t d, gc;

	if (is_dummy(t, c) && is_dummy(t, old)) {
		while ((gc = t->nodes[c].first_child) != NONE)
			node_add_child(t, old, gc);
		node_unlink(t, c);
	} else if (is_dummy(t, old) ||
		   (node_is_reply(t, c) && !node_is_reply(t, old))) {
		node_add_child(t, old, c);
	} else {
		/* a new dummy in old's place, holding both */
		d = node_new(t, NONE);
		t->nodes[d].parent = t->root;
		t->nodes[d].prev = old;
		t->nodes[d].next = t->nodes[old].next;
		if (t->nodes[old].next != NONE)
			t->nodes[t->nodes[old].next].prev = d;
		t->nodes[old].next = d;
		node_add_child(t, d, old);
		node_add_child(t, d, c);
		strtab_set(subj, s, d);
	}
}

static void subjects_merge(struct tree *t)
{
	struct strtab subj = { NULL, NULL, 0, 0 };
	uint32_t c, next;

	subjects_fill(t, &subj);
	for (c = t->nodes[t->root].first_child; c != NONE; c = next) {
		const char *s = thread_subject(t, c);
		uint32_t old;

		next = t->nodes[c].next;
		if (s == NULL || (old = strtab_get(&subj, s)) == c)
			continue;
		subject_merge(t, &subj, s, c, old);
	}
	strtab_free(&subj);
}

static void thread_references(struct tree *t, size_t count)
{
	struct strtab ids = { NULL, NULL, 0, 0 };

	for (uint32_t i = 0; i < count; i++)
		link_refs(t, &ids, i);
	strtab_free(&ids);
	/* step 2: the parentless under the root */
	t->root = node_new(t, NONE);
	for (uint32_t n = 0; n < t->root; n++)
		if (t->nodes[n].parent == NONE)
			node_add_child(t, t->root, n);
	prune(t);
	/* step 4: dummies' children first, then the top level */
	sort_all(t);
	subjects_merge(t);
	sort_all(t);
}

/* ---- ORDEREDSUBJECT ---- */

static int cmp_ordered(const void *pa, const void *pb, void *ctx)
{
	const struct imap_thread_msg *msgs = ctx;
	const struct imap_thread_msg *a = &msgs[*(const uint32_t *)pa];
	const struct imap_thread_msg *b = &msgs[*(const uint32_t *)pb];
	int r = strcmp(a->subject != NULL ? a->subject : "",
		       b->subject != NULL ? b->subject : "");

	if (r != 0)
		return r;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* RFC 5256 3 ORDEREDSUBJECT: by base subject and sent date; each run of
 * one subject is a thread, its first message the parent of the rest;
 * threads in the order of their first message's date. */
static void thread_orderedsubject(struct tree *t, size_t count)
{
	uint32_t *idx = xreallocarray(NULL, count, sizeof(uint32_t));
	uint32_t head = NONE;
	const char *prev = NULL;

	for (uint32_t i = 0; i < count; i++)
		idx[i] = i;
	qsort_r(idx, count, sizeof(*idx), cmp_ordered, (void *)t->msgs);
	t->root = node_new(t, NONE);
	for (size_t i = 0; i < count; i++) {
		const char *s = t->msgs[idx[i]].subject;
		uint32_t n = node_new(t, idx[i]);

		if (s == NULL)
			s = "";
		if (prev != NULL && strcmp(prev, s) == 0) {
			node_add_child(t, head, n);
		} else {
			head = n;
			node_add_child(t, t->root, n);
		}
		prev = s;
	}
	free(idx);
	sort_all(t);
}

/* ---- the reply ---- */

/* Writes "(" and the members from n down a single-child chain; returns
 * the node whose children (2 or more) come next, or NONE when the list
 * was closed. */
static uint32_t write_open(const struct tree *t, uint32_t n,
			   struct strbuf *out)
{
	char num[16];
	bool any = false;
	uint32_t number;

	strbuf_add(out, "(", 1);
	for (;;) {
		uint32_t c = t->nodes[n].first_child;

		if (!is_dummy(t, n)) {
			int len;

			number = t->msgs[t->nodes[n].msg].number;
			len = snprintf(num, sizeof(num), any ? " %u" : "%u",
				       number);
			strbuf_add(out, num, (size_t)len);
			any = true;
		}
		if (c == NONE) {
			strbuf_add(out, ")", 1);
			return NONE;
		}
		if (t->nodes[c].next != NONE) {
			if (any)
				strbuf_add(out, " ", 1);
			return n;
		}
		n = c;	/* one child: it follows in this list */
	}
}

/* thread-list per top-level node: an explicit stack of the nodes whose
 * children are being written (cursor = the next child). */
static void write_threads(const struct tree *t, struct strbuf *out)
{
	uint32_t *stack = xreallocarray(NULL, t->count + 1, sizeof(uint32_t));
	size_t depth = 0;

	stack[depth++] = t->nodes[t->root].first_child;
	if (stack[0] != NONE)
		strbuf_add(out, " ", 1);
	while (depth > 0) {
		uint32_t c = stack[depth - 1], branch;

		if (c == NONE) {
			if (--depth > 0)
				strbuf_add(out, ")", 1);
			continue;
		}
		stack[depth - 1] = t->nodes[c].next;
		branch = write_open(t, c, out);
		if (branch != NONE)
			stack[depth++] = t->nodes[branch].first_child;
	}
	free(stack);
}

void imap_thread_build(enum imap_thread_alg alg,
		       const struct imap_thread_msg *msgs, size_t count,
		       struct strbuf *out)
{
	struct tree t = { msgs, NULL, 0, 0, NONE };

	if (count == 0)
		return;
	if (alg == IMAP_THREAD_REFERENCES)
		thread_references(&t, count);
	else
		thread_orderedsubject(&t, count);
	write_threads(&t, out);
	free(t.nodes);
}
