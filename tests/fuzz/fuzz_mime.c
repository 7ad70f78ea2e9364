/* fuzz_mime.c: MIME parser (fed in two chunks at a data-chosen point) ->
 * serialize -> deserialize -> serialize must round trip; BODYSTRUCTURE,
 * BODY and ENVELOPE of both trees must be identical; section lookups and
 * HEADER.FIELDS filtering must stay in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "mail/message_parser.h"

static void structure(const struct message_part *root, struct evbuffer *b)
{
	imap_bodystructure_write(b, root, true);
	imap_bodystructure_write(b, root, false);
	imap_envelope_write(b, root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "subject", "from" };
	struct message_parser_limits lim = { 200, 20, 1024 };
	struct message_parser *p = message_parser_create(&lim);
	struct message_part *root, *copy;
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
	struct imap_section_range r;
	unsigned char *blob, *blob2;
	size_t blob_len, blob2_len, split = size > 0 ? data[0] % (size + 1) : 0;
	unsigned int path[3] = { 1, 2, 1 }, k;
	const char *error;

	message_parser_feed(p, data, split);
	message_parser_feed(p, data + split, size - split);
	root = message_parser_finish(&p);
	message_part_serialize(root, &blob, &blob_len);
	if (message_part_deserialize(blob, blob_len, 1000, 100, &copy,
				     &error) < 0)
		abort();
	message_part_serialize(copy, &blob2, &blob2_len);
	if (blob_len != blob2_len || memcmp(blob, blob2, blob_len) != 0)
		abort();
	structure(root, a);
	structure(copy, b);
	if (evbuffer_get_length(a) != evbuffer_get_length(b) ||
	    memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1),
		   evbuffer_get_length(a)) != 0)
		abort();
	for (k = 0; k <= 3; k++) {
		enum imap_section_kind kind;

		for (kind = IMAP_SECTION_NONE; kind <= IMAP_SECTION_MIME;
		     kind++) {
			if (imap_section_lookup(root, path, k, kind, &r) < 0)
				continue;
			if (r.offset + r.physical_size > size ||
			    r.virtual_size < r.physical_size)
				abort();
			if (kind == IMAP_SECTION_HEADER_FIELDS)
				imap_header_fields_write(a,
					(const char *)data + r.offset,
					r.physical_size, names, 2, k == 1);
		}
	}
	evbuffer_free(a);
	evbuffer_free(b);
	free(blob);
	free(blob2);
	message_part_free(&root);
	message_part_free(&copy);
	return 0;
}
