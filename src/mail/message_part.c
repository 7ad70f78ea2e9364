/* message_part.c: freeing and the binary form of the part tree.
 *
 * Blob format (version 1): "HMP1", then the parts in pre-order, each:
 *   varint flags, varint children_count,
 *   varint header_offset, header physical, virtual, lines,
 *   varint body_offset, body physical, virtual, lines,
 *   str type, str subtype, varint field_mask, str per set field,
 * where varint is LEB128 (7 bits a byte, at most 10 bytes) and str is
 * varint (len + 1, 0 meaning NULL) followed by len bytes. The reader checks
 * every length against the remaining input, the part count and depth. */
#include "mail/message_part.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

#define BLOB_MAGIC "HMP1"
#define BLOB_MAGIC_LEN 4

void message_part_free(struct message_part **part)
{
	struct message_part *p = *part, *child, *next;
	unsigned int i;

	if (p == NULL)
		return;
	for (child = p->children; child != NULL; child = next) {
		next = child->next;
		message_part_free(&child);
	}
	for (i = 0; i < MESSAGE_FIELD_COUNT; i++)
		free(p->fields[i]);
	free(p->type);
	free(p->subtype);
	free(p);
	*part = NULL;
}

unsigned int message_part_count(const struct message_part *root)
{
	const struct message_part *c;
	unsigned int n = 1;

	for (c = root->children; c != NULL; c = c->next)
		n += message_part_count(c);
	return n;
}

/* ---- writer ---- */

struct blob {
	unsigned char *data;
	size_t len, cap;
};

static void blob_add(struct blob *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		while (b->cap - b->len < n)
			b->cap = b->cap == 0 ? 256 : b->cap * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void blob_varint(struct blob *b, uint64_t v)
{
	unsigned char buf[10];
	size_t n = 0;

	do {
		buf[n] = v & 0x7f;
		v >>= 7;
		if (v != 0)
			buf[n] |= 0x80;
		n++;
	} while (v != 0);
	blob_add(b, buf, n);
}

static void blob_str(struct blob *b, const char *s, size_t len)
{
	if (s == NULL) {
		blob_varint(b, 0);
		return;
	}
	blob_varint(b, (uint64_t)len + 1);
	blob_add(b, s, len);
}

static void blob_size(struct blob *b, const struct message_size *s)
{
	blob_varint(b, s->physical);
	blob_varint(b, s->virtual_size);
	blob_varint(b, s->lines);
}

static void serialize_part(struct blob *b, const struct message_part *p)
{
	const struct message_part *c;
	uint64_t mask = 0;
	unsigned int i;

	blob_varint(b, p->flags);
	blob_varint(b, p->children_count);
	blob_varint(b, p->header_offset);
	blob_size(b, &p->header);
	blob_varint(b, p->body_offset);
	blob_size(b, &p->body);
	blob_str(b, p->type, p->type == NULL ? 0 : strlen(p->type));
	blob_str(b, p->subtype, p->subtype == NULL ? 0 : strlen(p->subtype));
	for (i = 0; i < MESSAGE_FIELD_COUNT; i++) {
		if (p->fields[i] != NULL)
			mask |= 1ULL << i;
	}
	blob_varint(b, mask);
	for (i = 0; i < MESSAGE_FIELD_COUNT; i++) {
		if (p->fields[i] != NULL)
			blob_str(b, p->fields[i], p->field_lens[i]);
	}
	for (c = p->children; c != NULL; c = c->next)
		serialize_part(b, c);
}

void message_part_serialize(const struct message_part *root,
			    unsigned char **data_r, size_t *size_r)
{
	struct blob b = { NULL, 0, 0 };

	blob_add(&b, BLOB_MAGIC, BLOB_MAGIC_LEN);
	serialize_part(&b, root);
	*data_r = b.data;
	*size_r = b.len;
}

/* ---- reader ---- */

struct reader {
	const unsigned char *p, *end;
	unsigned int parts_left, max_depth;
	const char *error;
};

static int rd_varint(struct reader *r, uint64_t *v_r)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	for (;;) {
		if (r->p == r->end || shift > 63) {
			r->error = "truncated or overlong varint";
			return -1;
		}
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if ((*r->p++ & 0x80) == 0)
			break;
		shift += 7;
	}
	*v_r = v;
	return 0;
}

static int rd_str(struct reader *r, char **s_r, size_t *len_r)
{
	uint64_t n;

	*s_r = NULL;
	*len_r = 0;
	if (rd_varint(r, &n) < 0)
		return -1;
	if (n == 0)
		return 0;
	n--;
	if (n > (uint64_t)(r->end - r->p)) {
		r->error = "string past end of blob";
		return -1;
	}
	*s_r = xmalloc(n + 1);
	memcpy(*s_r, r->p, n);
	(*s_r)[n] = '\0';
	*len_r = n;
	r->p += n;
	return 0;
}

static int rd_size(struct reader *r, struct message_size *s)
{
	if (rd_varint(r, &s->physical) < 0 ||
	    rd_varint(r, &s->virtual_size) < 0 ||
	    rd_varint(r, &s->lines) < 0)
		return -1;
	return 0;
}

static int rd_fields(struct reader *r, struct message_part *p)
{
	uint64_t mask;
	unsigned int i;

	if (rd_varint(r, &mask) < 0)
		return -1;
	if ((mask >> MESSAGE_FIELD_COUNT) != 0) {
		r->error = "unknown field mask bits";
		return -1;
	}
	for (i = 0; i < MESSAGE_FIELD_COUNT; i++) {
		if ((mask & (1ULL << i)) == 0)
			continue;
		if (rd_str(r, &p->fields[i], &p->field_lens[i]) < 0)
			return -1;
		if (p->fields[i] == NULL) {
			r->error = "NULL field in mask";
			return -1;
		}
	}
	return 0;
}

static int rd_part(struct reader *r, struct message_part *parent,
		   unsigned int depth, struct message_part **part_r);

static int rd_children(struct reader *r, struct message_part *p,
		       uint64_t count, unsigned int depth)
{
	struct message_part **tail = &p->children;
	uint64_t i;

	if (count > r->parts_left) {
		r->error = "too many parts";
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (rd_part(r, p, depth + 1, tail) < 0)
			return -1;
		tail = &(*tail)->next;
	}
	p->children_count = (unsigned int)count;
	return 0;
}

static int rd_part(struct reader *r, struct message_part *parent,
		   unsigned int depth, struct message_part **part_r)
{
	struct message_part *p;
	uint64_t flags, count;
	size_t len;

	if (depth > r->max_depth || r->parts_left == 0) {
		r->error = "part tree too deep or too large";
		return -1;
	}
	r->parts_left--;
	p = xcalloc(1, sizeof(*p));
	p->parent = parent;
	*part_r = p;
	if (rd_varint(r, &flags) < 0 || rd_varint(r, &count) < 0 ||
	    rd_varint(r, &p->header_offset) < 0 ||
	    rd_size(r, &p->header) < 0 ||
	    rd_varint(r, &p->body_offset) < 0 || rd_size(r, &p->body) < 0 ||
	    rd_str(r, &p->type, &len) < 0 || rd_str(r, &p->subtype, &len) < 0 ||
	    rd_fields(r, p) < 0)
		return -1;
	if ((flags & ~(uint64_t)MESSAGE_PART_FLAGS_ALL) != 0) {
		r->error = "unknown part flags";
		return -1;
	}
	p->flags = (unsigned int)flags;
	return rd_children(r, p, count, depth);
}

int message_part_deserialize(const unsigned char *data, size_t size,
			     unsigned int max_parts, unsigned int max_depth,
			     struct message_part **root_r,
			     const char **error_r)
{
	struct reader r = { data, data + size, max_parts, max_depth, NULL };
	struct message_part *root = NULL;

	*root_r = NULL;
	if (size < BLOB_MAGIC_LEN || memcmp(data, BLOB_MAGIC,
					    BLOB_MAGIC_LEN) != 0) {
		*error_r = "bad magic";
		return -1;
	}
	r.p += BLOB_MAGIC_LEN;
	if (rd_part(&r, NULL, 0, &root) < 0 || r.p != r.end) {
		*error_r = r.error != NULL ? r.error : "trailing bytes";
		message_part_free(&root);
		return -1;
	}
	*root_r = root;
	return 0;
}
