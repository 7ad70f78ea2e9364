/* store.h: the only storage API protocols call. Mail lives in standard
 * Maildir folders (tmp/ new/ cur/, ":2,FLAGS" suffix, Maildir++ subfolders
 * ".Name"), readable by mutt, Dovecot and Courier. A per-user LMDB index
 * (<maildir>/heron.index) keeps each mailbox's UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ and per-message records (UID, flags, sizes, internal date,
 * modseq). UIDs are also appended to <maildir>/heron-uidlist (per folder)
 * so a lost or corrupt index is rebuilt from the Maildir without changing
 * the UIDs of files that are still there.
 *
 * Many processes (workers, `heron deliver`) use one user's store at once:
 * LMDB serialises writers; readers see consistent snapshots.
 *
 * All calls are synchronous file I/O. Errors: -1 with *error_r set to a
 * static or store-owned string valid until the next call on the same
 * object, and errno preserved (ENOSPC/EDQUOT mean "temporary, disk full"). */
#ifndef HERON_STORE_H
#define HERON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct settings;
struct store_user;
struct store_mailbox;
struct store_delivery;

/* System flags (RFC 3501 2.3.2) and their Maildir letters. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,	/* S */
	STORE_FLAG_ANSWERED = 1 << 1,	/* R */
	STORE_FLAG_FLAGGED = 1 << 2,	/* F */
	STORE_FLAG_DELETED = 1 << 3,	/* T */
	STORE_FLAG_DRAFT = 1 << 4,	/* D */
	STORE_FLAG_PASSED = 1 << 5,	/* P (no IMAP flag; kept) */
};

struct store_msg {
	uint32_t uid;
	uint32_t flags;		/* enum store_flag bits */
	uint64_t keywords;	/* bit i = keyword i of the mailbox (IMAP) */
	uint64_t size;		/* octets on disk */
	uint64_t vsize;		/* octets with every bare LF sent as CRLF: what
				   POP3 LIST and IMAP RFC822.SIZE report */
	time_t internal_date;	/* file mtime at first sight */
	uint64_t modseq;
	char *basename;		/* unique part of the file name, before ':';
				   also the POP3 UIDL (it never changes) */
	char *path;		/* current name relative to the Maildir:
				   "new/<name>" or "cur/<name>:2,FLAGS" */
};

/* ---- users ---- */

/* Opens (creating the Maildir and index when missing) the store of user,
 * at config_mail_path(set, user). A corrupt index is moved aside, logged
 * and rebuilt. */
int store_user_open(const struct settings *set, const char *user,
		    struct store_user **su_r, const char **error_r);
void store_user_close(struct store_user **su);
const char *store_user_name(const struct store_user *su);
const char *store_user_root(const struct store_user *su);

/* ---- delivery (LMTP, `heron deliver`, later IMAP APPEND) ---- */

/* Starts a new message in mailbox's tmp/. */
int store_delivery_begin(struct store_user *su, const char *mailbox,
			 struct store_delivery **d_r, const char **error_r);
/* Appends message bytes (LF line ends, as stored). */
int store_delivery_write(struct store_delivery *d, const void *data,
			 size_t len, const char **error_r);
/* fsync()s the file, moves it into new/ (or cur/ with flags when flags is
 * non-zero), fsync()s the directory, and only then returns 0: the message
 * is durable and may be acknowledged. internal_date 0 = now. On any error
 * the temporary file is removed. *uid_r may be NULL; when not NULL the
 * message is indexed at once and its UID returned. Frees d either way. */
int store_delivery_commit(struct store_delivery **d, uint32_t flags,
			  time_t internal_date, uint32_t *uid_r,
			  const char **error_r);
/* Removes the temporary file; frees d. Safe on NULL. */
void store_delivery_abort(struct store_delivery **d);

/* ---- mailboxes ---- */

/* "INBOX" (case-insensitive) is the Maildir itself; other names are
 * Maildir++ folders with '/' as the hierarchy separator. */
int store_mailbox_open(struct store_user *su, const char *name,
		       struct store_mailbox **mb_r, const char **error_r);
void store_mailbox_close(struct store_mailbox **mb);
/* Creates the Maildir++ folder for name (not INBOX): -1 with errno EEXIST
 * if it exists, EINVAL if the name is not allowed (see maildir.c). */
int store_mailbox_create(struct store_user *su, const char *name,
			 const char **error_r);

/* Takes the POP3 maildrop lock (RFC 1939 section 8: one POP3 session per
 * maildrop). Non-blocking: -1 with errno EWOULDBLOCK if another session
 * has it. Released by store_mailbox_close. Deliveries and IMAP are not
 * affected by it. */
int store_mailbox_lock_pop3(struct store_mailbox *mb, const char **error_r);

/* Brings the index up to date with the Maildir (new, vanished and renamed
 * files, flags) and refreshes this view's message list. New messages get
 * UIDs in delivery order. Returns 0 or -1. */
int store_mailbox_sync(struct store_mailbox *mb, const char **error_r);
uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mb);
uint32_t store_mailbox_uidnext(const struct store_mailbox *mb);
/* Messages in this view, ordered by UID; index 0..count-1. The pointers
 * stay valid until the next sync or close. */
uint32_t store_mailbox_count(const struct store_mailbox *mb);
const struct store_msg *store_mailbox_msg(const struct store_mailbox *mb,
					  uint32_t index);

/* Opens the message file read-only, following it if another session
 * renamed it (flag change, new/ -> cur/). Returns an fd or -1 (errno
 * ENOENT if it was expunged meanwhile). */
int store_msg_open(struct store_mailbox *mb, const struct store_msg *msg,
		   const char **error_r);
/* Replaces a message's system flags (renames the file). */
int store_msg_set_flags(struct store_mailbox *mb, uint32_t uid,
			uint32_t flags, const char **error_r);
/* Removes messages by UID (files unlinked, index records dropped). Missing
 * files are not an error. The view is refreshed. */
int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids,
			  size_t count, const char **error_r);

#endif
