/* worker.h: a worker process: one event loop serving many connections on
 * the listening sockets it inherited from the master. */
#ifndef HERON_WORKER_H
#define HERON_WORKER_H

#include <openssl/ssl.h>

struct limits;
struct settings;

/* Runs until SIGTERM (close everything now) or SIGUSR1 (stop accepting,
 * exit when the last session ends: used for reloads). fds has a row of
 * `slots` listening sockets per set->listeners[i] (master.c); worker
 * `index` (1..) serves slot index - 1 and closes the others' sockets.
 * row is this worker's row in the
 * shared connection counters; tls (NULL = no TLS) was loaded before the
 * privileges were dropped, so keys may stay readable by root only. Never
 * returns. */
void worker_main(const struct settings *set, const int *fds,
		 unsigned slots, int index,
		 struct limits *limits, unsigned row, SSL_CTX *tls)
	__attribute__((noreturn));

#endif
