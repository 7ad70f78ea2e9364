/* imap_search.h: IMAP SEARCH programs (RFC 3501 / RFC 9051 6.4.4, RFC 5032
 * OLDER/YOUNGER, RFC 7162 MODSEQ, RFC 5182 "$"): parsing the search keys
 * into a tree and evaluating it against one message at a time. No session
 * state and no I/O of its own: cmd_search.c gives it the view's numbers and
 * a function that reads the message file.
 *
 * Evaluation is in two steps. imap_search_eval_cheap() decides what it can
 * from the index record (flags, keywords, sizes, dates, numbers, modseq)
 * and answers IMAP_SEARCH_MAYBE only when a header or body key still
 * matters. imap_search_eval_content() then reads the message: first its
 * header (into a buffer of at most IMAP_SEARCH_HEADER_MAX bytes), and only
 * when the keys are still undecided the body, streamed in
 * IMAP_SEARCH_CHUNK_SIZE chunks: text/ * parts are decoded (base64, QP),
 * converted to UTF-8 (iconv) and case-folded (unicode.h) before a
 * substring search. Header values are RFC 2047 decoded; FROM/TO/CC/BCC
 * also match "name <mailbox@domain>" as parsed. A body scan stops as
 * soon as every body key has matched.
 *
 * Dates: BEFORE/ON/SINCE compare the day of the internal date in the
 * server's local time zone (as RFC 3501 asks and Dovecot does); SENT*
 * use the Date: header's day in its own zone, falling back to the
 * internal date when it is missing or unparseable. */
#ifndef HERON_IMAP_SEARCH_H
#define HERON_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "imap/imap_parser.h"
#include "store/store.h"

/* Header bytes read and searched (a longer header is cut there; the rest
 * counts as body). */
#define IMAP_SEARCH_HEADER_MAX (256 * 1024)
#define IMAP_SEARCH_CHUNK_SIZE (64 * 1024)
/* Nesting of NOT/OR/parentheses accepted. */
#define IMAP_SEARCH_MAX_DEPTH 64

enum imap_search_result {
	IMAP_SEARCH_NO = 0,
	IMAP_SEARCH_YES = 1,
	IMAP_SEARCH_MAYBE = 2,
};

enum imap_search_error {
	IMAP_SEARCH_ERR_SYNTAX = -1,	/* BAD */
	IMAP_SEARCH_ERR_CHARSET = -2,	/* NO [BADCHARSET] */
};

/* What the parser needs from the session. */
struct imap_search_env {
	uint32_t msg_count;		/* '*' of sequence sets */
	uint32_t max_uid;		/* '*' of UID sets (0: empty view) */
	const uint32_t *saved_uids;	/* "$" (RFC 5182), ascending */
	size_t saved_count;
	/* Keyword name -> bit index; -1 when the mailbox has no such
	 * keyword (KEYWORD never matches, UNKEYWORD always). */
	int (*keyword_index)(void *ctx, const char *name, unsigned *idx_r);
	void *ctx;
	time_t now;			/* OLDER/YOUNGER */
};

/* One message as the evaluator sees it. */
struct imap_search_msg {
	uint32_t seq;
	const struct store_msg *msg;
	bool is_recent;
};

/* Reads up to size bytes at offset; returns the count, 0 at the end, -1
 * on error (errno set). */
typedef ssize_t imap_search_read_func(void *ctx, uint64_t offset, void *buf,
				      size_t size);

struct imap_search_key;

struct imap_search_program {
	struct imap_search_key *root;	/* an AND */
	bool has_modseq;		/* a MODSEQ key: RFC 7162 3.1.5 */
	bool needs_content;		/* header or body keys */
	time_t now;			/* OLDER/YOUNGER reference */
	/* scratch of the content evaluation (imap_search.c) */
	struct imap_search_scratch *scratch;
};

/* Parses search keys args[0..count) (an optional leading "CHARSET name"
 * included). Search strings are converted from the charset to UTF-8 and
 * case-folded. Returns 0 with *prog_r (free with imap_search_free), or an
 * enum imap_search_error with a static *error_r. */
int imap_search_parse(const struct imap_arg *args, size_t count,
		      const struct imap_search_env *env,
		      struct imap_search_program **prog_r,
		      const char **error_r);
void imap_search_free(struct imap_search_program **prog);

/* Decides from the index record alone: YES, NO, or MAYBE when message
 * content is needed. */
enum imap_search_result
imap_search_eval_cheap(struct imap_search_program *prog,
		       const struct imap_search_msg *m);
/* Full evaluation reading the message through read(ctx, ...). Returns
 * YES or NO, or -1 when reading failed (errno from read). */
int imap_search_eval_content(struct imap_search_program *prog,
			     const struct imap_search_msg *m,
			     imap_search_read_func *read, void *read_ctx);

/* An imap_search_read_func for a message file: read_ctx points to a
 * struct imap_search_file (first member of a larger context is fine).
 * Maildir files never change, so size (the indexed size) is the end. */
struct imap_search_file {
	int fd;
	uint64_t size;
};
ssize_t imap_search_file_read(void *read_ctx, uint64_t offset, void *buf,
			      size_t size);

/* imap_search_eval_content with the MIME structure cache: parts_get
 * returns a cached part tree (or NULL), parts_put receives one the
 * evaluation had to parse. Either may be NULL. */
struct message_part;
typedef struct message_part *imap_search_parts_get_func(void *read_ctx);
typedef void imap_search_parts_put_func(void *read_ctx,
					const struct message_part *root);
int imap_search_eval_content_parts(struct imap_search_program *prog,
				   const struct imap_search_msg *m,
				   imap_search_read_func *read, void *read_ctx,
				   imap_search_parts_get_func *parts_get,
				   imap_search_parts_put_func *parts_put);

#endif
