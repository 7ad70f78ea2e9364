/* lmtp_private.h: internals shared by the files of src/lmtp/.
 *
 *   lmtp_parse.c     command keyword, MAIL/RCPT path and parameter syntax
 *                    (pure: bytes in, views out; unit tested and fuzzed)
 *   lmtp_data.c      incremental DATA decoder and Message-ID scanner (pure)
 *   lmtp_client.c    the session: input loop, replies, error counting
 *   lmtp_commands.c  the command table and handlers
 *   lmtp_deliver.c   spool file, opening a delivery, the CLI
 *   lmtp_batch.c     one transaction's deliveries on the thread pool and
 *                    the per-recipient replies
 *   lmtp_cache.c     per-worker caches (lookups, store users), the pool */
#ifndef HERON_LMTP_PRIVATE_H
#define HERON_LMTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lmtp/lmtp.h"

struct conn;
struct settings;
struct auth_request;
struct event_base;
struct store_user;
struct store_delivery;
struct threadpool;

/* RFC 5321 section 4.5.3.1.3: a path is at most 256 octets including the
 * angle brackets. */
#define LMTP_PATH_MAX 256
/* Parameters per MAIL/RCPT command we parse; more is a syntax error. */
#define LMTP_PARAMS_MAX 8
/* Client errors (5xx for syntax/sequence) before 421 and disconnect. */
#define LMTP_MAX_ERRORS 10
/* Command line ceiling when max_line_length is unset. RFC 5321 section
 * 4.5.3.1.4 asks for at least 512. */
#define LMTP_DEFAULT_LINE_MAX 4096
/* Bytes of one (unfolded) header field kept while looking for
 * Message-ID; longer fields are skipped. */
#define LMTP_HDR_FIELD_MAX 998
#define LMTP_MSGID_MAX 250
/* RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets. */
#define LMTP_REPLY_MAX 510
/* DATA input is decoded into a buffer of this many bytes, written to
 * the file when full or when the input runs dry. */
#define LMTP_DATA_CHUNK (64 * 1024)
/* Threads per worker for fsync/link (lmtp_batch.c). */
#define LMTP_POOL_THREADS 8
/* Positive recipient lookups kept per worker (lmtp_cache.c). A user
 * removed from the password file still gets mail for up to the TTL. */
#define LMTP_USER_CACHE_SIZE 512
#define LMTP_USER_CACHE_TTL_SECS 60
/* Idle open store users kept per worker (lmtp_cache.c); each holds the
 * LMDB environment open (about 3 fds). */
#define LMTP_SU_CACHE_MAX 64
#define LMTP_SU_CACHE_TTL_SECS 30
/* A store error message kept for a reply/log after the store call. */
#define LMTP_ERROR_MAX 256

/* ---- lmtp_parse.c ---- */

enum lmtp_cmd {
	LMTP_CMD_UNKNOWN,
	LMTP_CMD_LHLO,
	LMTP_CMD_HELO,
	LMTP_CMD_EHLO,
	LMTP_CMD_MAIL,
	LMTP_CMD_RCPT,
	LMTP_CMD_DATA,
	LMTP_CMD_RSET,
	LMTP_CMD_NOOP,
	LMTP_CMD_QUIT,
	LMTP_CMD_VRFY,
	LMTP_CMD_STARTTLS,
};

/* Splits a command line (without CRLF) into its keyword and arguments.
 * The keyword ends at the first SP (case-insensitive match); *args_r
 * points after the single SP, or at the end of the line. Never fails:
 * unrecognised keywords give LMTP_CMD_UNKNOWN. */
enum lmtp_cmd lmtp_cmd_parse(const char *line, size_t len,
			     const char **args_r, size_t *args_len_r);

struct lmtp_param {
	const char *key;	/* views into the command line */
	size_t key_len;
	const char *value;	/* NULL when the parameter has no "=" */
	size_t value_len;
};

struct lmtp_path {
	/* The mailbox as the client wrote it (source route dropped), used
	 * in replies and headers; "" for the null reverse-path "<>". */
	char addr[LMTP_PATH_MAX + 1];
	/* The same mailbox with the local part unquoted (RFC 5321 section
	 * 4.1.2: quoted forms are equivalent), used for user lookups. */
	char user[LMTP_PATH_MAX + 1];
	struct lmtp_param params[LMTP_PARAMS_MAX];
	unsigned params_count;
};

enum lmtp_parse_error {
	LMTP_PARSE_OK,
	LMTP_PARSE_PREFIX,	/* missing "FROM:" / "TO:" */
	LMTP_PARSE_PATH,	/* bad path syntax */
	LMTP_PARSE_TOO_LONG,	/* path over LMTP_PATH_MAX */
	LMTP_PARSE_PARAMS,	/* bad parameter syntax or too many */
};

/* Parses the arguments of MAIL ("FROM:<path> params", allow_null true) or
 * RCPT ("TO:<path> params"). One SP after the colon is tolerated. Returns
 * LMTP_PARSE_OK and fills *path_r, whose params point into args. */
enum lmtp_parse_error lmtp_path_parse(const char *args, size_t len,
				      bool is_mail, struct lmtp_path *path_r);

/* ---- lmtp_data.c ---- */

enum lmtp_data_state {
	LMTP_DATA_LINE_START,	/* at the start of a line */
	LMTP_DATA_DOT,		/* a line started with '.' */
	LMTP_DATA_DOT_CR,	/* ".\r" at the start of a line */
	LMTP_DATA_MID,		/* inside a line */
	LMTP_DATA_CR,		/* a CR inside a line, not yet emitted */
	LMTP_DATA_DONE,		/* the end marker was seen */
};

struct lmtp_data_decoder {
	enum lmtp_data_state state;
};

/* RFC 5321 section 4.5.2: removes dot-stuffing, turns CRLF (and bare LF)
 * line ends into LF and stops after the terminating "." line (".\r\n" or
 * ".\n"). out must hold in_len + 1 bytes (a CR held back by the previous
 * call may come out now). *consumed_r is how many input bytes belonged to
 * the DATA stream: the rest is pipelined commands. Returns 1 when the end
 * was reached, 0 when more input is needed. Bare CRs are kept. */
int lmtp_data_decode(struct lmtp_data_decoder *dec,
		     const unsigned char *in, size_t in_len,
		     unsigned char *out, size_t *out_len_r,
		     size_t *consumed_r);

/* Looks through the first header block of LF-ended message text for the
 * first Message-ID field. Fed incrementally; bounded memory. */
struct lmtp_hdr_scan {
	bool is_done;		/* header block over or Message-ID found */
	bool is_skipping;	/* current field is longer than the buffer */
	bool at_line_start;
	size_t len;
	char field[LMTP_HDR_FIELD_MAX];
	char msgid[LMTP_MSGID_MAX + 1];	/* "" when none was found */
};

void lmtp_hdr_scan_init(struct lmtp_hdr_scan *scan);
void lmtp_hdr_scan_feed(struct lmtp_hdr_scan *scan, const void *data,
			size_t len);
/* Call at the end of the message (a header block without body). */
void lmtp_hdr_scan_finish(struct lmtp_hdr_scan *scan);

/* ---- lmtp_deliver.c ---- */

/* Starts a message in user's INBOX (store user from lmtp_su_get) with
 * "Return-Path: <sender>" and "Delivered-To: rcpt" written. On failure
 * with a cached store user (its Maildir may have been removed) it tries
 * once more with a fresh one. Returns 0, or -1 with errno and the error
 * text copied into error (LMTP_ERROR_MAX bytes); nothing is left open
 * then. Loop thread only. */
int lmtp_delivery_open(const struct settings *set, const char *user,
		       const char *sender, const char *rcpt,
		       struct store_user **su_r, struct store_delivery **d_r,
		       char *error);
/* Appends size bytes at offset 0 of spool_fd to d (any thread). */
int lmtp_deliver_copy_spool(struct store_delivery *d, int spool_fd,
			    uint64_t size, const char **error_r);

/* ---- lmtp_cache.c (loop thread only) ---- */

/* The canonical user cached for a RCPT name, or NULL. */
const char *lmtp_user_cache_get(const char *name);
void lmtp_user_cache_put(const char *name, const char *user);
/* store_user_open, or an idle one from the cache (*is_cached_r). The
 * caller has it exclusively until lmtp_su_put. */
int lmtp_su_get(const struct settings *set, const char *user,
		struct store_user **su_r, bool *is_cached_r,
		const char **error_r);
/* Gives a store user back to the cache (or closes it); NULLs *su. */
void lmtp_su_put(struct store_user **su);
/* The worker's delivery thread pool (created on first use), or NULL
 * when it cannot be created. */
struct threadpool *lmtp_pool(struct event_base *base);

/* ---- lmtp_client.c / lmtp_commands.c ---- */

struct lmtp_rcpt {
	char *addr;		/* as given, for replies and Delivered-To */
	char *user;		/* canonical user from the lookup */
};

/* Exists only between MAIL and the end of DATA / RSET. */
struct lmtp_trans {
	char *sender;		/* "" for <> */
	struct lmtp_rcpt *rcpts;
	unsigned rcpts_count, rcpts_alloc;

	/* RCPT lookup in progress (input is paused meanwhile). */
	struct auth_request *lookup_req;
	char *lookup_addr;	/* the address as given */
	char *lookup_name;	/* first name looked up: the cache key */
	char *lookup_local;	/* local part to try next, or NULL */
	bool is_lookup_pending;
	unsigned lookup_seq;
};

/* Exists only while DATA is being received. */
struct lmtp_data {
	struct lmtp_data_decoder dec;
	/* One recipient: the message goes straight into its Maildir tmp/
	 * file (su, d); several: into an anonymous spool file (spool_fd),
	 * copied per recipient after the final dot. */
	int spool_fd;
	int spool_errno;	/* first spool write error, 0 if none */
	struct store_user *su;
	struct store_delivery *d;
	int write_errno;	/* direct write failed (d is gone), 0 if not */
	char write_error[LMTP_ERROR_MAX];
	uint64_t size;		/* decoded bytes */
	bool is_too_big;
	struct lmtp_hdr_scan hdr;
};

enum lmtp_job_result {
	LMTP_JOB_OK,
	LMTP_JOB_FAILED,	/* err, error */
	LMTP_JOB_TOO_BIG,	/* over max_message_size */
	LMTP_JOB_NO_SPOOL,	/* the spool could not be written */
};

/* One recipient's delivery. su and d belong to the job alone while it
 * is on the pool. */
struct lmtp_rcpt_job {
	struct lmtp_batch *batch;
	struct store_user *su;
	struct store_delivery *d;
	enum lmtp_job_result result;
	int err;
	char error[LMTP_ERROR_MAX];
};

/* The deliveries of one transaction after its final dot. It owns the
 * transaction and the DATA state, so it survives the session: the
 * session's destroy only clears client (orphaned), and the last job's
 * completion frees it. */
struct lmtp_batch {
	struct lmtp_client *client;	/* NULL once the session is gone */
	uint64_t conn_id;		/* for logs after that */
	struct lmtp_trans *trans;
	struct lmtp_data *data;
	struct lmtp_rcpt_job *jobs;	/* trans->rcpts_count */
	unsigned pending;		/* jobs on the pool */
	bool is_submitting;
	struct timespec start;
};

struct lmtp_client {
	struct conn *conn;
	const struct settings *set;
	struct lmtp_trans *trans;	/* NULL when idle */
	struct lmtp_data *data;		/* NULL unless in DATA */
	/* Deliveries in flight (input is paused meanwhile). */
	struct lmtp_batch *batch;
	unsigned errors;
	bool has_lhlo;
	bool is_in_input;	/* inside lmtp_client_input: no recursion */
	bool is_closing;
};

void lmtp_client_input(struct lmtp_client *client);
/* Sends one reply line; fmt without CRLF. Lines are cut at
 * LMTP_REPLY_MAX bytes. */
void lmtp_reply(struct lmtp_client *client, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *lmtp_hostname(const struct settings *set);
/* Counts a client mistake; the LMTP_MAX_ERRORS-th one sends 421 and
 * closes. Returns true then: the caller sends no other reply. */
bool lmtp_client_error(struct lmtp_client *client);
void lmtp_client_close(struct lmtp_client *client, const char *reason);
void lmtp_trans_free(struct lmtp_trans **trans);
void lmtp_data_free(struct lmtp_data **data);

/* Runs one command line. */
void lmtp_command_run(struct lmtp_client *client, const char *line,
		      size_t len);
/* Feeds conn_input to the DATA decoder; delivers at the end. */
void lmtp_data_input(struct lmtp_client *client);

/* ---- lmtp_batch.c ---- */

/* After the final dot: takes client->trans and client->data, delivers
 * to every recipient (blocking parts on the pool) and then sends one
 * reply per recipient in RCPT order. Input is paused until then. */
void lmtp_batch_start(struct lmtp_client *client);
/* The session is going away: the batch finishes without it. */
void lmtp_batch_orphan(struct lmtp_batch **batch);

#endif
