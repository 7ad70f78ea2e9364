/* test_auth_cache.c: the verified-credential cache: hits, misses, keys
 * that differ only in where user ends, eviction at the size bound, clear,
 * and the disabled cache. */
#include "auth/auth_cache.h"
#include "test.h"

#include <stdio.h>

static void test_cache_hits(void)
{
	auth_cache_init(100, 3600);
	test_assert(!auth_cache_lookup("alice", "pw"));
	auth_cache_add("alice", "pw");
	test_assert(auth_cache_lookup("alice", "pw"));
	test_assert(!auth_cache_lookup("alice", "pw2"));
	test_assert(!auth_cache_lookup("alic", "epw"));
	test_assert(!auth_cache_lookup("bob", "pw"));
	auth_cache_clear();
	test_assert(!auth_cache_lookup("alice", "pw"));
	auth_cache_deinit();
}

static void test_cache_bound(void)
{
	char user[32];

	auth_cache_init(10, 3600);
	for (int i = 0; i < 25; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		auth_cache_add(user, "pw");
	}
	for (int i = 0; i < 25; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		/* the 10 most recent stay, the oldest are evicted */
		test_assert_idx(auth_cache_lookup(user, "pw") == (i >= 15), i);
	}
	auth_cache_deinit();
}

static void test_cache_disabled(void)
{
	auth_cache_init(0, 3600);
	auth_cache_add("alice", "pw");
	test_assert(!auth_cache_lookup("alice", "pw"));
	auth_cache_init(10, 0);
	auth_cache_add("alice", "pw");
	test_assert(!auth_cache_lookup("alice", "pw"));
	auth_cache_deinit();
}

int main(void)
{
	test_run("cache_hits", test_cache_hits);
	test_run("cache_bound", test_cache_bound);
	test_run("cache_disabled", test_cache_disabled);
	return test_done("auth_cache");
}
