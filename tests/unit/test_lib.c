/* test_lib.c: base64 and overflow-checked number parsing. */
#include "lib/base64.h"
#include "lib/strnum.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static void test_base64(void)
{
	/* RFC 4648 section 10 vectors. */
	static const struct {
		const char *plain, *encoded;
	} rows[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char enc[64];
		unsigned char dec[64];
		long n;

		base64_encode(rows[i].plain, strlen(rows[i].plain), enc);
		test_assert_streq_idx(enc, rows[i].encoded, (int)i);
		n = base64_decode(rows[i].encoded, strlen(rows[i].encoded),
				  dec);
		test_assert_idx(n == (long)strlen(rows[i].plain), (int)i);
		test_assert_streq_idx((char *)dec, rows[i].plain, (int)i);
	}
}

static void test_base64_bad(void)
{
	static const char *const rows[] = {
		"Zg=", "Zg===", "Z===", "=Zg=", "Zm9v!A==", "Zg==Zg==",
		"Zm 9", "Zm9vY",
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned char dec[64];
		test_assert_idx(base64_decode(rows[i], strlen(rows[i]),
					      dec) == -1, (int)i);
	}
}

static void test_strnum(void)
{
	static const struct {
		const char *s;
		uint64_t max;
		int ret;
		uint64_t n;
	} rows[] = {
		{ "0", 10, 0, 0 }, { "10", 10, 0, 10 }, { "11", 10, -1, 0 },
		{ "7", 5, -1, 0 }, { "", 10, -1, 0 }, { "1a", 100, -1, 0 },
		{ "-1", 100, -1, 0 }, { " 1", 100, -1, 0 },
		{ "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", UINT64_MAX, -1, 0 },
		{ "99999999999999999999999", UINT64_MAX, -1, 0 },
		{ "4294967295", UINT32_MAX, 0, UINT32_MAX },
		{ "4294967296", UINT32_MAX, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t n = 12345;
		int ret = str_to_u64z(rows[i].s, rows[i].max, &n);
		test_assert_idx(ret == rows[i].ret, (int)i);
		if (ret == 0)
			test_assert_idx(n == rows[i].n, (int)i);
	}
}

int main(void)
{
	test_run("base64", test_base64);
	test_run("base64_bad", test_base64_bad);
	test_run("strnum", test_strnum);
	return test_done("test_lib");
}
