/* mailbox.c: mailbox management for IMAP: DELETE, RENAME (with children,
 * and RFC 3501 6.3.5's INBOX special case), LIST enumeration and the
 * subscriptions file. Folders are Maildir++ directories "<root>/.A.B";
 * their index records are keyed by that name and carry the UIDVALIDITY,
 * so a rename moves the record (UIDs and UIDVALIDITY kept) and a delete
 * drops it. Directory operations happen under the index write
 * transaction, which serialises them with other heron writers.
 * Limits: LIST reads the root directory whole; names are at most
 * STORE_MAILBOX_NAME_MAX bytes, so a folder list is bounded by the
 * directory itself. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUBSCRIPTIONS_MAX 10000
#define SUBSCRIPTION_LINE_MAX (STORE_MAILBOX_NAME_MAX + 2)

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP || type == FTW_D)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int maildir_remove_folder(const char *dir, char *errbuf)
{
	/* A Maildir++ folder's children are siblings (".A.B" next to
	 * ".A"), so everything under dir is this folder's own. */
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return store_set_error(errbuf, NULL, "removing %s failed: %s",
				       dir, strerror(errno));
	return 0;
}

static bool is_folder(const char *dir)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/cur", dir);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int mgmt_fail(struct store_user *su, const char *what, int rc,
		     const char **error_r)
{
	if (rc == -1) {
		*error_r = store_errbuf(&su->error);
		return -1;
	}
	errno = store_index_errno(rc);
	return store_set_error(su->error, error_r, "%s failed: %s", what,
			       mdb_strerror(rc));
}

/* Drops key's record and all data of its mailbox id. */
static int index_forget(struct store_index *idx, MDB_txn *txn,
			const char *key)
{
	struct index_mbox rec;
	MDB_val k = { strlen(key), (void *)key };
	int rc;

	rc = index_get_mbox(idx, txn, key, &rec);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0 || (rc = index_del_mailbox_data(idx, txn, rec.id)) != 0)
		return rc;
	return mdb_del(txn, idx->dbi_mbox, &k, NULL);
}

int store_mailbox_delete(struct store_user *su, const char *name,
			 const char **error_r)
{
	const char *why;
	char *key, *dir, *trash = NULL;
	MDB_txn *txn;
	int rc;

	if (maildir_resolve_why(su, name, &key, &dir, &why) < 0)
		return store_set_error(su->error, error_r, "%s", why);
	rc = -1;
	if (strcmp(key, "INBOX") == 0) {
		errno = EPERM;
		store_set_error(su->error, error_r, "INBOX cannot be deleted");
		goto out;
	}
	if (!is_folder(dir)) {
		errno = ENOENT;
		store_set_error(su->error, error_r, "mailbox %s does not exist",
				name);
		goto out;
	}
	/* Moved out of sight (into the root's tmp/) before the files go,
	 * so a crash while removing never leaves a half-deleted folder
	 * that lists but cannot be selected or deleted (tests/crash). */
	trash = xasprintf("%s/tmp/heron-rmdir%s", su->root, key);
	(void)maildir_remove_folder(trash, store_errbuf(&su->error));
	if ((rc = store_index_txn_begin(su->index, 0, &txn)) != 0)
		goto out;
	if (rename(dir, trash) < 0) {
		int err = errno;

		store_txn_abort(txn);
		errno = err;
		rc = store_set_error(su->error, NULL, "rename(%s, %s): %s",
				     dir, trash, strerror(err));
		goto out;
	}
	FAULT_POINT("mailbox-delete");
	if ((rc = index_forget(su->index, txn, key)) == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc != 0)
		(void)rename(trash, dir);	/* not deleted after all */
	else if (maildir_remove_folder(trash, store_errbuf(&su->error)) < 0)
		log_warn("store: %s", su->error);
out:
	free(trash);
	free(key);
	free(dir);
	return rc == 0 ? 0 : mgmt_fail(su, "mailbox delete", rc, error_r);
}

/* Moves the index record of old_key to new_key (UIDVALIDITY kept). */
static int index_move(struct store_index *idx, MDB_txn *txn,
		      const char *old_key, const char *new_key)
{
	struct index_mbox rec;
	MDB_val k = { strlen(old_key), (void *)old_key };
	int rc;

	rc = index_get_mbox(idx, txn, old_key, &rec);
	if (rc == MDB_NOTFOUND)
		return 0;	/* never synced: its uidlist moves along */
	if (rc != 0 || (rc = index_put_mbox(idx, txn, new_key, &rec)) != 0)
		return rc;
	return mdb_del(txn, idx->dbi_mbox, &k, NULL);
}

struct rename_set {
	char **keys;		/* ".Old" and ".Old.*" that exist on disk */
	size_t count;
};

static void rename_set_free(struct rename_set *rs)
{
	for (size_t i = 0; i < rs->count; i++)
		free(rs->keys[i]);
	free(rs->keys);
}

/* Collects old_key and its children's keys from the root directory. */
static int rename_collect(struct store_user *su, const char *old_key,
			  struct rename_set *rs)
{
	size_t len = strlen(old_key);
	struct dirent *de;
	DIR *d;

	memset(rs, 0, sizeof(*rs));
	if ((d = opendir(su->root)) == NULL)
		return store_set_error(su->error, NULL, "opendir(%s): %s",
				       su->root, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, old_key, len) != 0 ||
		    (de->d_name[len] != '\0' && de->d_name[len] != '.'))
			continue;
		rs->keys = xreallocarray(rs->keys, rs->count + 1,
					 sizeof(*rs->keys));
		rs->keys[rs->count++] = xstrdup(de->d_name);
	}
	closedir(d);
	return 0;
}

/* Renames the directories and moves their records; stops at the first
 * failure (what was renamed stays renamed, with its records). */
static int rename_apply(struct store_user *su, MDB_txn *txn,
			const struct rename_set *rs, const char *old_key,
			const char *new_key)
{
	char from[4096], to[4096], nkey[512];
	int rc;

	for (size_t i = 0; i < rs->count; i++) {
		snprintf(nkey, sizeof(nkey), "%s%s", new_key,
			 rs->keys[i] + strlen(old_key));
		snprintf(from, sizeof(from), "%s/%s", su->root, rs->keys[i]);
		snprintf(to, sizeof(to), "%s/%s", su->root, nkey);
		if (FAULT("mailbox-rename") || rename(from, to) < 0)
			return store_set_error(su->error, NULL,
					       "rename(%s, %s) failed: %s",
					       from, to, strerror(errno));
		if ((rc = index_move(su->index, txn, rs->keys[i], nkey)) != 0)
			return rc;
	}
	return 0;
}

/* -1 errno EEXIST when any target name exists. */
static int rename_check(struct store_user *su, const struct rename_set *rs,
			const char *old_key, const char *new_key)
{
	char path[4096];
	struct stat st;

	if (strlen(new_key) + STORE_MAILBOX_NAME_MAX > 500) {
		errno = ENAMETOOLONG;
		return store_set_error(su->error, NULL, "name too long");
	}
	for (size_t i = 0; i < rs->count; i++) {
		size_t n = strlen(new_key) + strlen(rs->keys[i]) -
			strlen(old_key);

		snprintf(path, sizeof(path), "%s/%s%s", su->root, new_key,
			 rs->keys[i] + strlen(old_key));
		if (n > STORE_MAILBOX_NAME_MAX + 1) {
			errno = ENAMETOOLONG;
			return store_set_error(su->error, NULL,
					       "new name too long");
		}
		if (lstat(path, &st) == 0) {
			errno = EEXIST;
			return store_set_error(su->error, NULL,
					       "mailbox %s exists", path +
					       strlen(su->root) + 2);
		}
	}
	return 0;
}

static int rename_folders(struct store_user *su, const char *old_key,
			  const char *new_key)
{
	struct rename_set rs;
	size_t olen = strlen(old_key);
	MDB_txn *txn;
	int rc;

	if (strncmp(new_key, old_key, olen) == 0 && new_key[olen] == '.') {
		errno = EINVAL;
		return store_set_error(su->error, NULL,
				       "cannot rename a mailbox into itself");
	}
	if (rename_collect(su, old_key, &rs) < 0)
		return -1;
	rc = -1;
	if (rs.count == 0) {
		errno = ENOENT;
		store_set_error(su->error, NULL, "mailbox does not exist");
	} else if ((rc = store_index_txn_begin(su->index, 0, &txn)) == 0) {
		if ((rc = rename_check(su, &rs, old_key, new_key)) == 0)
			rc = rename_apply(su, txn, &rs, old_key, new_key);
		/* Commit what was done so the index follows the disk. */
		if (rc == 0 || rc == -1) {
			int err = errno, crc = store_txn_commit(txn);

			errno = err;
			if (rc == 0)
				rc = crc;
		} else {
			store_txn_abort(txn);
		}
	}
	rename_set_free(&rs);
	return rc;
}

/* Renames every file of INBOX's sub into dir/sub (names kept). */
static int inbox_move_files(struct store_user *su, const char *dir,
			    const char *sub)
{
	char from[4096], to[4096];
	struct dirent *de;
	DIR *d;

	snprintf(from, sizeof(from), "%s/%s", su->root, sub);
	if ((d = opendir(from)) == NULL)
		return store_set_error(su->error, NULL, "opendir(%s): %s",
				       from, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(from, sizeof(from), "%s/%s/%s", su->root, sub,
			 de->d_name);
		snprintf(to, sizeof(to), "%s/%s/%s", dir, sub, de->d_name);
		if (rename(from, to) < 0 && errno != ENOENT) {
			int err = errno;

			closedir(d);
			errno = err;
			return store_set_error(su->error, NULL,
					       "rename(%s, %s) failed: %s",
					       from, to, strerror(errno));
		}
	}
	closedir(d);
	return maildir_fsync_dir(dir, sub) < 0 ||
		maildir_fsync_dir(su->root, sub) < 0 ?
		store_set_error(su->error, NULL, "fsync(%s/%s): %s", dir, sub,
				strerror(errno)) : 0;
}

/* Copies INBOX's dovecot-keywords so the letters keep their names. */
static void inbox_copy_keywords(struct store_user *su, const char *dir)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/%s", su->root, STORE_KEYWORDS_NAME);
	snprintf(to, sizeof(to), "%s/%s", dir, STORE_KEYWORDS_NAME);
	(void)link(from, to);
}

/* RFC 3501 6.3.5: "Renaming INBOX is permitted, and has special behavior.
 * It moves all messages in INBOX to a new mailbox with the given name,
 * leaving INBOX empty." The new mailbox is new: fresh UIDVALIDITY. */
static int rename_inbox(struct store_user *su, const char *new_name)
{
	struct store_mailbox *mb;
	const char *error;
	char *key, *dir;
	int ret = -1;

	if (maildir_resolve(su, new_name, &key, &dir) < 0)
		return store_set_error(su->error, NULL, "invalid name");
	/* File names must carry INBOX's flags before they move: closing a
	 * view flushes pending renames. */
	if (store_mailbox_open(su, "INBOX", &mb, &error) < 0)
		goto out;
	store_mailbox_close(&mb);
	if (maildir_create_folder(dir, store_errbuf(&su->error)) < 0)
		goto out;
	inbox_copy_keywords(su, dir);
	if (inbox_move_files(su, dir, "cur") < 0 ||
	    inbox_move_files(su, dir, "new") < 0)
		goto out;
	/* Index both now: INBOX's messages become expunged (recorded for
	 * QRESYNC), the new mailbox gets its own UIDVALIDITY. */
	if (store_mailbox_open(su, new_name, &mb, &error) < 0)
		goto out;
	store_mailbox_close(&mb);
	if (store_mailbox_open(su, "INBOX", &mb, &error) < 0)
		goto out;
	store_mailbox_close(&mb);
	ret = 0;
out:
	free(key);
	free(dir);
	return ret;
}

int store_mailbox_rename(struct store_user *su, const char *old_name,
			 const char *new_name, const char **error_r)
{
	const char *why;
	char *okey, *odir, *nkey, *ndir;
	int rc;

	if (maildir_resolve_why(su, old_name, &okey, &odir, &why) < 0)
		return store_set_error(su->error, error_r, "%s", why);
	if (maildir_resolve_why(su, new_name, &nkey, &ndir, &why) < 0) {
		free(okey);
		free(odir);
		return store_set_error(su->error, error_r, "%s", why);
	}
	if (strcmp(nkey, "INBOX") == 0) {
		errno = EEXIST;
		rc = store_set_error(su->error, NULL, "INBOX exists");
	} else if (strcmp(okey, "INBOX") == 0) {
		struct stat st;

		if (lstat(ndir, &st) == 0) {
			errno = EEXIST;
			rc = store_set_error(su->error, NULL,
					     "mailbox %s exists", new_name);
		} else {
			rc = rename_inbox(su, new_name);
		}
	} else {
		rc = rename_folders(su, okey, nkey);
	}
	free(okey);
	free(odir);
	free(nkey);
	free(ndir);
	return rc == 0 ? 0 : mgmt_fail(su, "mailbox rename", rc, error_r);
}

/* ---- LIST ---- */

struct name_list {
	char **names;
	size_t count, cap;
};

static void names_add(struct name_list *nl, const char *name)
{
	if (nl->count == nl->cap) {
		nl->cap = nl->cap ? nl->cap * 2 : 32;
		nl->names = xreallocarray(nl->names, nl->cap,
					  sizeof(*nl->names));
	}
	nl->names[nl->count++] = xstrdup(name);
}

static int str_pcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether name (selectable or implied) has a child in the sorted list. */
static bool has_child(const struct name_list *nl, const char *name)
{
	size_t len = strlen(name), lo = 0, hi = nl->count;
	char prefix[STORE_MAILBOX_NAME_MAX + 2];

	snprintf(prefix, sizeof(prefix), "%s/", name);
	while (lo < hi) {	/* first entry >= prefix */
		size_t mid = (lo + hi) / 2;

		if (strcmp(nl->names[mid], prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nl->count && strncmp(nl->names[lo], prefix, len + 1) == 0;
}

static bool names_has(const struct name_list *nl, const char *name)
{
	return nl->count > 0 && bsearch(&name, nl->names, nl->count, sizeof(*nl->names),
		       str_pcmp) != NULL;
}

/* Folder names from the root's ".A.B" directories, sorted. */
static int list_read(struct store_user *su, struct name_list *nl)
{
	char path[4096], name[STORE_MAILBOX_NAME_MAX + 2];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(su->root)) == NULL)
		return store_set_error(su->error, NULL, "opendir(%s): %s",
				       su->root, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] != '.' || len < 2 ||
		    len > STORE_MAILBOX_NAME_MAX + 1 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", su->root, de->d_name);
		if (!is_folder(path))
			continue;
		maildir_key_to_name(de->d_name + 1, name, sizeof(name));
		if (store_mailbox_name_error(name) == NULL &&
		    strcasecmp(name, "INBOX") != 0)
			names_add(nl, name);
	}
	closedir(d);
	if (nl->count > 1)
		qsort(nl->names, nl->count, sizeof(*nl->names), str_pcmp);
	return 0;
}

static void list_emit(struct name_list *nl, struct name_list *implied,
		      void (*cb)(const char *, unsigned, void *), void *ctx)
{
	for (size_t i = 0; i < nl->count; i++) {
		const char *name = nl->names[i];
		unsigned flags = has_child(nl, name) ?
			STORE_LIST_HAS_CHILDREN : STORE_LIST_HAS_NO_CHILDREN;

		if (names_has(implied, name))
			flags |= STORE_LIST_NOSELECT;
		cb(name, flags, ctx);
	}
}

int store_mailbox_list(struct store_user *su,
		       void (*cb)(const char *name, unsigned list_flags,
				  void *ctx),
		       void *ctx, const char **error_r)
{
	struct name_list nl = { 0 }, implied = { 0 };
	size_t n;

	if (list_read(su, &nl) < 0) {
		*error_r = store_errbuf(&su->error);
		return -1;
	}
	/* Parents without a directory of their own ("A" of ".A.B"). */
	n = nl.count;
	for (size_t i = 0; i < n; i++) {
		char parent[STORE_MAILBOX_NAME_MAX + 1], *slash;

		snprintf(parent, sizeof(parent), "%s", nl.names[i]);
		while ((slash = strrchr(parent, '/')) != NULL) {
			*slash = '\0';
			if (!names_has(&nl, parent) &&
			    !names_has(&implied, parent)) {
				names_add(&implied, parent);
				qsort(implied.names, implied.count,
				      sizeof(char *), str_pcmp);
			}
		}
	}
	for (size_t i = 0; i < implied.count; i++)
		names_add(&nl, implied.names[i]);
	qsort(nl.names, nl.count, sizeof(*nl.names), str_pcmp);
	cb("INBOX", has_child(&nl, "INBOX") ? STORE_LIST_HAS_CHILDREN :
	   STORE_LIST_HAS_NO_CHILDREN, ctx);
	list_emit(&nl, &implied, cb, ctx);
	for (size_t i = 0; i < nl.count; i++)
		free(nl.names[i]);
	for (size_t i = 0; i < implied.count; i++)
		free(implied.names[i]);
	free(nl.names);
	free(implied.names);
	return 0;
}

/* ---- subscriptions ---- */

static void subs_add_dovecot(const char *name, void *ctx)
{
	struct name_list *nl = ctx;

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	if (nl->count < SUBSCRIPTIONS_MAX && !names_has(nl, name)) {
		names_add(nl, name);
		qsort(nl->names, nl->count, sizeof(char *), str_pcmp);
	}
}

static int subs_read(struct store_user *su, struct name_list *nl)
{
	char path[4096], line[SUBSCRIPTION_LINE_MAX + 2];
	char err[STORE_ERROR_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", su->root,
		 STORE_SUBSCRIPTIONS_NAME);
	if ((f = store_fopen_read(path)) == NULL) {
		if (errno != ENOENT)
			return store_set_error(su->error, NULL, "open(%s): %s",
					       path, strerror(errno));
		/* Until Heron writes its own: Dovecot's (dovecot.c). */
		if (dovecot_subscriptions_read(su->root, subs_add_dovecot,
					       nl, err, sizeof(err)) < 0)
			return store_set_error(su->error, NULL, "%s", err);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL &&
	       nl->count < SUBSCRIPTIONS_MAX) {
		size_t len = strcspn(line, "\n");

		if (line[len] != '\n' || len == 0)
			continue;	/* overlong or empty: skipped */
		line[len] = '\0';
		if (!names_has(nl, line)) {
			names_add(nl, line);
			qsort(nl->names, nl->count, sizeof(char *), str_pcmp);
		}
	}
	fclose(f);
	return 0;
}

static int subs_write(struct store_user *su, const struct name_list *nl)
{
	char path[4096], tmp[4096];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", su->root,
		 STORE_SUBSCRIPTIONS_NAME);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", su->root,
		 STORE_SUBSCRIPTIONS_NAME, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	for (size_t i = 0; i < nl->count; i++)
		fprintf(f, "%s\n", nl->names[i]);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	store_set_error(su->error, NULL, "writing %s failed: %s", path,
			strerror(errno));
	unlink(tmp);
	return -1;
}

static void names_free(struct name_list *nl)
{
	for (size_t i = 0; i < nl->count; i++)
		free(nl->names[i]);
	free(nl->names);
	memset(nl, 0, sizeof(*nl));
}

int store_subscriptions_get(struct store_user *su, char ***names_r,
			    size_t *count_r, const char **error_r)
{
	struct name_list nl = { 0 };

	if (subs_read(su, &nl) < 0) {
		names_free(&nl);
		*error_r = store_errbuf(&su->error);
		return -1;
	}
	names_add(&nl, "");	/* room for the NULL terminator */
	free(nl.names[--nl.count]);
	nl.names[nl.count] = NULL;
	*names_r = nl.names;
	*count_r = nl.count;
	return 0;
}

void store_subscriptions_free(char ***names)
{
	if (*names == NULL)
		return;
	for (char **p = *names; *p != NULL; p++)
		free(*p);
	free(*names);
	*names = NULL;
}

static int subs_update(struct store_user *su, const char *name,
		       bool subscribed)
{
	struct name_list nl = { 0 };
	bool has;
	int ret;

	if (subs_read(su, &nl) < 0)
		return -1;
	has = names_has(&nl, name);
	ret = 0;
	if (subscribed && !has) {
		names_add(&nl, name);
		qsort(nl.names, nl.count, sizeof(char *), str_pcmp);
		ret = subs_write(su, &nl);
	} else if (!subscribed && has) {
		for (size_t i = 0, j = 0; i < nl.count; i++) {
			if (strcmp(nl.names[i], name) == 0)
				free(nl.names[i]);
			else
				nl.names[j++] = nl.names[i];
		}
		nl.count--;
		ret = subs_write(su, &nl);
	}
	names_free(&nl);
	return ret;
}

int store_subscriptions_set(struct store_user *su, const char *name,
			    bool subscribed, const char **error_r)
{
	char path[4096];
	const char *why;
	int fd, ret;

	if (strcasecmp(name, "INBOX") == 0)
		name = "INBOX";
	else if ((why = store_mailbox_name_error(name)) != NULL) {
		errno = EINVAL;
		return store_set_error(su->error, error_r, "%s", why);
	}
	/* Read-modify-write under a lock so two sessions' updates both
	 * survive. */
	snprintf(path, sizeof(path), "%s/%s.lock", su->root,
		 STORE_SUBSCRIPTIONS_NAME);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		store_set_error(su->error, error_r, "lock %s failed: %s",
				path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ret = subs_update(su, name, subscribed);
	close(fd);
	if (ret < 0)
		*error_r = store_errbuf(&su->error);
	return ret;
}
