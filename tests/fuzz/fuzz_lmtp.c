/* fuzz_lmtp.c: libFuzzer target for the LMTP command/path parser, the
 * DATA decoder and the Message-ID scanner. Besides memory errors it
 * checks that decoding in one piece and in two pieces (split where the
 * first input byte says) give the same output, end and remainder.
 * Dictionary-worthy tokens: "FROM:<", "TO:<", "SIZE=", "BODY=", "\r\n.\r\n",
 * "Message-ID:". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp/lmtp_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_parser(const char *line, size_t len)
{
	struct lmtp_path path;
	const char *args;
	size_t args_len;

	(void)lmtp_cmd_parse(line, len, &args, &args_len);
	if (args < line || args + args_len > line + len)
		abort();
	for (int is_mail = 0; is_mail < 2; is_mail++) {
		if (lmtp_path_parse(args, args_len, is_mail, &path) !=
		    LMTP_PARSE_OK)
			continue;
		if (strlen(path.addr) > LMTP_PATH_MAX ||
		    strlen(path.user) > LMTP_PATH_MAX ||
		    path.params_count > LMTP_PARAMS_MAX)
			abort();
		if (strpbrk(path.addr, "\r\n") != NULL)
			abort();
	}
}

struct decoded {
	unsigned char *out;
	size_t out_len, consumed;
	int done;
};

static void decode_part(struct lmtp_data_decoder *dec, const uint8_t *in,
			size_t len, struct decoded *res)
{
	size_t o, c;

	if (res->done)
		return;
	res->done = lmtp_data_decode(dec, in, len, res->out + res->out_len,
				     &o, &c);
	if (o > len + 1 || c > len || (!res->done && c != len))
		abort();
	res->out_len += o;
	res->consumed += c;
}

static void fuzz_decoder(const uint8_t *in, size_t len, size_t split)
{
	struct lmtp_data_decoder d1 = { LMTP_DATA_LINE_START };
	struct lmtp_data_decoder d2 = { LMTP_DATA_LINE_START };
	struct decoded a = { malloc(len + 2), 0, 0, 0 };
	struct decoded b = { malloc(len + 2), 0, 0, 0 };

	decode_part(&d1, in, len, &a);
	decode_part(&d2, in, split, &b);
	decode_part(&d2, in + split, len - split, &b);
	if (a.done != b.done || a.out_len != b.out_len ||
	    a.consumed != b.consumed || a.out_len > len ||
	    memcmp(a.out, b.out, a.out_len) != 0)
		abort();
	free(a.out);
	free(b.out);
}

static void fuzz_hdr(const uint8_t *in, size_t len, size_t split)
{
	static struct lmtp_hdr_scan s1, s2;

	lmtp_hdr_scan_init(&s1);
	lmtp_hdr_scan_init(&s2);
	lmtp_hdr_scan_feed(&s1, in, len);
	lmtp_hdr_scan_feed(&s2, in, split);
	lmtp_hdr_scan_feed(&s2, in + split, len - split);
	lmtp_hdr_scan_finish(&s1);
	lmtp_hdr_scan_finish(&s2);
	if (strcmp(s1.msgid, s2.msgid) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;
	size_t split;

	if (size == 0)
		return 0;
	split = data[0] % size;
	data++;
	size--;
	/* exact-size copy: reads past the end are caught */
	line = malloc(size == 0 ? 1 : size);
	memcpy(line, data, size);
	fuzz_parser(line, size);
	fuzz_decoder((const uint8_t *)line, size, split > size ? size : split);
	fuzz_hdr((const uint8_t *)line, size, split > size ? size : split);
	free(line);
	return 0;
}
