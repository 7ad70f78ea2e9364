/* threadpool.c: fixed worker threads + a job queue; completions go back to
 * the libevent loop through an eventfd.
 *
 * One mutex guards both lists (the queue and the finished jobs). A
 * thread that finishes a job appends it to the finished list and writes
 * the eventfd only when that list was empty, so a burst of completions
 * costs one wakeup. The loop's read callback takes the whole list and
 * runs the done callbacks without holding the lock (they may submit). */
#include "lib/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/xmalloc.h"

struct threadpool_job {
	struct threadpool_job *next;
	void (*work)(void *ctx);
	void (*done)(void *ctx);
	void *ctx;
};

/* A FIFO of jobs. */
struct job_list {
	struct threadpool_job *head, *tail;
};

struct threadpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* queue non-empty or stopping */
	struct job_list queue;		/* waiting for a thread */
	struct job_list finished;	/* waiting for done on the loop */
	bool is_stopping;

	int efd;
	struct event *ev;
	pthread_t tids[THREADPOOL_THREADS_MAX];
	unsigned threads;
	unsigned pending;		/* loop thread only */
};

static void list_push(struct job_list *l, struct threadpool_job *job)
{
	job->next = NULL;
	if (l->tail == NULL)
		l->head = job;
	else
		l->tail->next = job;
	l->tail = job;
}

static struct threadpool_job *list_pop(struct job_list *l)
{
	struct threadpool_job *job = l->head;

	if (job != NULL) {
		l->head = job->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return job;
}

static void pool_wake_loop(struct threadpool *pool)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: awake anyway */
	while (write(pool->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Called with the lock held. */
static void pool_finished(struct threadpool *pool, struct threadpool_job *job)
{
	bool was_empty = pool->finished.head == NULL;

	list_push(&pool->finished, job);
	if (was_empty)
		pool_wake_loop(pool);
}

static void *pool_thread(void *arg)
{
	struct threadpool *pool = arg;
	struct threadpool_job *job;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->queue.head == NULL && !pool->is_stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		job = list_pop(&pool->queue);
		if (job == NULL)
			break;		/* stopping and nothing left */
		pthread_mutex_unlock(&pool->lock);
		job->work(job->ctx);
		pthread_mutex_lock(&pool->lock);
		pool_finished(pool, job);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Runs the done callbacks of every finished job (loop thread). */
static void pool_run_finished(struct threadpool *pool)
{
	struct threadpool_job *job, *next;
	uint64_t count;

	if (read(pool->efd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing signalled; the list decides */
	}
	pthread_mutex_lock(&pool->lock);
	job = pool->finished.head;
	pool->finished.head = pool->finished.tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		pool->pending--;
		job->done(job->ctx);
		free(job);
	}
}

static void pool_event_cb(evutil_socket_t fd, short what, void *arg)
{
	pool_run_finished(arg);
}

static void pool_start_threads(struct threadpool *pool, unsigned threads)
{
	sigset_t all, old;

	/* Signals stay with the loop thread (libevent's handlers). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&pool->tids[pool->threads], NULL,
				   pool_thread, pool) != 0)
			break;
		pool->threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

struct threadpool *threadpool_create(struct event_base *base,
				     unsigned threads, const char **error_r)
{
	struct threadpool *pool = xcalloc(1, sizeof(*pool));

	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0) {
		*error_r = "eventfd() failed";
		free(pool);
		return NULL;
	}
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST,
			     pool_event_cb, pool);
	if (pool->ev == NULL || event_add(pool->ev, NULL) < 0) {
		*error_r = "event_new(eventfd) failed";
		if (pool->ev != NULL)
			event_free(pool->ev);
		close(pool->efd);
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	if (threads > THREADPOOL_THREADS_MAX)
		threads = THREADPOOL_THREADS_MAX;
	pool_start_threads(pool, threads == 0 ? 1 : threads);
	return pool;
}

void threadpool_submit(struct threadpool *pool, void (*work)(void *ctx),
		       void (*done)(void *ctx), void *ctx)
{
	struct threadpool_job *job = xmalloc(sizeof(*job));

	job->work = work;
	job->done = done;
	job->ctx = ctx;
	pool->pending++;
	if (pool->threads == 0) {
		/* no thread could be started: block here, stay correct */
		work(ctx);
		pthread_mutex_lock(&pool->lock);
		pool_finished(pool, job);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	list_push(&pool->queue, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

unsigned threadpool_pending(const struct threadpool *pool)
{
	return pool->pending;
}

unsigned threadpool_threads(const struct threadpool *pool)
{
	return pool->threads;
}

void threadpool_destroy(struct threadpool **_pool)
{
	struct threadpool *pool = *_pool;

	if (pool == NULL)
		return;
	*_pool = NULL;
	pthread_mutex_lock(&pool->lock);
	pool->is_stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->threads; i++)
		pthread_join(pool->tids[i], NULL);
	/* every job is in the finished list now */
	pool_run_finished(pool);
	event_free(pool->ev);
	close(pool->efd);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
