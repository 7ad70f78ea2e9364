#ifndef IMAP_SEARCH_RUN_H
#define IMAP_SEARCH_RUN_H
/* imap_search_run.h: what SEARCH (cmd_search.c) and SORT/THREAD
 * (cmd_sort.c) share: parsing "[CHARSET c] keys" into a program,
 * evaluating it over the selected view in time slices, the RETURN (...)
 * options and the "* SEARCH n..." / "* ESEARCH ..." reply pieces.
 * Nothing here sorts or threads. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_client.h"
#include "imap/imap_search.h"

/* RFC 4731 3.1 / RFC 5267 3 result options (SAVE: RFC 5182). */
enum imap_search_return {
	IMAP_SEARCH_RETURN_MIN = 1 << 0,
	IMAP_SEARCH_RETURN_MAX = 1 << 1,
	IMAP_SEARCH_RETURN_ALL = 1 << 2,
	IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	IMAP_SEARCH_RETURN_SAVE = 1 << 4,
};

/* Called per match, in view order, with cmd->ctx as the command left it.
 * Returns true when it read a file (the slice clock is read sooner). */
typedef bool imap_search_match_func(struct imap_cmd *cmd, uint32_t seq,
				    const struct store_msg *msg);

/* One evaluation of a program over the view; embedded in the command's
 * context. Zero it, then set what and, optionally, match. */
struct imap_search_run {
	const char *what;		/* "search", "sort": log lines */
	imap_search_match_func *match;	/* NULL: matches go to seqs */
	struct imap_search_program *prog;
	uint32_t next_seq;		/* next message to look at (0: 1) */
	uint32_t *seqs;			/* matches, ascending (heap) */
	size_t count, cap;
	bool has_error;			/* a message could not be read */
};

/* Frees the program and the matches. */
void imap_search_run_deinit(struct imap_search_run *run);

/* RFC 4731 3.1: "RETURN (opt...)" at args[0]; options outside allowed
 * (enum imap_search_return) are errors; "RETURN ()" is ALL. Returns the
 * arguments used (0: no RETURN, 2) with the options ORed into *ret_r,
 * or -1. */
int imap_search_parse_return(const struct imap_arg *args, size_t count,
			     unsigned allowed, unsigned *ret_r);

/* Parses "[CHARSET c] key..." into run->prog and enables CONDSTORE for a
 * MODSEQ key. Returns 0, or -1 after replying BAD/NO. */
int imap_search_run_parse(struct imap_cmd *cmd, struct imap_search_run *run,
			  const struct imap_arg *args, size_t count);

/* Evaluates the next slice. Returns false after setting cmd->resume to
 * resume and waking it (the handler returns IMAP_CMD_AGAIN); true when
 * the whole view is done and the queued MIME trees are written. */
bool imap_search_run_slice(struct imap_cmd *cmd, struct imap_search_run *run,
			   int (*resume)(struct imap_cmd *cmd));

/* "* <name> n n n" with UIDs for UID commands, then " (MODSEQ m)" with
 * with_modseq and matches (RFC 7162 3.1.5). */
void imap_search_reply_list(struct imap_cmd *cmd, const char *name,
			    const uint32_t *seqs, size_t count,
			    bool with_modseq);

/* "* ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n [MODSEQ m]":
 * MIN/MAX are seqs[0] and seqs[count - 1]; ALL makes ascending runs
 * ranges; MIN/MAX/ALL/MODSEQ left out when nothing matched. */
void imap_search_reply_esearch(struct imap_cmd *cmd, const uint32_t *seqs,
			       size_t count, unsigned ret, bool with_modseq);

/* RFC 5182: "$" := the UIDs of seqs (SEARCH, or SORT in sort order);
 * 2.4: with MIN and/or MAX but neither ALL nor COUNT, only seqs[0]
 * and/or seqs[count - 1]. */
void imap_search_save(struct imap_client *client, const uint32_t *seqs,
		      size_t count, unsigned ret);

#endif
