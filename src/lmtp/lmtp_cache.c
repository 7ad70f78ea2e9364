/* lmtp_cache.c: per-worker state shared by LMTP sessions, all used from
 * the loop thread only:
 *
 *   - a cache of positive recipient lookups (name as given -> canonical
 *     user), LMTP_USER_CACHE_SIZE direct-mapped slots kept for
 *     LMTP_USER_CACHE_TTL_SECS, so most RCPTs skip the auth round trip.
 *     Negative and temporary results are never cached.
 *   - idle open store_users (store_user_open creates directories and
 *     opens the LMDB environment: worth keeping for a burst of mail to
 *     the same user). An entry is handed out to one delivery at a time,
 *     so no two pool threads ever share a store_user; at most
 *     LMTP_SU_CACHE_MAX idle entries, each closed after
 *     LMTP_SU_CACHE_TTL_SECS unused.
 *   - the thread pool that runs the blocking part of deliveries. */
#include "lmtp/lmtp_private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/threadpool.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "store/store.h"

struct user_slot {
	char *name;
	char *user;
	time_t expires;
};

struct su_slot {
	struct store_user *su;
	time_t last_used;
};

static struct user_slot user_cache[LMTP_USER_CACHE_SIZE];
static struct su_slot su_cache[LMTP_SU_CACHE_MAX];
static unsigned su_cache_count;
static struct threadpool *lmtp_threadpool;

static time_t now_secs(void)
{
	return (time_t)(time_mono_coarse_msecs() / 1000);
}

/* FNV-1a */
static unsigned user_slot_idx(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const void *)name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % LMTP_USER_CACHE_SIZE;
}

const char *lmtp_user_cache_get(const char *name)
{
	struct user_slot *s = &user_cache[user_slot_idx(name)];

	if (s->name == NULL || strcmp(s->name, name) != 0 ||
	    s->expires <= now_secs())
		return NULL;
	return s->user;
}

void lmtp_user_cache_put(const char *name, const char *user)
{
	struct user_slot *s = &user_cache[user_slot_idx(name)];

	free(s->name);
	free(s->user);
	s->name = xstrdup(name);
	s->user = xstrdup(user);
	s->expires = now_secs() + LMTP_USER_CACHE_TTL_SECS;
}

static void su_slot_close(unsigned i)
{
	store_user_close(&su_cache[i].su);
	su_cache[i] = su_cache[--su_cache_count];
}

/* Closes idle entries unused for LMTP_SU_CACHE_TTL_SECS. */
static void su_cache_expire(time_t now)
{
	for (unsigned i = 0; i < su_cache_count;) {
		if (now - su_cache[i].last_used >= LMTP_SU_CACHE_TTL_SECS)
			su_slot_close(i);
		else
			i++;
	}
}

int lmtp_su_get(const struct settings *set, const char *user,
		struct store_user **su_r, bool *is_cached_r,
		const char **error_r)
{
	su_cache_expire(now_secs());
	for (unsigned i = 0; i < su_cache_count; i++) {
		if (strcmp(store_user_name(su_cache[i].su), user) == 0) {
			*su_r = su_cache[i].su;
			su_cache[i] = su_cache[--su_cache_count];
			*is_cached_r = true;
			return 0;
		}
	}
	*is_cached_r = false;
	return store_user_open(set, user, su_r, error_r);
}

void lmtp_su_put(struct store_user **su)
{
	time_t now = now_secs();
	unsigned oldest = 0;

	if (*su == NULL)
		return;
	su_cache_expire(now);
	if (su_cache_count == LMTP_SU_CACHE_MAX) {
		for (unsigned i = 1; i < su_cache_count; i++) {
			if (su_cache[i].last_used < su_cache[oldest].last_used)
				oldest = i;
		}
		su_slot_close(oldest);
	}
	su_cache[su_cache_count].su = *su;
	su_cache[su_cache_count++].last_used = now;
	*su = NULL;
}

struct threadpool *lmtp_pool(struct event_base *base)
{
	const char *error;

	if (lmtp_threadpool == NULL) {
		lmtp_threadpool = threadpool_create(base, LMTP_POOL_THREADS,
						    &error);
		if (lmtp_threadpool == NULL)
			log_error("lmtp: threadpool_create failed: %s", error);
		else if (threadpool_threads(lmtp_threadpool) == 0)
			log_error("lmtp: no delivery thread could be started: "
				  "delivering on the event loop");
	}
	return lmtp_threadpool;
}
