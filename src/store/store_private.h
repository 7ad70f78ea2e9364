/* store_private.h: internals shared by the src/store files. Nothing outside the
 * store module includes this, except tests/unit/test_store.c. Fault
 * injection hooks: lib/fault.h.
 *
 * On-disk layout of one user:
 *   <root>/{tmp,new,cur}            INBOX
 *   <root>/.A.B/{tmp,new,cur}       folder "A/B" (Maildir++)
 *   <folder>/heron-uidlist          "1 V<uidvalidity> N<uidnext>" (N in
 *                                   10 digits, updated in place by each
 *                                   append) then "<uid> <basename>" lines
 *   <folder>/heron-pop3.lock        flock()ed by the POP3 session
 *   <folder>/dovecot-keywords       "<index> <name>" for keywords 0..25,
 *                                   the letters a..z in file names
 *   <root>/heron-subscriptions      one subscribed mailbox name a line
 *   <root>/subscriptions            Dovecot's (read when Heron's is missing)
 *   <folder>/dovecot-uidlist        Dovecot's UIDs (read, see dovecot.c)
 *   <folder>/heron-pop3-uidls       POP3 UIDLs Dovecot had stored
 *   <root>/heron.index (+ -lock)    LMDB, see struct index_* below */
#ifndef HERON_STORE_PRIVATE_H
#define HERON_STORE_PRIVATE_H

#include "store/store.h"

#include <lmdb.h>
#include <stdio.h>
#include <sys/types.h>

#define STORE_INDEX_NAME "heron.index"
#define STORE_UIDLIST_NAME "heron-uidlist"
#define STORE_POP3_LOCK_NAME "heron-pop3.lock"
#define STORE_ERROR_MAX 512
/* Default bound of the per-process cache of open LMDB environments
 * (store_env_cache_set_max). Each open one costs a few descriptors, the
 * lock file and data mappings and LMDB's write-txn page lists. */
#define STORE_ENV_CACHE_DEFAULT 8
/* Sparse file: only touched pages take disk space. */
#define STORE_INDEX_MAP_SIZE ((size_t)1 << 30)
/* Longest file name we index (NAME_MAX on Linux). */
#define STORE_NAME_MAX 255
/* Longest mailbox name accepted (its Maildir++ dir must fit NAME_MAX). */
#define STORE_MAILBOX_NAME_MAX 250
/* Rewrite heron-uidlist when it has more lines than 2 * messages + this. */
#define STORE_UIDLIST_SLACK 64
/* "cur/" + ":2," + "DFPRST" + keyword letters: room kept after each path
 * in a view so a flag change can be written in place. SIZE-MATH */
#define STORE_PATH_EXTRA (4 + 3 + 6 + 26 + 1)
#define STORE_KEYWORDS_NAME "dovecot-keywords"
#define STORE_SUBSCRIPTIONS_NAME "heron-subscriptions"
/* Dovecot 2.x files read (never written) by dovecot.c. */
#define DOVECOT_SUBSCRIPTIONS_NAME "subscriptions"
#define DOVECOT_UIDLIST_NAME "dovecot-uidlist"
#define STORE_POP3_UIDLS_NAME "heron-pop3-uidls"
/* Keywords 0..25 are written into file names as the letters a..z. */
#define STORE_KEYWORD_LETTERS 26
/* A directory whose mtime is this recent may still change within the
 * same timestamp tick: it is always scanned, and its mtime not trusted. */
#define STORE_DIR_MTIME_SLACK_SECS 2
/* The same for filesystems with sub-second directory timestamps. */
#define STORE_DIR_MTIME_SLACK_MSECS 100
/* Expunge history kept per mailbox (records, one per expunge/sync); older
 * records are dropped and expunged_floor raised. */
#define STORE_EXPUNGED_RECORDS_MAX 1000

/* One per index path per process (LMDB forbids opening the same
 * environment twice in a process), refcounted by store_users. env is
 * open only while the index is in the per-process LRU cache of open
 * environments (index.c); NULL once evicted, reopened on the next
 * store_index_txn_begin. dbi handles are those of the current env. */
struct store_index {
	struct store_index *next;
	char *path;
	unsigned refcount;
	pid_t pid;		/* process that created it */
	MDB_env *env;		/* NULL: not in the cache */
	unsigned txn_count;	/* open transactions: not evictable */
	uint64_t last_used;	/* LRU clock of the last txn begin */
	bool is_broken;		/* a recovery failed to reopen it */
	dev_t dev;		/* identity of the file env has open */
	ino_t ino;
	uint64_t replaced_checked_msecs;	/* index_is_replaced */
	MDB_dbi dbi_meta;	/* "meta" -> struct index_meta */
	MDB_dbi dbi_mbox;	/* mailbox key -> struct index_mbox */
	MDB_dbi dbi_msg;	/* (id BE32, uid BE32) -> index_msg + names */
	MDB_dbi dbi_bname;	/* (id BE32, basename) -> uid (u32) */
	MDB_dbi dbi_kw;		/* id BE32 -> keyword names, NUL-ended */
	MDB_dbi dbi_exp;	/* (id BE32, modseq BE64) -> uid ranges */
	MDB_dbi dbi_cache;	/* (id BE32, uid BE32) -> index_cache_hdr +
				   caller's data (cache.c) */
	/* store_msg_cache_put entries not yet written (cache.c); shared by
	 * the users of this index in the process, freed with it. */
	struct store_cache_queue *cache_queue;
};

/* Records are stored in host byte order (the index never leaves the
 * machine); keys are big-endian so they sort by number. */
struct index_meta {
	uint32_t next_mailbox_id;
	uint32_t last_uidvalidity;
};

struct index_mbox {
	uint32_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t next_keyword;
	uint64_t highestmodseq;
	uint32_t count;		/* messages */
	uint32_t uidlist_lines;	/* "<uid> <basename>" lines in the file */
	/* --- added for IMAP; records of the old size read as zeros --- */
	uint32_t first_recent_uid;	/* \Recent for uids >= this (0 = 1) */
	uint32_t expunged_records;	/* entries in dbi_exp */
	int64_t new_mtime_ns;	/* new/ and cur/ mtimes the index matches; */
	int64_t cur_mtime_ns;	/* 0 = unknown, scan */
	uint64_t expunged_floor;	/* expunge history complete above this */
	/* --- added for deferred renames; older records read as 0 --- */
	uint32_t pending_renames;	/* messages whose file name letters
					   differ from their flags */
	uint32_t reserved;
};
/* Size of index_mbox before the IMAP fields, and before the deferred
 * rename count. */
#define INDEX_MBOX_V1_SIZE 32
#define INDEX_MBOX_V2_SIZE 64

/* Followed by basename_len bytes of basename, then path_len bytes of the
 * path ("new/..." or "cur/..."), no NULs. flags/keywords are the
 * message's real flags (authoritative); the path is the file's current
 * name, so the letters it carries are the "file flags". They differ
 * while a rename is pending (store_mailbox_flush_renames); sync compares
 * the directories with the path, never with flags. */
struct index_msg {
	uint32_t flags;
	uint16_t basename_len;
	uint16_t path_len;
	uint64_t keywords;
	uint64_t size;
	uint64_t vsize;
	int64_t internal_date;
	uint64_t modseq;
};

/* A decoded message record; the strings point into LMDB memory (valid
 * until the transaction ends) and are not NUL-terminated. */
struct index_msg_view {
	struct index_msg hdr;
	const char *basename;
	const char *path;
};

struct store_user {
	char *user;
	char *root;
	struct store_index *index;
	char *error;		/* store_errbuf: NULL until the first error */
};

struct store_mailbox {
	struct store_user *su;
	char *key;		/* index key: "INBOX" or ".A.B" */
	char *dir;		/* absolute folder directory */
	struct index_mbox rec;	/* as of the last sync */
	struct index_mbox view_rec;	/* the record msgs were built from
					   (highestmodseq advanced by own
					   changes that the view holds) */
	bool has_view;
	bool no_names;		/* STORE_OPEN_NO_NAMES */
	struct store_view *view;	/* msgs and count, maybe shared */
	struct store_msg *msgs;	/* view->msgs, sorted by UID */
	uint32_t count;		/* view->count */
	char **kw_names;	/* cached keyword table (only grows) */
	unsigned kw_count;
	int pop3_fd;
	/* heron-pop3-uidls, loaded by the first store_msg_pop3_uidl
	 * (dovecot.c); NULL until then. */
	struct dovecot_pop3_uidls *pop3_uidls;
	uint32_t flush_next_uid;	/* where the next flush slice starts */
	char *error;		/* store_errbuf: NULL until the first error */
};

struct store_delivery {
	struct store_user *su;
	char *key;		/* mailbox index key */
	char *dir;		/* folder directory */
	char *tmp_path;		/* absolute tmp/ file */
	char base[128];		/* unique name, without ,S=,W= */
	int fd;
	uint64_t size;
	uint64_t vsize;
	bool last_was_cr;
};

/* A file just placed into a folder, to be indexed (copy, append). */
struct index_new_file {
	struct index_msg hdr;	/* modseq is set by index_add_files */
	char path[STORE_NAME_MAX + 8];	/* "new/..." or "cur/..." */
};

/* ---- maildir.c ---- */
/* Maps a mailbox name to its index key and directory. -1 with errno
 * EINVAL on names that are not allowed. Caller frees both. */
/* Mailbox name <-> Maildir++ folder key (".a.b^2ec" for "a/b.c"). */
char *maildir_name_to_key(const char *name);
/* key without its leading '.'; output truncated to size. */
void maildir_key_to_name(const char *key, char *name, size_t size);
int maildir_resolve(struct store_user *su, const char *name, char **key_r,
		    char **dir_r);
/* Flags from a file name's ":2," suffix (none for other names). */
uint32_t maildir_name_flags(const char *name, size_t len);
/* Keyword bits 0..25 from the lowercase letters of the ":2," suffix. */
uint64_t maildir_name_keywords(const char *name, size_t len);
/* Writes "cur/<basename>:2,<letters><keyword letters>" into buf (keyword
 * bits 0..25 as a..z). Returns the length, or -1 when it does not fit. */
int maildir_cur_path(char *buf, size_t size, const char *basename,
		     size_t bn_len, uint32_t flags, uint64_t keywords);
/* Flags and keyword letters (bits 0..25) a path's name carries: none
 * for "new/..." names. */
void maildir_path_letters(const char *path, size_t len, uint32_t *flags_r,
			  uint64_t *kw_r);
/* A file was renamed by another tool from old_path to a name carrying
 * disk_flags/disk_kw: each flag (keyword letter) whose letter the rename
 * changed takes the new value; the others keep hdr's value, so a pending
 * rename of ours is neither lost nor mistaken for an external change. */
void maildir_merge_letters(struct index_msg *hdr, const char *old_path,
			   size_t old_len, uint32_t disk_flags,
			   uint64_t disk_kw);
/* True when a file's path in new/ or cur/ would change for these flags
 * (a rename is pending). */
bool maildir_path_differs(const char *path, size_t path_len, uint32_t flags,
			  uint64_t keywords);
/* Same, with the reason for refusing it in *why_r. */
int maildir_resolve_why(struct store_user *su, const char *name,
			char **key_r, char **dir_r, const char **why_r);
/* Removes dir's messages and Heron/Maildir files, then dir itself. */
int maildir_remove_folder(const char *dir, char *errbuf);
/* Creates the folder dir (tmp/ new/ cur/ and maildirfolder). */
int maildir_create_folder(const char *dir, char *errbuf);
/* Searches new/ and cur/ of dir for a file with this basename; writes
 * "new/<name>" or "cur/<name>" into buf. Returns 1 found, 0 not, -1 err. */
int maildir_find(const char *dir, const char *basename, size_t bn_len,
		 char *buf, size_t size);
int maildir_fsync_dir(const char *dir, const char *sub);
/* fopen(path, "re") that does not follow a symlink in the last
 * component (ELOOP): files under a Maildir are the user's to replace, and
 * a link to /etc/shadow must not be read with the server's rights. */
FILE *store_fopen_read(const char *path);
/* An object's error buffer (su->error, mb->error): STORE_ERROR_MAX
 * bytes allocated ("") by the first use and kept until the object is
 * freed, so a session without errors pays a pointer, not 512 bytes.
 * Each object has its own, so one may be copied into the other; a
 * string handed out stays valid until the next store call on the
 * object. An object is used by one thread at a time (LMTP pool jobs
 * own their store_user, lmtp_cache.c). */
char *store_errbuf(char **slot);
/* snprintf into *slot (store_errbuf); returns -1, errno kept. */
int store_set_error_at(char **slot, const char **error_r, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));
/* store_set_error(buf, error_r, fmt, ...): buf is an object's error
 * pointer (mb->error) or a char * naming a STORE_ERROR_MAX buffer. */
#define store_set_error(buf, error_r, ...) \
	store_set_error_at(&(buf), (error_r), __VA_ARGS__)
/* The same into a fixed buffer of STORE_ERROR_MAX bytes. */
int store_set_error_buf(char *buf, const char **error_r, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));

/* ---- index.c ---- */
/* Opens (or finds) the index of path; its environment enters the cache. */
int store_index_open(const char *path, struct store_index **index_r,
		     char *errbuf, size_t errsize);
void store_index_unref(struct store_index **index);
/* mdb_txn_begin(), reopening the environment when it was evicted (EIO
 * when it cannot be, or idx belongs to the parent of a fork). Every
 * transaction begun so ends with store_txn_commit or store_txn_abort
 * within the same store call: an environment with a transaction open is
 * never evicted. */
int store_index_txn_begin(struct store_index *idx, unsigned flags,
			  MDB_txn **txn_r);
int store_txn_commit(MDB_txn *txn);
void store_txn_abort(MDB_txn *txn);
/* Environments open now, and opened in total (tests, bench). */
unsigned store_index_open_env_count(void);
extern unsigned long store_index_env_opens;
/* For a corruption found while running (rc): closes the environment,
 * moves the file aside and opens a fresh one in place, so every holder of
 * idx continues on the new file. No transaction may be open. Returns 0
 * or an LMDB code. */
int store_index_recover(struct store_index *idx, int rc);
/* errno for an LMDB return code (ENOSPC for a full map, EIO for
 * corruption). */
int store_index_errno(int rc);
bool store_index_is_corrupt(int rc);
int index_get_meta(struct store_index *idx, MDB_txn *txn,
		   struct index_meta *meta_r);
int index_put_meta(struct store_index *idx, MDB_txn *txn,
		   const struct index_meta *meta);
/* Returns 0, MDB_NOTFOUND or another LMDB error. */
int index_get_mbox(struct store_index *idx, MDB_txn *txn, const char *key,
		   struct index_mbox *rec_r);
int index_put_mbox(struct store_index *idx, MDB_txn *txn, const char *key,
		   const struct index_mbox *rec);
void index_msg_key(uint8_t buf[8], uint32_t id, uint32_t uid);
static inline uint32_t store_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
		((uint32_t)p[2] << 8) | p[3];
}
/* Decodes a message value; -1 if malformed. */
int index_msg_decode(const MDB_val *val, struct index_msg_view *msg_r);
int index_get_msg(struct store_index *idx, MDB_txn *txn, uint32_t id,
		  uint32_t uid, struct index_msg_view *msg_r);
int index_put_msg(struct store_index *idx, MDB_txn *txn, uint32_t id,
		  uint32_t uid, const struct index_msg *hdr,
		  const char *basename, const char *path);
/* Deletes the message record (of mailbox rec->id) and its basename
 * entry; rec->pending_renames drops when the record had one pending. */
int index_del_msg(struct store_index *idx, MDB_txn *txn,
		  struct index_mbox *rec, uint32_t uid);
/* uid_r = 0 when not found. */
int index_get_bname(struct store_index *idx, MDB_txn *txn, uint32_t id,
		    const char *basename, size_t bn_len, uint32_t *uid_r);

/* (id, modseq) -> ranges: records an expunge of the sorted uids. Updates
 * rec->expunged_records/expunged_floor, pruning the oldest records. */
int index_put_expunged(struct store_index *idx, MDB_txn *txn,
		       struct index_mbox *rec, uint64_t modseq,
		       const uint32_t *uids, size_t count);
/* Drops every record of mailbox id (messages, basenames, keywords,
 * expunge history, cached structures). */
int index_del_mailbox_data(struct store_index *idx, MDB_txn *txn,
			   uint32_t id);
/* Indexes files already in mb's folder in txn (rec read by the caller and
 * written back by it): one UID each, in order, a new modseq, and their
 * heron-uidlist lines. A file already indexed keeps its UID. */
int index_add_files(struct store_mailbox *mb, MDB_txn *txn,
		    struct index_mbox *rec, const struct index_new_file *files,
		    size_t count, uint32_t *uids_r);

/* ---- cache.c ---- */
/* Value header of a dbi_cache record, followed by the caller's bytes.
 * The guard ties the entry to one message: a get compares it with the
 * message record, so an entry can never be served for another file. */
#define STORE_CACHE_MAGIC 0x48434331u	/* "HCC1" */
struct index_cache_hdr {
	uint32_t magic;
	uint32_t reserved;
	uint64_t size;		/* the message's index_msg.size */
	uint64_t bname_hash;	/* FNV-1a 64 of its basename */
};
/* Frees idx's queue of unwritten entries (store_index_unref). */
void store_cache_queue_free(struct store_index *idx);
/* Deletes the cache entry of (id, uid) in txn; a missing one is fine. */
int index_del_cache(struct store_index *idx, MDB_txn *txn, uint32_t id,
		    uint32_t uid);

/* ---- keywords.c ---- */
/* Index of name in mailbox id's table (txn must be a write txn when
 * create is true). 0 found/created, MDB_NOTFOUND when missing and not
 * created, EINVAL bad name, ENOSPC table full; LMDB code otherwise.
 * dir gets its dovecot-keywords file rewritten when a keyword < 26 is
 * added. */
int keyword_lookup(struct store_index *idx, MDB_txn *txn, uint32_t id,
		   const char *dir, const char *name, bool create,
		   unsigned *idx_r);
/* Name of keyword i of mailbox id into buf; 0, MDB_NOTFOUND. */
int keyword_name(struct store_index *idx, MDB_txn *txn, uint32_t id,
		 unsigned i, char *buf, size_t size);
/* Imports dir's dovecot-keywords into a new mailbox id (rebuild). */
int keyword_import(struct store_index *idx, MDB_txn *txn, uint32_t id,
		   const char *dir);
bool keyword_name_valid(const char *name);

/* ---- delivery.c ---- */
/* A new unique base name "<secs>.M<usecs>P<pid>Q<n>.<host>". */
void delivery_new_base(char *buf, size_t size);

/* ---- uidlist.c ---- */
struct uidlist_ent {
	uint32_t uid;
	uint32_t name_off;
	uint16_t name_len;
};

struct uidlist {
	uint32_t uidvalidity;	/* 0 = unknown */
	uint32_t uidnext;	/* max(N, highest uid + 1) */
	struct uidlist_ent *ents;	/* sorted by basename */
	size_t count;
	char *names;
	bool is_dovecot;	/* read from dovecot-uidlist */
};

/* Reads <dir>/heron-uidlist; a missing file gives an empty list. */
int uidlist_read(const char *dir, struct uidlist *ul, char *errbuf,
		 size_t errsize);
/* Returns the uid recorded for basename, 0 if none. */
uint32_t uidlist_lookup(const struct uidlist *ul, const char *basename,
			size_t bn_len);
void uidlist_free(struct uidlist *ul);
/* Appends text (whole lines) at the end, raises the header's N to
 * uidnext in place, and fdatasync()s. -1 with errno ENOENT when the file
 * does not exist or has a header N cannot be written into in place
 * (caller rewrites), ELOOP for a symlink. */
int uidlist_append(const char *dir, const char *text, size_t len,
		   uint32_t uidnext, char *errbuf, size_t errsize);
/* Writes the whole file from the index (tmp + fsync + rename). Sets
 * rec->uidlist_lines. */
int uidlist_rewrite(const char *dir, struct store_index *idx, MDB_txn *txn,
		    struct index_mbox *rec, char *errbuf, size_t errsize);

/* ---- dovecot.c (migration from Dovecot 2.x; files only read) ---- */
/* When dir has a dovecot-uidlist (version 3 or 1), *f_r is a memory
 * stream holding it as heron-uidlist text (header "1 V<uidvalidity>
 * N<next uid>", then "<uid> <basename>" lines) for uidlist_read to parse;
 * its P fields (POP3 UIDLs) are copied to dir's heron-pop3-uidls first
 * unless that exists. *f_r NULL: no (usable) file. 0 or -1 (errbuf). */
int dovecot_uidlist_open(const char *dir, FILE **f_r, char *errbuf,
			 size_t errsize);
/* Calls cb for each mailbox of root's Dovecot subscriptions file
 * (version 2, or 1 with '.' separators) as a Heron name ('/' separated).
 * A missing file is 0 with no calls. */
int dovecot_subscriptions_read(const char *root,
			       void (*cb)(const char *name, void *ctx),
			       void *ctx, char *errbuf, size_t errsize);
/* Modseqs of a new mailbox record: HIGHESTMODSEQ 1; for one imported
 * from Dovecot (ul->is_dovecot) DOVECOT_MODSEQ_FLOOR, above any modseq
 * Dovecot gave (its dovecot.index is not read), with the expunge history
 * incomplete below it. So CONDSTORE/QRESYNC clients holding Dovecot's
 * HIGHESTMODSEQ see every message's flags as changed and compute
 * VANISHED from their known UIDs (RFC 7162 3.2.5.1, 3.2.6). */
#define DOVECOT_MODSEQ_FLOOR ((uint64_t)1 << 32)
void dovecot_init_modseqs(const struct uidlist *ul, struct index_mbox *rec);
/* Frees a table loaded by store_msg_pop3_uidl; safe on NULL. */
void dovecot_pop3_uidls_free(struct dovecot_pop3_uidls **t);

/* ---- message.c ---- */
/* Renames per transaction when a view flushes everything (close). */
#define STORE_FLUSH_SLICE 1000
/* Flushes every pending rename of mb's mailbox (close, INBOX rename);
 * failures are logged: the renames stay pending in the index. */
/* Flushes pending renames, at most about max_count of them. */
void store_flush_all(struct store_mailbox *mb, unsigned max_count);
/* Renames store_mailbox_close does before it leaves the rest pending. */
#define STORE_CLOSE_FLUSH_MAX 2000

/* ---- sync.c ---- */
/* Syncs the mailbox; rebuilds the view when build_view is true, and then
 * fills changes (may be NULL) relative to the previous view. */
int store_sync(struct store_mailbox *mb, bool build_view);
int store_sync_changes(struct store_mailbox *mb, bool build_view,
		       struct store_changes *changes);
/* store_sync_changes; with trust_index the directories are not looked at
 * (the index record decides). */
int store_sync_run(struct store_mailbox *mb, bool want_view,
		   bool trust_index, struct store_changes *changes);
/* The view's entry for uid, or NULL. Read only: the view may be shared
 * with other sessions (view.c); store_view_find_mut to change it. */
struct store_msg *store_view_find(struct store_mailbox *mb, uint32_t uid);

/* ---- view.c ---- */
struct store_view;
/* A new reference to the listed view of mb's mailbox (same index, key,
 * naming) when it was built from rec, else NULL. */
struct store_view *store_view_lookup(struct store_mailbox *mb,
				     const struct index_mbox *rec);
/* Lists a new view of mb's mailbox built from rec, taking msgs and the
 * strings block they point into; returns the first reference. */
struct store_view *store_view_new(struct store_mailbox *mb,
				  const struct index_mbox *rec,
				  struct store_msg *msgs, uint32_t count,
				  char *strings, size_t strings_len);
void store_view_unref(struct store_view **view);
const struct store_msg *store_view_msgs(const struct store_view *view,
					uint32_t *count_r);
/* Makes view (a reference the caller gives away; NULL = none) mb's. */
void store_mailbox_set_view(struct store_mailbox *mb, struct store_view *view);
/* Copies mb's view when it is shared, so that mb may change it. */
void store_view_own(struct store_mailbox *mb);
/* store_view_find on a view mb may change. */
struct store_msg *store_view_find_mut(struct store_mailbox *mb,
				      uint32_t uid);
/* Appends uidlist lines of new UIDs (rewrites the file when stale). */
int store_uidlist_add(struct store_mailbox *mb, MDB_txn *txn,
		      struct index_mbox *rec, const char *text, size_t len,
		      bool force_rewrite);

#endif
