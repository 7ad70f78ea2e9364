/* threadpool.h: a fixed set of threads running blocking jobs (fsync,
 * link, rename) for one libevent loop, so that the loop keeps serving
 * other sessions meanwhile.
 *
 * Each job is a pair of callbacks: work(ctx) runs on one of the pool's
 * threads (FIFO order, up to `threads` at once); done(ctx) runs later on
 * the loop thread (the one running the event_base), in completion order.
 * done is never called from inside threadpool_submit, and it is called
 * exactly once per job, also for jobs still queued at threadpool_destroy.
 *
 * work must touch only data that ctx owns: nothing of libevent, LMDB,
 * logging or other loop-thread state. A caller whose session goes away
 * while its job runs keeps ctx alive and marks it orphaned; done then
 * discards the result and frees ctx.
 *
 * Limits: the thread count is fixed at creation; the queue is unbounded
 * (callers bound it by their own session limits). Pool threads block
 * every signal. */
#ifndef HERON_THREADPOOL_H
#define HERON_THREADPOOL_H

struct event_base;
struct threadpool;

/* Most threads a pool may have. */
#define THREADPOOL_THREADS_MAX 64

/* Starts threads (1..THREADPOOL_THREADS_MAX) threads. If no thread can
 * be started, the pool still works: work then runs inside
 * threadpool_submit (done stays deferred). Returns NULL with *error_r
 * (static string) only when the eventfd or its event cannot be made. */
struct threadpool *threadpool_create(struct event_base *base,
				     unsigned threads, const char **error_r);
/* Lets the queued and running jobs finish, joins the threads, then runs
 * the done callbacks still due on the calling thread (which must be the
 * loop thread; those callbacks must not submit). NULLs *pool. Safe on
 * NULL. */
void threadpool_destroy(struct threadpool **pool);

void threadpool_submit(struct threadpool *pool, void (*work)(void *ctx),
		       void (*done)(void *ctx), void *ctx);

/* Jobs submitted whose done callback has not run yet. */
unsigned threadpool_pending(const struct threadpool *pool);
/* Threads actually running (0 after a failed start). */
unsigned threadpool_threads(const struct threadpool *pool);

#endif
