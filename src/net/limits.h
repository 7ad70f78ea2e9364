/* limits.h: connection counts per client IP and per user, shared by all
 * workers (max_conns_per_ip, max_conns_per_user apply to the server, not
 * to each worker). A shared anonymous mapping made by the master before it
 * forks: one row of counters per worker, which only that worker writes,
 * so a crashed worker's connections are forgotten by clearing its row.
 * Keys hash into buckets: two keys in one bucket share a count, which can
 * only make a limit apply early, never late. Concurrent accepts in
 * different workers may overshoot a limit by at most workers - 1. */
#ifndef HERON_LIMITS_H
#define HERON_LIMITS_H

#include <stdbool.h>

struct limits;

/* rows: the most workers alive at once (draining ones included). */
struct limits *limits_create(unsigned rows);
unsigned limits_rows(const struct limits *l);
/* Master: a child using row exited; its counts no longer apply. */
void limits_row_clear(struct limits *l, unsigned row);
/* Adds one connection for key in row unless the total over all rows is
 * already max (0 = no limit): then returns -1 and changes nothing. */
int limits_add(struct limits *l, unsigned row, bool is_user, const char *key,
	       unsigned max);
void limits_del(struct limits *l, unsigned row, bool is_user,
		const char *key);

#endif
