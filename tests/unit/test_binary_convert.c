/* test_binary_convert.c: src/mail/binary_convert.c (binary MIME parts ->
 * base64 for literal8 APPEND). Table rows {message, expected copy or NULL
 * for "unchanged"}; each row runs at every read chunk size through
 * binary_convert_fd (memfd input) and fed at every split point through the
 * spool API, whose "unchanged" result must give the original bytes. */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/binary_convert.h"

struct bc_row {
	const char *name;
	const char *in;
	size_t in_len;
	const char *out;	/* NULL: unchanged */
	size_t out_len;
};

static const struct bc_row bc_rows[] = {
	{ "single binary",
		"Subject: x\r\nContent-Type: application/octet-stream\r\nContent-Tra"
		"nsfer-Encoding: binary\r\n\r\na\000b\rc\r\nd", 97,
		"Subject: x\r\nContent-Type: application/octet-stream\r\nContent-Tra"
		"nsfer-Encoding: base64\r\n\r\nYQBiDWMNCmQ=\r\n", 103 },
	{ "no cte nul",
		"Subject: y\r\n\r\nhello\000world\r\n", 27,
		"Subject: y\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8Ad29y"
		"bGQNCg==\r\n", 71 },
	{ "bare cr lf",
		"Subject: z\n\nx\ry\n", 16,
		"Subject: z\nContent-Transfer-Encoding: base64\n\neA15Cg==\r\n"
		"", 56 },
	{ "multipart",
		"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n"
		"\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
		"world\r\n\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: binary\r\nContent-Disposition: attachmen"
		"t\r\n\r\n\000\001\002\003\004\005\006\007\010\011\n\013\014\r\016\017"
		"\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037 !\""
		"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcd"
		"efghijklmnopqrstuvwxyz{|}~\177\200\201\202\203\204\205\206\207\210\211"
		"\212\213\214\215\216\217\220\221\222\223\224\225\226\227\230\231\232"
		"\233\234\235\236\237\240\241\242\243\244\245\246\247\250\251\252\253"
		"\254\255\256\257\260\261\262\263\264\265\266\267\270\271\272\273\274"
		"\275\276\277\300\301\302\303\304\305\306\307\310\311\312\313\314\315"
		"\316\317\320\321\322\323\324\325\326\327\330\331\332\333\334\335\336"
		"\337\340\341\342\343\344\345\346\347\350\351\352\353\354\355\356\357"
		"\360\361\362\363\364\365\366\367\370\371\372\373\374\375\376\377\000"
		"\001\002\003\004\005\006\007\010\011\n\013\014\r\016\017\020\021\022"
		"\023\024\025\026\027\030\031\032\033\034\035\036\037 !\"#$%&'()*+,-"
		"./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmno"
		"pqrstuvwxyz{|}~\177\200\201\202\203\204\205\206\207\210\211\212\213"
		"\214\215\216\217\220\221\222\223\224\225\226\227\230\231\232\233\234"
		"\235\236\237\240\241\242\243\244\245\246\247\250\251\252\253\254\255"
		"\256\257\260\261\262\263\264\265\266\267\270\271\272\273\274\275\276"
		"\277\300\301\302\303\304\305\306\307\310\311\312\313\314\315\316\317"
		"\320\321\322\323\324\325\326\327\330\331\332\333\334\335\336\337\340"
		"\341\342\343\344\345\346\347\350\351\352\353\354\355\356\357\360\361"
		"\362\363\364\365\366\367\370\371\372\373\374\375\376\377\r\r\n"
		"\000\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-T"
		"ransfer-Encoding: 8bit\r\n\r\n<p>\303\251</p>\r\n\r\n--XX--\r\n"
		"epilogue\r\n", 865,
		"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n"
		"\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
		"world\r\n\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachmen"
		"t\r\n\r\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKi"
		"ssLS4vMDEyMzQ1Njc4\r\nOTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZW"
		"ltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\ncnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJ"
		"iouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq\r\nq6ytrq+wsbKztLW2t7i"
		"5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj\r\n"
		"5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8QERITFBU"
		"WFxgZGhsc\r\nHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDRE"
		"VGR0hJSktMTU5PUFFSU1RV\r\nVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzd"
		"HV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2O\r\nj5CRkpOUlZaXmJmam5ydnp+goaKj"
		"pKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbH\r\nyMnKy8zNzs/Q0dL"
		"T1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8N\r\n"
		"DQoA\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-T"
		"ransfer-Encoding: 8bit\r\n\r\n<p>\303\251</p>\r\n\r\n--XX--\r\n"
		"epilogue\r\n", 1055 },
	{ "nested rfc822",
		"Subject: outer\r\nContent-Type: multipart/mixed; boundary=out\r\n"
		"\r\n--out\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
		"Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-T"
		"ype: text/plain\r\n\r\ntext\r\n--in\r\nContent-Type: image/png\r\n"
		"Content-Transfer-Encoding: BINARY\r\n\r\n\000\000\000\r\r\n--in--\r"
		"\n\r\n--out--\r\n", 297,
		"Subject: outer\r\nContent-Type: multipart/mixed; boundary=out\r\n"
		"\r\n--out\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
		"Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-T"
		"ype: text/plain\r\n\r\ntext\r\n--in\r\nContent-Type: image/png\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nAAAADQ==\r\n--in--\r\n"
		"\r\n--out--\r\n", 301 },
	{ "folded cte",
		"Content-Transfer-Encoding:\r\n   binary\r\nX-A: b\r\n\r\n\001\002\000"
		"", 52,
		"Content-Transfer-Encoding: base64\r\nX-A: b\r\n\r\nAQIA\r\n", 51 },
	{ "odd case dup",
		"content-transfer-ENCODING :  BiNaRy (raw)\r\nX: 1\r\nContent-Transf"
		"er-Encoding: 7bit\r\n\r\nabc", 87,
		"Content-Transfer-Encoding: base64\r\nX: 1\r\n\r\nYWJj\r\n", 49 },
	{ "long body",
		"Content-Transfer-Encoding: binary\r\n\r\n\000\007\016\025\034#*18?F"
		"MT[bipw~\205\214\223\232\241\250\257\266\275\304\313\322\331\340\347"
		"\356\365\374\003\n\021\030\037&-4;BIPW^elsz\201\210\217\226\235\244"
		"\253\262\271\300\307\316\325\334\343\352\361\370\377\006\r\024\033\""
		")07>ELSZahov}\204\213\222\231\240\247\256\265\274\303\312\321\330\337"
		"\346\355\364\373\002\011\020\027\036%,3:AHOV]dkry\200\207\216\225\234"
		"\243\252\261\270\277\306\315\324\333\342\351\360\367\376\005\014\023"
		"\032!(/6=DKRY`gnu|\203\212\221\230\237\246\255\264\273\302\311\320\327"
		"\336\345\354\363\372\001\010\017\026\035$+29@GNU\\cjqx\177\206\215\224"
		"\233\242\251\260\267\276\305\314\323\332\341\350\357\366\375\004\013"
		"\022\031 '.5<CJQX_fmt{\202\211\220\227\236\245\254\263\272\301\310\317"
		"\326\335\344\353\362\371\000\007\016\025\034#*18?FMT[bipw~\205\214\223"
		"\232\241\250\257\266\275\304\313\322\331\340\347\356\365\374\003\n"
		"\021\030\037&-4;BIPW^elsz\201\210\217\226\235\244\253\262\271\300\307"
		"\316\325\334\343\352\361\370\377\006\r\024\033\")07>ELSZahov}\204\213"
		"\222\231\240\247\256\265\274\303\312\321\330\337\346\355\364\373\002"
		"\011\020\027\036%,3:AHOV]dkry\200\207\216\225\234\243\252\261\270\277"
		"\306\315\324\333\342\351\360\367\376\005\014\023\032!(/6=DKRY`gnu|\203"
		"\212\221\230\237\246\255\264\273\302\311\320\327\336\345\354\363\372"
		"\001\010\017\026\035$+29@GNU\\cjqx\177\206\215\224\233\242\251\260\267"
		"\276\305\314\323\332\341\350\357\366\375\004\013\022\031 '.5<CJQX_f"
		"mt{\202\211\220\227\236\245", 537,
		"Content-Transfer-Encoding: base64\r\n\r\nAAcOFRwjKjE4P0ZNVFtiaXB3fo"
		"WMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZWxzeoGI\r\nj5adpKuyucDHz"
		"tXc4+rx+P8GDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsCCRAX\r\n"
		"HiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp8Pf+BQwTGiEoLzY9REtSWWBnbnV"
		"8g4qRmJ+m\r\nrbS7wsnQ197l7PP6AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vs"
		"XM09rh6O/2/QQLEhkgJy41\r\nPENKUVhfZm10e4KJkJeepayzusHIz9bd5Ovy+QAHD"
		"hUcIyoxOD9GTVRbYmlwd36FjJOaoaivtr3E\r\ny9LZ4Ofu9fwDChEYHyYtNDtCSVBX"
		"XmVsc3qBiI+WnaSrsrnAx87V3OPq8fj/Bg0UGyIpMDc+RUxT\r\nWmFob3Z9hIuSmaC"
		"nrrW8w8rR2N/m7fT7AgkQFx4lLDM6QUhPVl1ka3J5gIeOlZyjqrG4v8bN1Nvi\r\n"
		"6fD3/gUMExohKC82PURLUllgZ251fIOKkZifpq20u8LJ0Nfe5ezz+gEIDxYdJCsyOUB"
		"HTlVcY2px\r\neH+GjZSboqmwt77FzNPa4ejv9v0ECxIZICcuNTxDSlFYX2ZtdHuCiZ"
		"CXnqU=\r\n", 723 },
	{ "header only",
		"Subject: h\r\nContent-Transfer-Encoding: binary", 45,
		"Subject: h\r\nContent-Transfer-Encoding: base64", 45 },
	{ "header only nul",
		"X: a\000b\r\n", 8,
		"X: a b\r\n", 8 },
	{ "preamble nul",
		"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encod"
		"ing: binary\r\n\r\npre\000amble\r\n--b\r\nContent-Type: text/plain\r"
		"\n\r\nok\r\n--b--\r\n", 135,
		"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encod"
		"ing: 8bit\r\n\r\npre amble\r\n--b\r\nContent-Type: text/plain\r\n"
		"\r\nok\r\n--b--\r\n", 133 },
	{ "base64 nul",
		"Content-Transfer-Encoding: base64\r\n\r\nQUJD\000\r\n", 44,
		"Content-Transfer-Encoding: base64\r\n\r\nQUJD \r\n", 44 },
	{ "empty binary",
		"Content-Transfer-Encoding: binary\r\n\r\n", 37,
		"Content-Transfer-Encoding: base64\r\n\r\n", 37 },
	{ "nul padded cte name",
		"Content-Transfer-Encoding\000\000 :binary\r\n\r\nab\000", 42,
		"Content-Transfer-Encoding: base64\r\n\r\nYWIA\r\n", 43 },
	{ "long ws before colon",
		"Content-Transfer-Encoding \011 \011 \011 \011 \011 \011 \011 \011 \011"
		" \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011"
		" \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011"
		" \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011 \011"
		" \011 \011 \011 \011 \011 \011 \011 \011 \011: binary\r\n\r\n"
		"x\000", 159,
		"Content-Transfer-Encoding: base64\r\n\r\neAA=\r\n", 43 },
	{ "not cte long ws",
		"Content-Transfer-Encodingx                                         "
		"                                                           : binary"
		"\r\nX: \000\r\n\r\nx", 145,
		"Content-Transfer-Encodingx                                         "
		"                                                           : binary"
		"\r\nX:  \r\n\r\nx", 145 },
	{ "nul continuation",
		"Subject: a\r\n\000b\r\n\r\nx", 19,
		"Subject: a\r\n b\r\n\r\nx", 19 },
	{ "7bit",
		"Subject: a\r\n\r\nhello\r\n", 21,
		NULL, 0 },
	{ "8bit",
		"Subject: a\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\303\251t\303\251"
		"\r\n", 54,
		NULL, 0 },
	{ "base64",
		"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\nAAECAw==\r\n", 72,
		NULL, 0 },
	{ "lf only",
		"Subject: a\n\nx\ny\n", 16,
		NULL, 0 },
	{ "qp bare cr",
		"Content-Transfer-Encoding: quoted-printable\r\n\r\na\rb=0D\r\n"
		"", 55,
		NULL, 0 },
	{ "multipart text",
		"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n"
		"\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
		"world\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
		"--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-"
		"Encoding: 8bit\r\n\r\n<p>\303\251</p>\r\n\r\n--XX--\r\nepilogue\r\n"
		"", 272,
		NULL, 0 },
};

struct sink {
	char *data;
	size_t len, cap;
	bool saw_last;
	int fail_after;		/* calls before returning -1; <0 never */
};

static int sink_out(void *ctx, const void *data, size_t size, bool is_last)
{
	struct sink *s = ctx;

	if (s->saw_last)
		return -1;	/* nothing after the last call */
	if (s->fail_after == 0)
		return -1;
	if (s->fail_after > 0)
		s->fail_after--;
	if (s->len + size > s->cap) {
		s->cap = (s->len + size) * 2 + 16;
		s->data = realloc(s->data, s->cap);
	}
	if (size > 0)
		memcpy(s->data + s->len, data, size);
	s->len += size;
	s->saw_last = is_last;
	return 0;
}

static int memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("bc-test", MFD_CLOEXEC);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	return fd;
}

static bool sink_is(const struct sink *s, const char *data, size_t len)
{
	return s->saw_last && s->len == len && memcmp(s->data, data, len) == 0;
}

/* binary_convert_fd at every chunk size. */
static void test_chunk_sizes(void)
{
	for (size_t r = 0; r < sizeof(bc_rows) / sizeof(bc_rows[0]); r++) {
		const struct bc_row *row = &bc_rows[r];
		int fd = memfd_with(row->in, row->in_len);
		bool ok = true;

		for (size_t chunk = 1; chunk <= row->in_len + 1; chunk++) {
			struct sink s = { .fail_after = -1 };
			const char *error = "unset";
			int ret = binary_convert_fd(fd, chunk, sink_out, &s,
						    &error);

			if (row->out == NULL)
				ok = ok && ret == 0 && s.len == 0 &&
					!s.saw_last;
			else
				ok = ok && ret == 1 &&
					sink_is(&s, row->out, row->out_len);
			if (!ok)
				printf("  row %zu (%s) chunk %zu: ret %d "
				       "len %zu\n%.*s\n", r, row->name, chunk,
				       ret, s.len, (int)s.len,
				       s.data != NULL ? s.data : "");
			free(s.data);
			if (!ok)
				break;
		}
		test_assert_idx(ok, r);
		close(fd);
	}
}

/* The spool API fed at every split point; unchanged gives the original. */
static void test_spool_splits(void)
{
	for (size_t r = 0; r < sizeof(bc_rows) / sizeof(bc_rows[0]); r++) {
		const struct bc_row *row = &bc_rows[r];
		const char *want = row->out != NULL ? row->out : row->in;
		size_t want_len = row->out != NULL ? row->out_len :
			row->in_len;
		bool ok = true;

		for (size_t split = 0; split <= row->in_len && ok; split++) {
			struct sink s = { .fail_after = -1 };
			const char *error;
			struct binary_convert *bc =
				binary_convert_begin(NULL, &error);
			int ret;

			test_assert_idx(bc != NULL, r);
			if (bc == NULL)
				return;
			ok = binary_convert_write(bc, row->in, split,
						  &error) == 0 &&
				binary_convert_write(bc, row->in + split,
						     row->in_len - split,
						     &error) == 0;
			ret = binary_convert_finish(&bc, sink_out, &s,
						    &error);
			ok = ok && bc == NULL &&
				ret == (row->out != NULL ? 1 : 0) &&
				sink_is(&s, want, want_len);
			free(s.data);
		}
		test_assert_idx(ok, r);
	}
}

/* The output function's failure stops the conversion (error NULL). */
static void test_output_failure(void)
{
	static const char hdr[] = "Content-Transfer-Encoding: binary\r\n\r\n";
	size_t len = sizeof(hdr) - 1 + 100000;
	char *msg = malloc(len);
	int fd;

	memcpy(msg, hdr, sizeof(hdr) - 1);
	for (size_t i = sizeof(hdr) - 1; i < len; i++)
		msg[i] = (char)(i * 31);
	fd = memfd_with(msg, len);
	free(msg);
	for (int n = 0; n < 5; n++) {
		struct sink s = { .fail_after = n };
		const char *error = "unset";

		test_assert_idx(binary_convert_fd(fd, 16, sink_out, &s,
						  &error) == -1, n);
		test_assert_idx(error == NULL, n);
		free(s.data);
	}
	close(fd);
}

/* A file that is not readable gives an error with text. */
static void test_read_failure(void)
{
	struct sink s = { .fail_after = -1 };
	const char *error = NULL;

	test_assert(binary_convert_fd(-1, 0, sink_out, &s, &error) == -1);
	test_assert(error != NULL);
	free(s.data);
}

/* Abort frees the spool; NULL is fine. */
static void test_abort(void)
{
	const char *error;
	struct binary_convert *bc = binary_convert_begin(NULL, &error);

	test_assert(bc != NULL);
	test_assert(binary_convert_write(bc, "abc", 3, &error) == 0);
	binary_convert_abort(&bc);
	test_assert(bc == NULL);
	binary_convert_abort(&bc);
}

int main(void)
{
	test_run("chunk_sizes", test_chunk_sizes);
	test_run("spool_splits", test_spool_splits);
	test_run("output_failure", test_output_failure);
	test_run("read_failure", test_read_failure);
	test_run("abort", test_abort);
	return test_done("binary_convert");
}
