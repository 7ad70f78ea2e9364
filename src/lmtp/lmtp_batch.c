/* lmtp_batch.c: the deliveries of one transaction after its final dot.
 *
 * On the loop thread each recipient's message file is opened (store user
 * from the cache, tmp/ file, header lines); for a single recipient it
 * was already written during DATA. The blocking rest (copy from the
 * spool, fsync, link into new/, directory fsync: store_delivery_commit
 * with uid_r NULL, which touches only the delivery and its store user)
 * runs on the worker's thread pool, one job per recipient. When the last
 * job is done, the loop thread sends one reply per recipient in RCPT
 * order (RFC 2033 section 4.2), a 250 only for a committed file, logs,
 * and resumes the session's input.
 *
 * A session that goes away meanwhile leaves the batch orphaned: the jobs
 * still finish (their files are complete and durable, but nobody was
 * told, so the client will retry) and the last completion frees it. */
#include "lmtp/lmtp_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/config.h"
#include "lib/log.h"
#include "lib/threadpool.h"
#include "lib/xmalloc.h"
#include "net/conn.h"
#include "net/metrics.h"
#include "store/store.h"

static bool is_enospc(int err)
{
	return err == ENOSPC || err == EDQUOT;
}

static long msecs_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L +
		(now.tv_nsec - start->tv_nsec) / 1000000L;
}

/* Pool thread: only job->d, job->su and the immutable spool. */
static void job_work(void *ctx)
{
	struct lmtp_rcpt_job *job = ctx;
	const struct lmtp_data *data = job->batch->data;
	const char *error = "";
	int ret = 0;

	if (data->spool_fd >= 0)
		ret = lmtp_deliver_copy_spool(job->d, data->spool_fd,
					      data->size, &error);
	if (ret == 0)
		ret = store_delivery_commit(&job->d, 0, 0, NULL, &error);
	if (ret == 0)
		return;
	job->result = LMTP_JOB_FAILED;
	job->err = errno;
	snprintf(job->error, sizeof(job->error), "%s", error);
	/* closes and unlinks the tmp/ file; NULL after a commit */
	store_delivery_abort(&job->d);
}

static void batch_free(struct lmtp_batch *batch)
{
	for (unsigned i = 0; i < batch->trans->rcpts_count; i++) {
		store_delivery_abort(&batch->jobs[i].d);
		lmtp_su_put(&batch->jobs[i].su);
	}
	free(batch->jobs);
	lmtp_data_free(&batch->data);
	lmtp_trans_free(&batch->trans);
	free(batch);
}

/* The reply (and log line) for recipient i. */
static void batch_reply(struct lmtp_batch *batch, unsigned i, long msecs)
{
	struct lmtp_client *client = batch->client;
	const struct lmtp_rcpt_job *job = &batch->jobs[i];
	const struct lmtp_rcpt *rcpt = &batch->trans->rcpts[i];

	metrics_inc(job->result == LMTP_JOB_OK ? METRICS_LMTP_DELIVERED :
		    METRICS_LMTP_FAILED);
	switch (job->result) {
	case LMTP_JOB_OK:
		/* RFC 2033 section 4.2: 250 only once the message is safe */
		lmtp_reply(client, "250 2.0.0 <%s> Saved", rcpt->addr);
		log_info("lmtp deliver id=%llu user=%s size=%llu msgid=%s "
			 "ms=%ld", (unsigned long long)batch->conn_id,
			 rcpt->user, (unsigned long long)batch->data->size,
			 batch->data->hdr.msgid, msecs);
		break;
	case LMTP_JOB_TOO_BIG:
		/* RFC 1870 section 6.2 */
		lmtp_reply(client, "552 5.3.4 <%s> Message size exceeds "
			   "fixed maximum message size", rcpt->addr);
		break;
	case LMTP_JOB_NO_SPOOL:
		lmtp_reply(client, "452 4.3.1 <%s> Insufficient system "
			   "storage", rcpt->addr);
		break;
	case LMTP_JOB_FAILED:
		log_error("lmtp deliver failed id=%llu user=%s error=\"%s: "
			  "%s\"", (unsigned long long)batch->conn_id,
			  rcpt->user, job->error, strerror(job->err));
		if (is_enospc(job->err))
			lmtp_reply(client, "452 4.2.2 <%s> Mailbox full",
				   rcpt->addr);
		else
			lmtp_reply(client, "451 4.3.0 <%s> Temporary failure",
				   rcpt->addr);
		break;
	}
}

static void batch_log_orphan(struct lmtp_batch *batch)
{
	for (unsigned i = 0; i < batch->trans->rcpts_count; i++) {
		if (batch->jobs[i].result != LMTP_JOB_OK)
			continue;
		/* durable but unacknowledged: the client will send it again */
		log_warn("lmtp id=%llu user=%s: delivered after the client "
			 "disconnected (not acknowledged) size=%llu msgid=%s",
			 (unsigned long long)batch->conn_id,
			 batch->trans->rcpts[i].user,
			 (unsigned long long)batch->data->size,
			 batch->data->hdr.msgid);
	}
}

static void batch_finish(struct lmtp_batch *batch)
{
	struct lmtp_client *client = batch->client;
	long msecs = msecs_since(&batch->start);

	if (client == NULL) {
		batch_log_orphan(batch);
		batch_free(batch);
		return;
	}
	for (unsigned i = 0; i < batch->trans->rcpts_count; i++)
		batch_reply(batch, i, msecs);
	batch_free(batch);
	if (client->batch == batch) {
		client->batch = NULL;
		conn_pause_input(client->conn, false);
		/* pipelined commands after the dot (no-op when called from
		 * inside the input loop) */
		lmtp_client_input(client);
	}
}

/* Loop thread. */
static void job_done(void *ctx)
{
	struct lmtp_rcpt_job *job = ctx;
	struct lmtp_batch *batch = job->batch;

	/* back to the cache: the job is over, nobody else has it */
	lmtp_su_put(&job->su);
	if (--batch->pending == 0 && !batch->is_submitting)
		batch_finish(batch);
}

static void batch_submit(struct lmtp_batch *batch, struct lmtp_rcpt_job *job)
{
	struct threadpool *pool = lmtp_pool(conn_event_base(
		batch->client->conn));

	batch->pending++;
	if (pool != NULL) {
		threadpool_submit(pool, job_work, job_done, job);
	} else {
		/* no pool at all: block the loop rather than lose mail */
		job_work(job);
		job_done(job);
	}
}

/* Opens recipient i's file and queues its job (or records why not). */
static void batch_prepare(struct lmtp_batch *batch, unsigned i)
{
	struct lmtp_data *data = batch->data;
	struct lmtp_rcpt_job *job = &batch->jobs[i];
	const struct lmtp_rcpt *rcpt = &batch->trans->rcpts[i];

	job->batch = batch;
	if (data->is_too_big) {
		job->result = LMTP_JOB_TOO_BIG;
	} else if (data->spool_errno != 0) {
		job->result = LMTP_JOB_NO_SPOOL;
	} else if (data->write_errno != 0) {
		job->result = LMTP_JOB_FAILED;
		job->err = data->write_errno;
		snprintf(job->error, sizeof(job->error), "%s",
			 data->write_error);
	} else if (data->d != NULL) {
		/* written during DATA */
		job->d = data->d;
		job->su = data->su;
		data->d = NULL;
		data->su = NULL;
		batch_submit(batch, job);
	} else if (lmtp_delivery_open(batch->client->set, rcpt->user,
				      batch->trans->sender, rcpt->addr,
				      &job->su, &job->d, job->error) < 0) {
		job->result = LMTP_JOB_FAILED;
		job->err = errno;
	} else {
		batch_submit(batch, job);
	}
}

void lmtp_batch_start(struct lmtp_client *client)
{
	struct lmtp_batch *batch = xcalloc(1, sizeof(*batch));
	unsigned count = client->trans->rcpts_count;

	clock_gettime(CLOCK_MONOTONIC, &batch->start);
	batch->client = client;
	batch->conn_id = conn_id(client->conn);
	batch->trans = client->trans;
	batch->data = client->data;
	client->trans = NULL;
	client->data = NULL;
	batch->jobs = xcalloc(count, sizeof(*batch->jobs));
	lmtp_hdr_scan_finish(&batch->data->hdr);
	/* replies stay in order (RFC 2920 section 3.1): nothing more is
	 * read until every recipient has its reply */
	client->batch = batch;
	conn_pause_input(client->conn, true);
	batch->is_submitting = true;
	for (unsigned i = 0; i < count; i++)
		batch_prepare(batch, i);
	batch->is_submitting = false;
	if (batch->pending == 0)
		batch_finish(batch);
}

void lmtp_batch_orphan(struct lmtp_batch **_batch)
{
	struct lmtp_batch *batch = *_batch;

	if (batch == NULL)
		return;
	*_batch = NULL;
	batch->client = NULL;
}
