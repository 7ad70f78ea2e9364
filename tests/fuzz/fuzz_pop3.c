/* fuzz_pop3.c: libFuzzer target for the pure POP3 code: the command line
 * parser, number parsing, the UIDL sanitizer and the RETR/TOP transform.
 * The transform is checked for chunk independence (the input is fed whole
 * and again split at a point taken from the input) and for never emitting
 * the terminator "CRLF.CRLF" before the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_private.h"

static unsigned char *xform_all(const uint8_t *in, size_t len, int top,
				size_t cut, size_t *out_len_r)
{
	struct pop3_xform x;
	unsigned char *out = malloc(2 * len + POP3_XFORM_FINISH_MAX);
	size_t o;

	pop3_xform_init(&x, top >= 0, top >= 0 ? (uint64_t)top : 0);
	o = pop3_xform_feed(&x, in, cut, out);
	o += pop3_xform_feed(&x, in + cut, len - cut, out + o);
	o += pop3_xform_finish(&x, out + o);
	*out_len_r = o;
	return out;
}

static void fuzz_xform(const uint8_t *data, size_t size)
{
	int top = size > 0 ? (int)(data[0] % 8) - 1 : -1;
	size_t cut = size > 1 ? data[1] % size : 0;
	size_t len1, len2;
	unsigned char *o1 = xform_all(data, size, top, 0, &len1);
	unsigned char *o2 = xform_all(data, size, top, cut, &len2);

	if (len1 != len2 || memcmp(o1, o2, len1) != 0)
		abort();
	if (len1 < 3 || memcmp(o1 + len1 - 3, ".\r\n", 3) != 0)
		abort();
	if (len1 > 3 && memcmp(o1, ".\r\n", 3) == 0)
		abort();
	for (size_t i = 0; i + 5 < len1; i++) {
		if (memcmp(o1 + i, "\r\n.\r\n", 5) == 0)
			abort();
	}
	free(o1);
	free(o2);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	char *name = malloc(size + 1);
	char buf[POP3_UIDL_BUF_SIZE];
	struct pop3_cmd cmd;
	const char *error, *id;

	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_parse_line(line, size, &cmd, &error) == 0) {
		uint32_t num;
		uint64_t n64;

		if (strlen(cmd.name) < 3 || strlen(cmd.name) > 4)
			abort();
		if (cmd.rest.data + cmd.rest.len != line + size)
			abort();
		for (unsigned i = 0; i < cmd.argc && i < POP3_MAX_ARGS; i++) {
			if (cmd.args[i].len == 0 ||
			    cmd.args[i].len > cmd.max_arg_len)
				abort();
			(void)pop3_parse_msgnum(&cmd.args[i], &num);
			(void)pop3_parse_u64(&cmd.args[i], &n64);
		}
	}
	memcpy(name, data, size);
	name[size] = '\0';
	id = pop3_uidl(name, buf);
	if (strlen(id) < 1 || strlen(id) > POP3_UIDL_MAX_LEN)
		abort();
	for (size_t i = 0; id[i] != '\0'; i++) {
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			abort();
	}
	free(name);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_xform(data, size);
	return 0;
}
