/* lmtp_deliver.c: putting a message into a user's INBOX, for the LMTP
 * server (opening the delivery and copying from the spool file; the
 * commit runs in lmtp_batch.c) and for `heron deliver` (streamed from
 * stdin).
 *
 * Every delivery prepends "Return-Path: <sender>" (RFC 5321 section 4.4)
 * and "Delivered-To: rcpt". Success is reported only after
 * store_delivery_commit returned 0, i.e. the file is fsync()ed in new/.
 * Memory: one LMTP_COPY_BUF_SIZE buffer on the stack per call. */
#include "lmtp/lmtp_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/passdb.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#define LMTP_COPY_BUF_SIZE (32 * 1024)

/* sysexits.h values, spelled out to keep the contract visible. */
#define LMTP_EX_OK 0
#define LMTP_EX_USAGE 64
#define LMTP_EX_DATAERR 65
#define LMTP_EX_NOUSER 67
#define LMTP_EX_TEMPFAIL 75

static int deliver_headers(struct store_delivery *d, const char *sender,
			   const char *rcpt, const char **error_r)
{
	char *hdr = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n",
			      sender, rcpt);
	int ret = store_delivery_write(d, hdr, strlen(hdr), error_r);

	free(hdr);
	return ret;
}

int lmtp_deliver_copy_spool(struct store_delivery *d, int spool_fd,
			    uint64_t size, const char **error_r)
{
	char buf[LMTP_COPY_BUF_SIZE];
	uint64_t off = 0;

	while (off < size) {
		size_t want = size - off < sizeof(buf) ?
			(size_t)(size - off) : sizeof(buf);
		ssize_t ret = pread(spool_fd, buf, want, (off_t)off);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;
			*error_r = "pread(spool) failed";
			return -1;
		}
		if (store_delivery_write(d, buf, (size_t)ret, error_r) < 0)
			return -1;
		off += (uint64_t)ret;
	}
	return 0;
}

static int delivery_open_once(const struct settings *set, const char *user,
			      const char *sender, const char *rcpt,
			      struct store_user **su_r,
			      struct store_delivery **d_r, bool *is_cached_r,
			      char *error)
{
	const char *err_text;
	int saved_errno;

	*su_r = NULL;
	*d_r = NULL;
	if (lmtp_su_get(set, user, su_r, is_cached_r, &err_text) < 0)
		goto fail;
	if (store_delivery_begin(*su_r, "INBOX", d_r, &err_text) < 0 ||
	    deliver_headers(*d_r, sender, rcpt, &err_text) < 0)
		goto fail;
	return 0;
fail:
	saved_errno = errno;
	snprintf(error, LMTP_ERROR_MAX, "%s", err_text);
	store_delivery_abort(d_r);
	if (*su_r != NULL)
		store_user_close(su_r);
	errno = saved_errno;
	return -1;
}

int lmtp_delivery_open(const struct settings *set, const char *user,
		       const char *sender, const char *rcpt,
		       struct store_user **su_r, struct store_delivery **d_r,
		       char *error)
{
	bool is_cached;

	if (delivery_open_once(set, user, sender, rcpt, su_r, d_r,
			       &is_cached, error) == 0)
		return 0;
	if (!is_cached)
		return -1;
	/* the cached store user may be stale (Maildir removed): a fresh
	 * store_user_open recreates the directories */
	return delivery_open_once(set, user, sender, rcpt, su_r, d_r,
				  &is_cached, error);
}

/* ---- heron deliver ---- */

/* stdin -> LF line ends, minus a leading mbox "From " line. */
struct cli_conv {
	bool is_skipping_from;
	bool has_held_cr;
};

static size_t cli_convert(struct cli_conv *cv, const char *in, size_t len,
			  char *out)
{
	size_t i = 0, o = 0;

	if (cv->is_skipping_from) {
		const char *lf = memchr(in, '\n', len);

		if (lf == NULL)
			return 0;
		cv->is_skipping_from = false;
		i = (size_t)(lf - in) + 1;
	}
	for (; i < len; i++) {
		if (cv->has_held_cr) {
			cv->has_held_cr = false;
			if (in[i] != '\n')
				out[o++] = '\r';
		}
		if (in[i] == '\r')
			cv->has_held_cr = true;
		else
			out[o++] = in[i];
	}
	return o;
}

/* Reads at least min bytes (unless EOF) into buf. Returns bytes or -1. */
static ssize_t cli_read(int fd, char *buf, size_t size, size_t min)
{
	size_t have = 0;

	while (have < size) {
		ssize_t ret = read(fd, buf + have, size - have);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -1;
		if (ret == 0)
			break;
		have += (size_t)ret;
		if (have >= min)
			break;
	}
	return (ssize_t)have;
}

struct cli_msg {
	struct store_delivery *d;
	uint64_t max_size;	/* 0 = unlimited */
	uint64_t size;
	struct lmtp_hdr_scan hdr;
};

static int cli_put(struct cli_msg *msg, const char *data, size_t len,
		   const char **error_r)
{
	const char *error;

	msg->size += len;
	if (msg->max_size != 0 && msg->size > msg->max_size) {
		*error_r = "message too big";
		return LMTP_EX_DATAERR;
	}
	lmtp_hdr_scan_feed(&msg->hdr, data, len);
	if (store_delivery_write(msg->d, data, len, &error) < 0) {
		*error_r = error;
		return LMTP_EX_TEMPFAIL;
	}
	return 0;
}

/* Copies in_fd into the delivery. Returns 0 or a sysexits code. */
static int cli_copy(int in_fd, struct cli_msg *msg, const char **error_r)
{
	char in[LMTP_COPY_BUF_SIZE], out[LMTP_COPY_BUF_SIZE + 1];
	struct cli_conv cv = { false, false };
	bool is_first = true;
	ssize_t n;
	int ret;

	for (;;) {
		n = cli_read(in_fd, in, sizeof(in), is_first ? 5 : 1);
		if (n < 0) {
			*error_r = "read(stdin) failed";
			return LMTP_EX_TEMPFAIL;
		}
		if (n == 0)
			break;
		if (is_first && n >= 5 && memcmp(in, "From ", 5) == 0)
			cv.is_skipping_from = true;
		is_first = false;
		ret = cli_put(msg, out, cli_convert(&cv, in, (size_t)n, out),
			      error_r);
		if (ret != 0)
			return ret;
	}
	if (cv.has_held_cr)
		return cli_put(msg, "\r", 1, error_r);
	return 0;
}

/* RCPT rule: the name as given, else its local part. */
static const char *cli_find_user(const struct passdb *db, const char *user,
				 char **local_r)
{
	const char *at = strrchr(user, '@');

	*local_r = NULL;
	if (passdb_user_exists(db, user))
		return user;
	if (at == NULL || at == user)
		return NULL;
	*local_r = xstrndup(user, (size_t)(at - user));
	return passdb_user_exists(db, *local_r) ? *local_r : NULL;
}

static long elapsed_msecs(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000L +
		(now.tv_nsec - start->tv_nsec) / 1000000L;
}

static int cli_deliver(const struct settings *set, const char *user,
		       const char *rcpt, const char *sender, int in_fd)
{
	struct cli_msg msg = { .max_size = set->max_message_size };
	struct store_user *su;
	struct timespec start;
	const char *error;
	int ret = LMTP_EX_TEMPFAIL;

	clock_gettime(CLOCK_MONOTONIC, &start);
	lmtp_hdr_scan_init(&msg.hdr);
	if (store_user_open(set, user, &su, &error) < 0) {
		log_error("deliver: store_user_open(%s) failed: %s", user,
			  error);
		return LMTP_EX_TEMPFAIL;
	}
	if (store_delivery_begin(su, "INBOX", &msg.d, &error) < 0 ||
	    deliver_headers(msg.d, sender, rcpt, &error) < 0)
		goto out_fail;
	ret = cli_copy(in_fd, &msg, &error);
	if (ret == 0 &&
	    store_delivery_commit(&msg.d, 0, 0, NULL, &error) < 0)
		ret = LMTP_EX_TEMPFAIL;
	if (ret == 0) {
		lmtp_hdr_scan_finish(&msg.hdr);
		log_info("lmtp deliver id=deliver-%ld user=%s size=%llu "
			 "msgid=%s ms=%ld", (long)getpid(), user,
			 (unsigned long long)msg.size, msg.hdr.msgid,
			 elapsed_msecs(&start));
		goto out_close;
	}
out_fail:
	if (ret == LMTP_EX_DATAERR)
		log_error("deliver: user=%s refused: %s", user, error);
	else
		log_error("deliver: user=%s failed: %s: %s", user, error,
			  strerror(errno));
	store_delivery_abort(&msg.d);
out_close:
	store_user_close(&su);
	return ret;
}

int lmtp_deliver_cli(const struct settings *set, const char *user,
		     const char *sender, int in_fd)
{
	struct passdb *db;
	const char *found;
	char *error, *local, *name;
	int ret;

	if (user == NULL || *user == '\0')
		return LMTP_EX_USAGE;
	if (set->passwd_file == NULL) {
		log_error("deliver: passwd_file is not set");
		return LMTP_EX_TEMPFAIL;
	}
	db = passdb_load(set->passwd_file, &error);
	if (db == NULL) {
		log_error("deliver: passdb_load(%s) failed: %s",
			  set->passwd_file, error);
		free(error);
		return LMTP_EX_TEMPFAIL;
	}
	found = cli_find_user(db, user, &local);
	name = found == NULL ? NULL : xstrdup(found);
	free(local);
	passdb_free(&db);
	if (name == NULL) {
		log_info("deliver: user=%s unknown", user);
		return LMTP_EX_NOUSER;
	}
	ret = cli_deliver(set, name, user, sender == NULL ? "" : sender,
			  in_fd);
	free(name);
	return ret;
}
