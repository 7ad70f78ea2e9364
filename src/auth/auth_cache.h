/* auth_cache.h: a cache of recently verified credentials in the auth
 * process, so repeated logins (mail clients poll every few minutes) skip
 * the deliberately slow password hash. Entries are keyed by a BLAKE2b MAC
 * of user and password under a random per-process key: no plaintext or
 * reusable hash is kept. Only successes are cached; a reload of the
 * password file clears the cache, so changed passwords apply at once. */
#ifndef HERON_AUTH_CACHE_H
#define HERON_AUTH_CACHE_H

#include <stdbool.h>

/* max_entries 0 or ttl_secs 0 disables the cache. */
void auth_cache_init(unsigned max_entries, unsigned ttl_secs);
void auth_cache_deinit(void);
/* True if user/password verified successfully within the TTL. */
bool auth_cache_lookup(const char *user, const char *password);
void auth_cache_add(const char *user, const char *password);
void auth_cache_clear(void);

#endif
