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

/* Most keywords a mailbox can have (RFC 3501 2.3.2 keywords; the
 * PERMANENTFLAGS "\*" ends when the table is full). Indices are stable
 * for the life of the mailbox. The first 26 also live in file names. */
#define STORE_KEYWORDS_MAX 64
/* Longest keyword name accepted. */
#define STORE_KEYWORD_NAME_MAX 128

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
	char *basename;		/* unique part of the file name, before ':'
				   (it never changes) */
	char *path;		/* current name relative to the Maildir:
				   "new/<name>" or "cur/<name>:2,FLAGS".
				   Both NULL in a STORE_OPEN_NO_NAMES view */
};

/* Flag change operations (IMAP STORE FLAGS / +FLAGS / -FLAGS). */
enum store_flag_op {
	STORE_FLAGS_REPLACE,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

/* Per-message outcome of store_msgs_update_flags. */
enum store_update_status {
	STORE_UPDATE_CHANGED,	/* flags changed; modseq is the new one */
	STORE_UPDATE_UNCHANGED,	/* already so; modseq is the current one */
	STORE_UPDATE_MODIFIED,	/* RFC 7162 3.1.3 UNCHANGEDSINCE failed:
				   modseq (current) > unchanged_since */
	STORE_UPDATE_EXPUNGED,	/* no such UID (any more); modseq 0 */
};

struct store_update_result {
	uint64_t modseq;
	enum store_update_status status;
};

/* What changed in the index since this view's previous state (see
 * store_mailbox_sync_changes). Arrays are malloc()ed; free with
 * store_changes_free. */
struct store_changes {
	bool uidvalidity_changed;	/* the view was rebuilt from a new
					   UIDVALIDITY: IMAP must BYE */
	/* Expunged messages, ascending UID, with their sequence numbers
	 * (1-based) in the previous view: send EXPUNGE for expunged_seqs in
	 * descending order, or ascending each minus the ones already sent. */
	uint32_t *expunged_uids;
	uint32_t *expunged_seqs;
	size_t expunged_count;
	/* New messages: the last new_count entries of the view. */
	uint32_t new_count;
	/* Messages of both views whose flags/keywords (modseq) changed
	 * except by this view's own store_msg(s)_update_flags. Ascending. */
	uint32_t *changed_uids;
	size_t changed_count;
};

/* Mailbox attributes given to store_mailbox_list callbacks. */
enum store_list_flags {
	STORE_LIST_NOSELECT = 1 << 0,	/* only implied by a child */
	STORE_LIST_HAS_CHILDREN = 1 << 1,
	STORE_LIST_HAS_NO_CHILDREN = 1 << 2,
};

/* store_mailbox_open_flags options. */
enum store_open_flags {
	/* Keep basename/path out of the view (they are NULL): 64 bytes a
	 * message. store_msg_open looks the file up in the index. For IMAP;
	 * POP3 needs the names (UIDL). */
	STORE_OPEN_NO_NAMES = 1 << 0,
};

/* ---- users ---- */

/* Opens (creating the Maildir and index when missing) the store of user,
 * at config_mail_path(set, user). A corrupt index is moved aside, logged
 * and rebuilt. */
int store_user_open(const struct settings *set, const char *user,
		    struct store_user **su_r, const char **error_r);
void store_user_close(struct store_user **su);
const char *store_user_name(const struct store_user *su);
/* Bound of the per-process cache of open LMDB environments (default
 * STORE_ENV_CACHE_DEFAULT = 8, minimum 1). A store_user or mailbox view
 * does not keep its user's environment open between calls: each call
 * takes it from the cache, reopening it (tens of microseconds) after it
 * was evicted by other users' calls, so an idle session costs no LMDB
 * memory or descriptors. Call before or after opening stores. */
void store_env_cache_set_max(unsigned max);
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
/* As store_delivery_commit, also setting keywords (names; created in the
 * mailbox's table when missing: -1 errno ENOSPC when it is full, EINVAL
 * for a name that is not an atom). The message is indexed in one small
 * transaction (no directory scan) when uid_r is not NULL. */
int store_delivery_commit_keywords(struct store_delivery **d, uint32_t flags,
				   const char *const *keywords,
				   size_t keyword_count, time_t internal_date,
				   uint32_t *uid_r, const char **error_r);
/* Removes the temporary file; frees d. Safe on NULL. */
void store_delivery_abort(struct store_delivery **d);

/* ---- mailboxes ---- */

/* "INBOX" (case-insensitive) is the Maildir itself; other names are
 * Maildir++ folders with '/' as the hierarchy separator. */
int store_mailbox_open(struct store_user *su, const char *name,
		       struct store_mailbox **mb_r, const char **error_r);
/* store_mailbox_open with enum store_open_flags. */
int store_mailbox_open_flags(struct store_user *su, const char *name,
			     unsigned flags, struct store_mailbox **mb_r,
			     const char **error_r);
/* Flushes up to a couple of thousand pending renames
 * (store_mailbox_flush_renames; the index keeps any rest pending for the
 * next session of the mailbox), releases the POP3 lock, frees the view. */
void store_mailbox_close(struct store_mailbox **mb);
/* Creates the Maildir++ folder for name (not INBOX): -1 with errno EEXIST
 * if it exists, EINVAL if the name is not allowed (see maildir.c). */
int store_mailbox_create(struct store_user *su, const char *name,
			 const char **error_r);
/* Deletes the folder's messages and directory; its children (Maildir++
 * ".name.child" folders) stay, so "name" then lists as \Noselect
 * (RFC 3501 6.3.4). Refuses INBOX (EPERM). -1 errno ENOENT if missing. */
int store_mailbox_delete(struct store_user *su, const char *name,
			 const char **error_r);
/* Renames a folder and all its children (RFC 3501 6.3.5); each keeps its
 * UIDVALIDITY and UIDs. -1 errno EEXIST when new_name (or a child's new
 * name) exists, ENOENT when old_name does not. Renaming INBOX moves all
 * of INBOX's messages into the new mailbox (created, fresh UIDVALIDITY;
 * must not exist) and leaves INBOX empty; INBOX's children stay. */
int store_mailbox_rename(struct store_user *su, const char *old_name,
			 const char *new_name, const char **error_r);
/* Calls cb for INBOX, then every folder in name order, '/' separated,
 * including parents implied by a child (STORE_LIST_NOSELECT). Names are
 * valid during the callback only. Returns 0 or -1. */
int store_mailbox_list(struct store_user *su,
		       void (*cb)(const char *name, unsigned list_flags,
				  void *ctx),
		       void *ctx, const char **error_r);
/* Subscriptions (RFC 3501 6.3.6/6.3.7) kept in <root>/heron-subscriptions,
 * one name a line, rewritten atomically under a lock; while it does not
 * exist, Dovecot's <root>/subscriptions is read. get returns a malloc()ed
 * NULL-terminated array of malloc()ed names (store_subscriptions_free).
 * set does not check that the mailbox exists (RFC 3501 allows it). */
int store_subscriptions_get(struct store_user *su, char ***names_r,
			    size_t *count_r, const char **error_r);
void store_subscriptions_free(char ***names);
int store_subscriptions_set(struct store_user *su, const char *name,
			    bool subscribed, const char **error_r);
/* Reason a mailbox name is refused, or NULL when it is allowed. Names
 * containing '.' are refused: '.' is the Maildir++ separator on disk and
 * no escaping is done (Dovecot/Courier would show them as hierarchy). */
const char *store_mailbox_name_error(const char *name);

/* Takes the POP3 maildrop lock (RFC 1939 section 8: one POP3 session per
 * maildrop). Non-blocking: -1 with errno EWOULDBLOCK if another session
 * has it. Released by store_mailbox_close. Deliveries and IMAP are not
 * affected by it. */
int store_mailbox_lock_pop3(struct store_mailbox *mb, const char **error_r);

/* Brings the index up to date with the Maildir (new, vanished and renamed
 * files, flags) and refreshes this view's message list. New messages get
 * UIDs in delivery order. Returns 0 or -1. */
int store_mailbox_sync(struct store_mailbox *mb, const char **error_r);
/* store_mailbox_sync, reporting in *changes what differs from the previous
 * view (struct store_changes). Cheap when nothing changed: two stat()s
 * and one record read (no readdir while new/ and cur/ keep an mtime older
 * than STORE_DIR_MTIME_SLACK_SECS that the index recorded; no view
 * rebuild while the index record is unchanged). */
int store_mailbox_sync_changes(struct store_mailbox *mb,
			       struct store_changes *changes,
			       const char **error_r);
/* Brings the index up to date with the directories, leaving this view
 * as it is (its changes come with the next sync or refresh). */
int store_mailbox_sync_index(struct store_mailbox *mb, const char **error_r);
/* Like store_mailbox_sync_changes, but trusting the index instead of
 * looking at new/ and cur/:
 * for the other views of a folder that this process has just synced
 * (one inotify event, many IDLE sessions on one mailbox). */
int store_mailbox_refresh_changes(struct store_mailbox *mb,
				  struct store_changes *changes,
				  const char **error_r);
void store_changes_free(struct store_changes *changes);
/* IDLE fan-out (many sessions of one process on one mailbox): take
 * store_follow_begin(leader) before refreshing the leader; afterwards a
 * session whose view is still the leader's old one (the same shared
 * view, so the same messages and flags) takes the leader's new view and
 * record with store_mailbox_follow instead of reading the index: its
 * changes are exactly the leader's. false (nothing done) otherwise.
 * begin returns NULL when leader has no view to share. */
struct store_follow;
struct store_follow *store_follow_begin(const struct store_mailbox *leader);
bool store_mailbox_follow(struct store_mailbox *mb,
			  const struct store_follow *follow,
			  const struct store_mailbox *leader);
void store_follow_end(struct store_follow **follow);
/* The view's HIGHESTMODSEQ (RFC 7162): of the record it was built from,
 * advanced by this view's own flag changes. */
uint64_t store_mailbox_highestmodseq(const struct store_mailbox *mb);
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
/* Flag changes (the three calls below) are index-only: the index is
 * authoritative for flags at once, and the call returns after one LMDB
 * write transaction. The file's Maildir name (":2,<letters>", what other
 * MUAs see) catches up later, in store_mailbox_flush_renames, which the
 * caller runs in slices (IMAP: from its event loop), and at
 * store_mailbox_close. Until then store_msg.path (and the file) keep the
 * old letters; store_msg_open finds the file as it is.
 * Other tools renaming a file meanwhile: each flag whose letter their
 * rename changed takes their value, the others keep ours (a pending
 * rename of ours is never taken for an external change).
 * Crash safety: a crash before the renames loses nothing (the index has
 * the flags; a later flush renames); if the index itself is lost, flags
 * are rebuilt from file names and unflushed flag changes are lost.
 * POP3 and LMTP never create pending renames. */

/* Replaces a message's system flags (keywords kept). */
int store_msg_set_flags(struct store_mailbox *mb, uint32_t uid,
			uint32_t flags, const char **error_r);
/* Changes system flags and keyword bits of uid (RFC 3501 6.4.6 STORE).
 * unchanged_since (RFC 7162 UNCHANGEDSINCE; 0 = unconditional): when the
 * message's modseq is greater, nothing changes, *changed_r is false and
 * *new_modseq_r the (greater) current modseq. Otherwise *new_modseq_r is
 * the new modseq when *changed_r, else the current one. modseq and
 * HIGHESTMODSEQ are bumped when flags or keywords change. The view entry
 * is updated (flags, keywords, modseq). -1 errno ENOENT when uid is
 * expunged. */
int store_msg_update_flags(struct store_mailbox *mb, uint32_t uid,
			   enum store_flag_op op, uint32_t flags,
			   uint64_t keywords, uint64_t unchanged_since,
			   uint64_t *new_modseq_r, bool *changed_r,
			   const char **error_r);
/* The same for many UIDs in one index transaction; all changed messages
 * share one new modseq (RFC 7162 3.1: one per STORE command). results
 * (count entries, may be NULL) gets each UID's outcome. Returns 0 or -1
 * (nothing changed then). */
int store_msgs_update_flags(struct store_mailbox *mb, const uint32_t *uids,
			    size_t count, enum store_flag_op op,
			    uint32_t flags, uint64_t keywords,
			    uint64_t unchanged_since,
			    struct store_update_result *results,
			    const char **error_r);
/* Renames up to max_count files of the mailbox whose names lag behind
 * their flags (in one index transaction, oldest position first, resuming
 * where the previous slice stopped) and returns how many remain to do, 0
 * when none (or -1). Costs nothing when the view knows of none. Files
 * that vanished (expunged elsewhere: the next sync reports them) or
 * whose name would be too long are not counted. IMAP: call with ~500
 * from the event loop while it returns > 0 after a STORE. */
int store_mailbox_flush_renames(struct store_mailbox *mb, unsigned max_count,
				const char **error_r);

/* ---- POP3 ---- */

/* Longest UIDL store_msg_pop3_uidl returns (RFC 1939 7: 1..70 chars). */
#define STORE_POP3_UIDL_MAX 70
/* msg's POP3 unique-id (RFC 1939 section 7), as Dovecot's default
 * pop3_uidl_format "%08Xu%08Xv" gives it: UID then UIDVALIDITY, 8
 * lower-case hex digits each, written into buf (size >= 17); or, for a
 * message Dovecot had stored another UIDL for (a P field in its
 * dovecot-uidlist, copied at migration), that one, owned by mb. Stable:
 * UIDs and UIDVALIDITY survive index loss (heron-uidlist). */
const char *store_msg_pop3_uidl(struct store_mailbox *mb,
				const struct store_msg *msg, char *buf,
				size_t size);

/* ---- keywords (per mailbox) ---- */

/* The keyword table: names[i] is keyword bit i. The array and names are
 * owned by mb and valid until the next keyword call or close. */
int store_mailbox_keyword_names(struct store_mailbox *mb,
				const char *const **names_r,
				unsigned *count_r, const char **error_r);
/* Index of keyword name (case-insensitive). Missing: created when create
 * is true (-1 errno ENOSPC when STORE_KEYWORDS_MAX are in use, EINVAL for
 * a name that is not an atom or starts with a backslash), else -1 errno
 * ENOENT. */
int store_mailbox_keyword_index(struct store_mailbox *mb, const char *name,
				bool create, unsigned *idx_r,
				const char **error_r);

/* ---- \Recent, expunge history ---- */

/* RFC 3501 2.3.2 \Recent: returns in *first_recent_uid_r the mailbox's
 * first recent UID and atomically moves it to this view's UIDNEXT, so the
 * view's messages with UID >= *first_recent_uid_r are recent for this
 * session only. Call from read-write SELECT and later syncs of it. */
/* The view's first UID that no session has claimed as \Recent (STATUS
 * RECENT of a mailbox that is not selected). */
uint32_t store_mailbox_first_recent_uid(const struct store_mailbox *mb);
int store_mailbox_claim_recent(struct store_mailbox *mb,
			       uint32_t *first_recent_uid_r,
			       const char **error_r);
/* Calls cb for each range of UIDs expunged with a modseq > modseq (RFC
 * 7162 QRESYNC VANISHED (EARLIER)), oldest first. Returns 0 when the
 * history is complete, 1 when records older than requested were dropped
 * (STORE_EXPUNGED_RECORDS_MAX; the caller must treat every UID it knows
 * and the view lacks as expunged), -1 on error. */
int store_mailbox_expunged_since(struct store_mailbox *mb, uint64_t modseq,
				 void (*cb)(uint32_t first_uid,
					    uint32_t last_uid,
					    uint64_t modseq, void *ctx),
				 void *ctx, const char **error_r);

/* ---- copy (RFC 3501 6.4.7, UIDPLUS 4315 COPYUID, MOVE 6851) ---- */

/* Copies messages src_uids (count) into dst: hard links (a copy when
 * link() is impossible) in dst's cur/ keeping flags and keywords (mapped
 * by name; created in dst), dst's cur/ fsync()ed, indexed in one
 * transaction. dst_uids_r (count entries) gets each new UID in order, 0
 * for a source UID that no longer exists. dst's view is not refreshed.
 * MOVE = copy + store_msgs_expunge on src. */
int store_mailbox_copy(struct store_mailbox *src, const uint32_t *src_uids,
		       size_t count, struct store_mailbox *dst,
		       uint32_t *dst_uids_r, const char **error_r);

/* ---- change notification (IDLE) ---- */

/* One inotify fd per process watches new/ and cur/ of the mailboxes
 * added (refcounted by folder: adding the same mailbox twice returns the
 * same id). The caller polls store_watch_fd() (readable = events) and
 * calls store_watch_read, which calls cb once per changed watch id. */
int store_watch_add(struct store_mailbox *mb, int *id_r,
		    const char **error_r);
void store_watch_remove(int id);
/* -1 before the first store_watch_add. */
int store_watch_fd(void);
/* Reads all pending events (non-blocking). Returns the number of ids
 * reported, or -1. */
int store_watch_read(void (*cb)(int id, void *ctx), void *ctx);
/* Removes messages by UID (files unlinked, index records dropped). Missing
 * files are not an error. The expunge bumps HIGHESTMODSEQ and is recorded
 * (store_mailbox_expunged_since). The view is refreshed. */
int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids,
			  size_t count, const char **error_r);
/* The same without refreshing the view, so that the next
 * store_mailbox_sync_changes reports them (IMAP EXPUNGE). */
int store_msgs_expunge(struct store_mailbox *mb, const uint32_t *uids,
		       size_t count, const char **error_r);

/* ---- per-message cache (derived data, e.g. the MIME structure) ----
 * One opaque blob per message in the index (named DB "cache", key
 * (mailbox id, UID)), with a guard (the message's size and a hash of its
 * basename) checked on every get, so an entry is never served for
 * another file. Expunge, sync dropping vanished files and mailbox delete
 * remove the entries with the records (same transaction); an index
 * rebuilt from heron-uidlist starts with an empty cache.
 * Writes are batched: put queues in memory (per user index and process,
 * at most STORE_CACHE_QUEUE_MAX entries / STORE_CACHE_QUEUE_BYTES; a put
 * on a full queue flushes it first), flush writes the queue in one LMDB
 * write transaction committed with MDB_NOMETASYNC (see cache.c: the data
 * is synced once, the meta page is not, so a system crash may lose the
 * last flush but never corrupts the index). Entries still queued when the
 * user's store is closed are dropped. */
#define STORE_CACHE_QUEUE_MAX 256
#define STORE_CACHE_QUEUE_BYTES (4 * 1024 * 1024)
/* Blobs larger than this are not cached. */
#define STORE_CACHE_ENTRY_MAX (1024 * 1024)

/* Looks up uid's entry: 1 found (*data_r malloc()ed, caller frees;
 * *size_r its size), 0 not cached (or stale, or the message is gone),
 * -1 error. Queued entries are not seen before they are flushed. */
int store_msg_cache_get(struct store_mailbox *mb, uint32_t uid,
			unsigned char **data_r, size_t *size_r,
			const char **error_r);
/* Queues data (copied) as uid's entry, replacing any older one when
 * flushed. uid must be in mb's view; otherwise, or when the blob is
 * larger than STORE_CACHE_ENTRY_MAX, nothing is queued. A failure of the
 * implied flush is logged; the cache is only an optimisation. */
void store_msg_cache_put(struct store_mailbox *mb, uint32_t uid,
			 const void *data, size_t size);
/* Writes the queue (cheap no-op when empty). Entries whose message is
 * gone or changed (size, vsize, internal date) since the put are
 * skipped. The queue is emptied even on error. Returns 0 or -1. */
int store_msg_cache_flush(struct store_mailbox *mb, const char **error_r);
/* Entries queued and not yet flushed (tests). */
size_t store_msg_cache_queued(const struct store_mailbox *mb);

/* ---- index check and repair (check.c; `heron index`, `force-resync`) ----
 * Separate block: added for issue 4 item 3 by the admin CLI. */

/* Receives each finding of store_index_check: mailbox ("" for the whole
 * index), a text, and whether it is a problem (counted) or a note (files
 * not indexed yet, a folder never opened: the next sync takes them). */
typedef void store_check_report_func(const char *mailbox, const char *text,
				     bool is_problem, void *ctx);
/* Checks user's index read-only (it creates, moves and changes nothing,
 * and does not use the store's environment cache): every record's sanity,
 * UIDs below UIDNEXT, counts, the basename table, heron-uidlist against
 * the index. Returns the number of problems, or -1. LMDB keeps no page
 * checksums: on a badly damaged file the walk may crash, so callers run
 * it in a child process and count a crash as a problem. */
int store_index_check(const struct settings *set, const char *user,
		      store_check_report_func *report, void *report_ctx,
		      const char **error_r);
/* Rebuilds mailbox name's index records from heron-uidlist and the
 * Maildir, keeping UIDVALIDITY and the UIDs of files still there (any
 * the index or heron-uidlist remembers), HIGHESTMODSEQ growing. Safe
 * while other processes use the mailbox: their views see no expunge. */
int store_mailbox_rebuild(struct store_user *su, const char *name,
			  const char **error_r);
/* store_mailbox_rebuild for every selectable mailbox. replace: the index
 * cannot be read (store_index_check crashed or failed): it is moved aside
 * to heron.index.broken.<time> first and every mailbox rebuilt from
 * heron-uidlist alone (processes that have it open switch to the new file
 * at their next transaction). */
int store_index_rebuild(struct store_user *su, bool replace,
			const char **error_r);
/* Reads new/ and cur/ now, even when their mtimes say nothing changed:
 * new files get UIDs, vanished ones are expunged, renamed ones keep
 * theirs. */
int store_mailbox_force_resync(struct store_user *su, const char *name,
			       const char **error_r);
/* store_index_check in a child process: returns its problems,
 * STORE_CHECK_CRASHED when the child died (an unreadable file), or -1.
 * The caller must not have user's index open (LMDB and fork). */
#define STORE_CHECK_CRASHED 0x7fffffff
int store_index_check_isolated(const struct settings *set, const char *user,
			       store_check_report_func *report,
			       void *report_ctx, const char **error_r);
/* `heron index rebuild`: check; rebuild in place in a child; check
 * again; when the check or the rebuild crashed or problems remain, the
 * index is replaced (store_index_rebuild with replace) in this process.
 * 0 when the final check is clean. Same fork rule as above. */
int store_index_repair(const struct settings *set, const char *user,
		       const char **error_r);
/* Selectable mailbox names (store_mailbox_list without \Noselect), in
 * a malloc()ed array of malloc()ed names. */
int store_user_mailbox_names(struct store_user *su, char ***names_r,
			     size_t *count_r, const char **error_r);

#endif
