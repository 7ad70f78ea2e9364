/* auth_cache.c: verified-credential cache (see auth_cache.h). A hash table
 * of MACs with an LRU list; bounded by max_entries, expired by TTL. */
#include "auth/auth_cache.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#define AUTH_CACHE_MAC_SIZE 32

struct cache_entry {
	unsigned char mac[AUTH_CACHE_MAC_SIZE];
	time_t expires;			/* CLOCK_MONOTONIC seconds */
	struct cache_entry *hash_next;
	TAILQ_ENTRY(cache_entry) lru;	/* oldest first */
};

static struct {
	unsigned char key[crypto_generichash_KEYBYTES];
	struct cache_entry **buckets;
	unsigned buckets_count;
	unsigned count, max_entries, ttl_secs;
	TAILQ_HEAD(, cache_entry) lru;
} cache;

static time_t cache_now(void)
{
	return (time_t)(time_mono_nsecs() / 1000000000u);
}

static void cache_mac(const char *user, const char *password,
		      unsigned char mac[AUTH_CACHE_MAC_SIZE])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, cache.key, sizeof(cache.key),
				AUTH_CACHE_MAC_SIZE);
	/* Length-prefixed so "ab"+"c" and "a"+"bc" differ. */
	uint64_t ulen = strlen(user);
	crypto_generichash_update(&st, (const void *)&ulen, sizeof(ulen));
	crypto_generichash_update(&st, (const void *)user, ulen);
	crypto_generichash_update(&st, (const void *)password,
				  strlen(password));
	crypto_generichash_final(&st, mac, AUTH_CACHE_MAC_SIZE);
	sodium_memzero(&st, sizeof(st));
}

static struct cache_entry **cache_slot(const unsigned char *mac)
{
	uint32_t h;
	struct cache_entry **pp;

	memcpy(&h, mac, sizeof(h));	/* the MAC is uniformly random */
	pp = &cache.buckets[h % cache.buckets_count];
	while (*pp != NULL && sodium_memcmp((*pp)->mac, mac,
					    AUTH_CACHE_MAC_SIZE) != 0)
		pp = &(*pp)->hash_next;
	return pp;
}

static void cache_remove(struct cache_entry **pp)
{
	struct cache_entry *e = *pp;

	*pp = e->hash_next;
	TAILQ_REMOVE(&cache.lru, e, lru);
	cache.count--;
	free(e);
}

void auth_cache_init(unsigned max_entries, unsigned ttl_secs)
{
	auth_cache_deinit();
	if (max_entries == 0 || ttl_secs == 0)
		return;
	if (sodium_init() < 0)
		return;
	randombytes_buf(cache.key, sizeof(cache.key));
	cache.max_entries = max_entries;
	cache.ttl_secs = ttl_secs;
	cache.buckets_count = max_entries / 2 + 1;
	cache.buckets = xcalloc(cache.buckets_count, sizeof(*cache.buckets));
	TAILQ_INIT(&cache.lru);
}

void auth_cache_clear(void)
{
	struct cache_entry *e;

	if (cache.buckets == NULL)
		return;
	while ((e = TAILQ_FIRST(&cache.lru)) != NULL)
		cache_remove(cache_slot(e->mac));
}

void auth_cache_deinit(void)
{
	auth_cache_clear();
	free(cache.buckets);
	sodium_memzero(&cache, sizeof(cache));
}

bool auth_cache_lookup(const char *user, const char *password)
{
	unsigned char mac[AUTH_CACHE_MAC_SIZE];
	struct cache_entry **pp;
	bool found = false;

	if (cache.buckets == NULL)
		return false;
	cache_mac(user, password, mac);
	pp = cache_slot(mac);
	if (*pp != NULL) {
		if ((*pp)->expires > cache_now())
			found = true;
		else
			cache_remove(pp);
	}
	sodium_memzero(mac, sizeof(mac));
	return found;
}

void auth_cache_add(const char *user, const char *password)
{
	struct cache_entry *e, **pp;

	if (cache.buckets == NULL)
		return;
	e = xcalloc(1, sizeof(*e));
	cache_mac(user, password, e->mac);
	pp = cache_slot(e->mac);
	if (*pp != NULL)
		cache_remove(pp);
	while (cache.count >= cache.max_entries)
		cache_remove(cache_slot(TAILQ_FIRST(&cache.lru)->mac));
	e->expires = cache_now() + (time_t)cache.ttl_secs;
	pp = cache_slot(e->mac);
	e->hash_next = *pp;
	*pp = e;
	TAILQ_INSERT_TAIL(&cache.lru, e, lru);
	cache.count++;
}
