/* test_threadpool.c: jobs complete, work runs off the loop thread and in
 * parallel, done runs on the loop thread exactly once, orphaned jobs are
 * discarded safely, destroy finishes queued jobs, done may submit. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/threadpool.h"

static pthread_t loop_tid;
static atomic_uint work_count, work_on_loop;
static unsigned done_count, done_off_loop;

struct job {
	unsigned idx;
	unsigned sleep_ms;
	bool is_worked;
	bool is_done;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void job_work(void *ctx)
{
	struct job *job = ctx;

	if (pthread_equal(pthread_self(), loop_tid))
		atomic_fetch_add(&work_on_loop, 1);
	if (job->sleep_ms > 0)
		sleep_ms(job->sleep_ms);
	job->is_worked = true;
	atomic_fetch_add(&work_count, 1);
}

static void job_done(void *ctx)
{
	struct job *job = ctx;

	if (!pthread_equal(pthread_self(), loop_tid))
		done_off_loop++;
	/* work happened-before done (the pool's lock orders them) */
	if (job->is_worked && !job->is_done)
		done_count++;
	job->is_done = true;
}

static void reset(void)
{
	loop_tid = pthread_self();
	atomic_store(&work_count, 0);
	atomic_store(&work_on_loop, 0);
	done_count = done_off_loop = 0;
}

/* Runs the loop until nothing is pending (or 5 s pass). */
static void run_until_idle(struct event_base *base, struct threadpool *pool)
{
	long deadline = now_ms() + 5000;

	while (threadpool_pending(pool) > 0 && now_ms() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
}

static void test_jobs_complete(void)
{
	enum { N = 200 };
	struct event_base *base = event_base_new();
	struct threadpool *pool;
	struct job *jobs = calloc(N, sizeof(*jobs));
	const char *error;

	reset();
	pool = threadpool_create(base, 4, &error);
	test_assert(pool != NULL);
	test_assert(threadpool_threads(pool) == 4);
	for (unsigned i = 0; i < N; i++) {
		jobs[i].idx = i;
		threadpool_submit(pool, job_work, job_done, &jobs[i]);
	}
	/* done never runs inside submit */
	test_assert(done_count == 0);
	run_until_idle(base, pool);
	test_assert(atomic_load(&work_count) == N);
	test_assert(atomic_load(&work_on_loop) == 0);
	test_assert(done_count == N);
	test_assert(done_off_loop == 0);
	for (unsigned i = 0; i < N; i++)
		test_assert_idx(jobs[i].is_done, i);
	threadpool_destroy(&pool);
	test_assert(pool == NULL);
	test_assert(done_count == N);	/* nothing ran twice */
	free(jobs);
	event_base_free(base);
}

static void test_parallel(void)
{
	enum { N = 8 };
	struct event_base *base = event_base_new();
	struct threadpool *pool;
	struct job jobs[N] = { { 0 } };
	const char *error;
	long start, ms;

	reset();
	pool = threadpool_create(base, N, &error);
	test_assert(pool != NULL);
	start = now_ms();
	for (unsigned i = 0; i < N; i++) {
		jobs[i].sleep_ms = 200;
		threadpool_submit(pool, job_work, job_done, &jobs[i]);
	}
	run_until_idle(base, pool);
	ms = now_ms() - start;
	test_assert(done_count == N);
	/* serially this would take 1600 ms */
	test_assert(ms < 1000);
	threadpool_destroy(&pool);
	event_base_free(base);
}

/* The owner pattern: a session that may go away while its job runs. */
struct session;

struct session_job {
	struct session *session;	/* NULL once orphaned */
	char *result;			/* produced by work, owned by the job */
};

struct session {
	struct session_job *job;	/* in flight, or NULL */
	char *result;
};

static unsigned orphans_discarded;

static void session_work(void *ctx)
{
	struct session_job *sj = ctx;

	sleep_ms(50);
	sj->result = malloc(16);
	memcpy(sj->result, "delivered", 10);
}

static void session_done(void *ctx)
{
	struct session_job *sj = ctx;

	if (sj->session == NULL) {
		orphans_discarded++;
	} else {
		sj->session->job = NULL;
		sj->session->result = sj->result;
		sj->result = NULL;
	}
	free(sj->result);
	free(sj);
}

static void session_start(struct threadpool *pool, struct session *s)
{
	s->job = calloc(1, sizeof(*s->job));
	s->job->session = s;
	threadpool_submit(pool, session_work, session_done, s->job);
}

static void session_destroy(struct session *s)
{
	if (s->job != NULL)
		s->job->session = NULL;
	free(s->result);
	free(s);
}

static void test_orphaned(void)
{
	struct event_base *base = event_base_new();
	struct threadpool *pool;
	struct session *kept = calloc(1, sizeof(*kept));
	struct session *gone = calloc(1, sizeof(*gone));
	const char *error;

	reset();
	orphans_discarded = 0;
	pool = threadpool_create(base, 2, &error);
	session_start(pool, kept);
	session_start(pool, gone);
	/* the client disconnects while its job runs */
	session_destroy(gone);
	run_until_idle(base, pool);
	test_assert(orphans_discarded == 1);
	test_assert(kept->job == NULL);
	test_assert(kept->result != NULL &&
		    strcmp(kept->result, "delivered") == 0);
	session_destroy(kept);

	/* orphaned, then the pool is destroyed before the loop ran */
	gone = calloc(1, sizeof(*gone));
	session_start(pool, gone);
	session_destroy(gone);
	threadpool_destroy(&pool);
	test_assert(orphans_discarded == 2);
	event_base_free(base);
}

static void test_destroy_queued(void)
{
	enum { N = 10 };
	struct event_base *base = event_base_new();
	struct threadpool *pool;
	struct job jobs[N] = { { 0 } };
	const char *error;

	reset();
	pool = threadpool_create(base, 1, &error);
	for (unsigned i = 0; i < N; i++) {
		jobs[i].sleep_ms = 5;
		threadpool_submit(pool, job_work, job_done, &jobs[i]);
	}
	threadpool_destroy(&pool);
	test_assert(atomic_load(&work_count) == N);
	test_assert(done_count == N);
	test_assert(done_off_loop == 0);
	event_base_free(base);
}

/* done callbacks may submit more work */
static struct threadpool *chain_pool;
static unsigned chain_left;

static void chain_work(void *ctx)
{
	atomic_fetch_add(&work_count, 1);
}

static void chain_done(void *ctx)
{
	if (chain_left > 0) {
		chain_left--;
		threadpool_submit(chain_pool, chain_work, chain_done, NULL);
	}
}

static void test_chain(void)
{
	struct event_base *base = event_base_new();
	const char *error;

	reset();
	chain_pool = threadpool_create(base, 3, &error);
	chain_left = 20;
	threadpool_submit(chain_pool, chain_work, chain_done, NULL);
	run_until_idle(base, chain_pool);
	test_assert(chain_left == 0);
	test_assert(atomic_load(&work_count) == 21);
	threadpool_destroy(&chain_pool);
	event_base_free(base);
}

int main(void)
{
	test_run("jobs_complete", test_jobs_complete);
	test_run("parallel", test_parallel);
	test_run("orphaned", test_orphaned);
	test_run("destroy_queued", test_destroy_queued);
	test_run("chain", test_chain);
	return test_done("threadpool");
}
