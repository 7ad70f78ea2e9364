/* limits.c: shared per-IP / per-user connection counters (limits.h). */
#include "net/limits.h"
#include "lib/log.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define LIMITS_BUCKETS 16384

struct limits_row {
	uint32_t counts[2][LIMITS_BUCKETS];	/* [is_user][bucket] */
};

struct limits {
	unsigned rows;
	uint64_t seed;		/* random: bucket collisions can't be chosen */
	struct limits_row row[];
};

struct limits *limits_create(unsigned rows)
{
	size_t size = sizeof(struct limits) +
		(size_t)rows * sizeof(struct limits_row);
	struct limits *l = mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (l == MAP_FAILED)
		log_fatal("mmap(%zu) for connection limits failed", size);
	l->rows = rows;
	if (getentropy(&l->seed, sizeof(l->seed)) < 0)
		l->seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	return l;
}

unsigned limits_rows(const struct limits *l)
{
	return l->rows;
}

void limits_row_clear(struct limits *l, unsigned row)
{
	memset(&l->row[row], 0, sizeof(l->row[row]));
}

static unsigned limits_bucket(const struct limits *l, const char *key)
{
	uint64_t h = 14695981039346656037ull ^ l->seed;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	/* FNV's low bits mix poorly ("127.3.0.1" and "127.1.1.26" shared
	 * a bucket, so one client's connections counted against another's
	 * limit): finish with the splitmix64 finalizer. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned)(h % LIMITS_BUCKETS);
}

int limits_add(struct limits *l, unsigned row, bool is_user, const char *key,
	       unsigned max)
{
	unsigned b = limits_bucket(l, key);
	uint64_t total = 0;

	if (max != 0) {
		for (unsigned r = 0; r < l->rows; r++)
			total += __atomic_load_n(&l->row[r].counts[is_user][b],
						 __ATOMIC_RELAXED);
		if (total >= max)
			return -1;
	}
	__atomic_add_fetch(&l->row[row].counts[is_user][b], 1,
			   __ATOMIC_RELAXED);
	return 0;
}

void limits_del(struct limits *l, unsigned row, bool is_user, const char *key)
{
	uint32_t *c = &l->row[row].counts[is_user][limits_bucket(l, key)];

	if (__atomic_load_n(c, __ATOMIC_RELAXED) > 0)
		__atomic_sub_fetch(c, 1, __ATOMIC_RELAXED);
}
