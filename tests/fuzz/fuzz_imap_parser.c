/* fuzz_imap_parser.c: libFuzzer target for the IMAP command parser. The
 * first input byte picks settings and the literal policy; the rest is fed
 * once whole, once in pieces whose sizes come from the second byte, and
 * once through imap_parser_feed_evbuffer() in pieces cut at pseudo-random
 * points (seeded from the input) and, like a client that waits for the
 * "+" continuation, right after every literal announcement "}\r\n".
 * The three event transcripts must be equal (chunk independence), and
 * every parsed command is walked with the accessors, and FETCH items
 * (BODY[], BINARY[] ...) go through imap_fetch_parse. Also runs the
 * utilities (seqset, mUTF-7 round trip, dates) on the same input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "imap/imap_date.h"
#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_utf7.h"

struct transcript {
	uint64_t hash;
	unsigned events;
};

static void mix(struct transcript *t, uint64_t v)
{
	t->hash = (t->hash ^ v) * 0x100000001b3ULL;
}

static void walk(struct transcript *t, const struct imap_arg *args,
		 size_t count, unsigned depth)
{
	const struct imap_arg *list;
	const char *s;
	size_t i, len, n;

	for (i = 0; i < count; i++) {
		mix(t, args[i].type);
		mix(t, args[i].len);
		if (imap_arg_get_list(&args[i], &list, &n)) {
			walk(t, list, n, depth + 1);
			continue;
		}
		if (args[i].str != NULL)
			for (len = 0; len < args[i].len; len++)
				mix(t, (unsigned char)args[i].str[len]);
		(void)imap_arg_get_atom(&args[i], &s);
		(void)imap_arg_get_astring(&args[i], &s, &len);
		(void)imap_arg_get_nstring(&args[i], &s, &len);
		(void)imap_arg_get_list_mailbox(&args[i], &s, &len);
	}
}

/* "FETCH set items" / "UID FETCH set items": the fetch-att parser. */
static void fetch_items(const struct imap_command *cmd, struct transcript *t)
{
	struct imap_fetch_spec spec;
	const char *error;
	size_t skip = strcmp(cmd->name, "UID") == 0 ? 3 : 2;

	if ((skip == 2 && strcmp(cmd->name, "FETCH") != 0) ||
	    cmd->args_count <= skip ||
	    (skip == 3 && !imap_arg_atom_equals(&cmd->args[0], "FETCH")))
		return;
	mix(t, (uint64_t)(imap_fetch_parse(cmd->args + skip,
					   cmd->args_count - skip, skip == 3,
					   &spec, &error) + 2));
	mix(t, spec.count);
	imap_fetch_spec_free(&spec);
}

static int handle(struct imap_parser *p, int ret, unsigned pol,
		  struct transcript *t)
{
	const struct imap_command *cmd;
	const unsigned char *data;
	size_t size;
	bool last;

	/* chunk and NEED_MORE counts depend on the feeding */
	if (ret != IMAP_PARSE_LITERAL_DATA && ret != IMAP_PARSE_NEED_MORE) {
		t->events++;
		mix(t, (uint64_t)(ret + 10));
	}
	switch (ret) {
	case IMAP_PARSE_DONE:
		cmd = imap_parser_command(p);
		mix(t, strlen(cmd->tag));
		mix(t, strlen(cmd->name));
		walk(t, cmd->args, cmd->args_count, 0);
		fetch_items(cmd, t);
		break;
	case IMAP_PARSE_LITERAL:
		mix(t, imap_parser_literal_info(p)->size);
		(void)imap_parser_partial(p);
		if (pol % 3 == 0)
			imap_parser_abort_command(p);
		else if (imap_parser_literal_accept(p, pol % 3 == 1 ?
				IMAP_LITERAL_MEMORY : IMAP_LITERAL_STREAM) < 0)
			imap_parser_abort_command(p);
		break;
	case IMAP_PARSE_LITERAL_DATA:
		imap_parser_literal_chunk(p, &data, &size, &last);
		/* chunk sizes differ between runs: hash bytes only */
		for (; size > 0; size--, data++)
			mix(t, *data);
		if (last)
			mix(t, 0xffff);
		break;
	case IMAP_PARSE_ERROR:
		mix(t, imap_parser_error(p)->code);
		mix(t, imap_parser_error(p)->tag != NULL);
		if (imap_parser_error(p)->is_fatal)
			return -1;
		break;
	}
	return 0;
}

static struct imap_parser *parser_create(unsigned cfg)
{
	struct imap_parser_settings set;

	imap_parser_settings_default(&set, (cfg & 1) != 0);
	set.literal_minus = (cfg & 2) != 0;
	set.allow_nonsync = (cfg & 4) == 0;
	set.utf8 = (cfg & 8) != 0;
	if (cfg & 16) {
		set.max_line_length = 40;
		set.max_list_depth = 3;
		set.max_args = 6;
		set.max_literal_size = 8;
	}
	return imap_parser_create(&set);
}

static void run(const uint8_t *d, size_t len, unsigned cfg, size_t piece,
		struct transcript *t)
{
	struct imap_parser *p = parser_create(cfg);
	size_t pos = 0, end, used;
	int ret;

	memset(t, 0, sizeof(*t));
	while (pos < len) {
		end = len - pos > piece ? pos + piece : len;
		for (;;) {
			ret = imap_parser_feed(p, d + pos, end - pos, &used);
			pos += used;
			if (handle(p, ret, cfg >> 5, t) < 0)
				goto out;
			if (ret == IMAP_PARSE_NEED_MORE)
				break;
		}
	}
	mix(t, imap_parser_is_idle(p));
out:
	imap_parser_destroy(&p);
}

/* Next piece: 1 byte a quarter of the time, else 1..64 (sometimes up to
 * 4096), never past the end of a literal announcement. */
static size_t next_piece(uint32_t *seed, const uint8_t *d, size_t left)
{
	const uint8_t *ann;
	size_t n;

	*seed ^= *seed << 13;
	*seed ^= *seed >> 17;
	*seed ^= *seed << 5;
	n = (*seed & 3) == 0 ? 1 : (*seed & 12) == 0 ?
		1 + (*seed >> 4) % 4096 : 1 + (*seed >> 4) % 64;
	if (n > left)
		n = left;
	ann = memmem(d, n, "}\r\n", 3);
	if (ann != NULL)
		n = (size_t)(ann - d) + 3;
	return n;
}

static void run_evbuffer(const uint8_t *d, size_t len, unsigned cfg,
			 uint32_t seed, struct transcript *t)
{
	struct imap_parser *p = parser_create(cfg);
	struct evbuffer *in = evbuffer_new();
	size_t pos = 0, n;
	int ret;

	memset(t, 0, sizeof(*t));
	seed |= 1;
	while (pos < len) {
		n = next_piece(&seed, d + pos, len - pos);
		evbuffer_add(in, d + pos, n);
		pos += n;
		do {
			ret = imap_parser_feed_evbuffer(p, in);
			if (handle(p, ret, cfg >> 5, t) < 0)
				goto out;
		} while (ret != IMAP_PARSE_NEED_MORE);
		if (evbuffer_get_length(in) != 0)
			abort();
	}
	mix(t, imap_parser_is_idle(p));
out:
	imap_parser_destroy(&p);
	evbuffer_free(in);
}

static void fuzz_utils(const uint8_t *d, size_t len)
{
	struct imap_seqset set;
	bool is_searchres;
	const char *error;
	char *enc, *dec;
	time_t t;
	int tz;

	if (imap_seqset_parse((const char *)d, len, 1000, &set,
			      &is_searchres, &error) == 0) {
		if (set.count > 0 && !imap_seqset_contains(&set,
						set.ranges[0].first))
			abort();
		imap_seqset_free(&set);
	}
	if (imap_utf7_decode((const char *)d, len, &dec) == 0) {
		if (imap_utf7_encode(dec, strlen(dec), &enc) < 0 ||
		    strlen(enc) != len || memcmp(enc, d, len) != 0)
			abort();
		free(enc);
		free(dec);
	}
	if (imap_utf7_encode((const char *)d, len, &enc) == 0) {
		if (imap_utf7_decode(enc, strlen(enc), &dec) < 0 ||
		    strlen(dec) != len || memcmp(dec, d, len) != 0)
			abort();
		free(enc);
		free(dec);
	}
	(void)imap_date_parse((const char *)d, len, &t);
	if (imap_datetime_parse((const char *)d, len, &t, &tz) == 0) {
		char buf[IMAP_DATETIME_MAX];

		imap_datetime_format(t, tz, buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript whole, pieces, random;
	uint32_t seed = (uint32_t)size * 2654435761U;

	if (size < 2)
		return 0;
	for (size_t i = 0; i < size && i < 16; i++)
		seed = seed * 31 + data[i];
	run(data + 2, size - 2, data[0], size, &whole);
	run(data + 2, size - 2, data[0], 1 + data[1] % 7, &pieces);
	run_evbuffer(data + 2, size - 2, data[0], seed, &random);
	if (whole.hash != pieces.hash || whole.events != pieces.events ||
	    whole.hash != random.hash || whole.events != random.events)
		abort();
	fuzz_utils(data + 2, size - 2);
	return 0;
}
