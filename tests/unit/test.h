/* test.h: a minimal table-driven unit test harness. Each test binary calls
 * test_run() for its cases and returns test_done(), which prints
 * "<name>: N passed, M failed". A failed check prints file:line, the row
 * index when given and the message. */
#ifndef HERON_TEST_H
#define HERON_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed_count, test_failed_count, test_cur_failed;
static const char *test_cur_name;

#define test_assert(cond) test_assert_idx(cond, -1)
#define test_assert_idx(cond, idx) do { \
	if (!(cond)) { \
		test_cur_failed = 1; \
		if ((int)(idx) >= 0) \
			printf("  FAIL %s:%d [%s] row %d: %s\n", __FILE__, \
			       __LINE__, test_cur_name, (int)(idx), #cond); \
		else \
			printf("  FAIL %s:%d [%s]: %s\n", __FILE__, \
			       __LINE__, test_cur_name, #cond); \
	} } while (0)
#define test_assert_streq(a, b) test_assert_streq_idx(a, b, -1)
#define test_assert_streq_idx(a, b, idx) do { \
	const char *ta_ = (a), *tb_ = (b); \
	if (ta_ == NULL || tb_ == NULL || strcmp(ta_, tb_) != 0) { \
		test_cur_failed = 1; \
		printf("  FAIL %s:%d [%s] row %d: \"%s\" != \"%s\"\n", \
		       __FILE__, __LINE__, test_cur_name, (int)(idx), \
		       ta_ ? ta_ : "(null)", tb_ ? tb_ : "(null)"); \
	} } while (0)

static inline void test_run(const char *name, void (*fn)(void))
{
	test_cur_name = name;
	test_cur_failed = 0;
	fn();
	if (test_cur_failed) {
		test_failed_count++;
		printf("not ok %s\n", name);
	} else {
		test_passed_count++;
	}
}

static inline int test_done(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, test_passed_count,
	       test_failed_count);
	return test_failed_count == 0 ? 0 : 1;
}

#endif
