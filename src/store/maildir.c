/* maildir.c: users, folder names, Maildir file names and the per-message
 * operations (open, flag change, expunge). Index bookkeeping is in
 * index.c, directory synchronisation in sync.c, delivery in delivery.c.
 *
 * Folder names: "INBOX" (any case) is the Maildir itself; "A/B" is the
 * Maildir++ folder ".A.B". Because '.' is Maildir++'s separator on disk,
 * a '.' inside a name is stored as "^2e" (maildir_name_to_key). Empty
 * components, control bytes and names over STORE_MAILBOX_NAME_MAX are
 * refused. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "conf/config.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maildir info letters in ASCII order, as the spec requires them sorted. */
static const struct {
	char letter;
	uint32_t flag;
} flag_letters[] = {
	{ 'D', STORE_FLAG_DRAFT },
	{ 'F', STORE_FLAG_FLAGGED },
	{ 'P', STORE_FLAG_PASSED },
	{ 'R', STORE_FLAG_ANSWERED },
	{ 'S', STORE_FLAG_SEEN },
	{ 'T', STORE_FLAG_DELETED },
};

FILE *store_fopen_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err;
	FILE *f;

	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL) {
		err = errno;
		close(fd);
		errno = err;
	}
	return f;
}

char *store_errbuf(char **slot)
{
	if (*slot == NULL)
		*slot = xcalloc(1, STORE_ERROR_MAX);
	return *slot;
}

static int set_error_v(char *buf, const char **error_r, const char *fmt,
		       va_list ap)
{
	int err = errno;

	vsnprintf(buf, STORE_ERROR_MAX, fmt, ap);
	if (error_r != NULL)
		*error_r = buf;
	errno = err;
	return -1;
}

int store_set_error_at(char **slot, const char **error_r, const char *fmt,
		       ...)
{
	int err = errno;
	char *buf = store_errbuf(slot);
	va_list ap;

	errno = err;	/* kept across the allocation */
	va_start(ap, fmt);
	set_error_v(buf, error_r, fmt, ap);
	va_end(ap);
	return -1;
}

int store_set_error_buf(char *buf, const char **error_r, const char *fmt,
			...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error_v(buf, error_r, fmt, ap);
	va_end(ap);
	return -1;
}

uint32_t maildir_name_flags(const char *name, size_t len)
{
	const char *info = memchr(name, ':', len);
	uint32_t flags = 0;

	if (info == NULL || len - (size_t)(info - name) < 3 ||
	    info[1] != '2' || info[2] != ',')
		return 0;
	for (const char *p = info + 3; p < name + len; p++) {
		for (size_t i = 0; i < sizeof(flag_letters) /
		     sizeof(flag_letters[0]); i++) {
			if (*p == flag_letters[i].letter)
				flags |= flag_letters[i].flag;
		}
	}
	return flags;
}

uint64_t maildir_name_keywords(const char *name, size_t len)
{
	const char *info = memchr(name, ':', len);
	uint64_t kw = 0;

	if (info == NULL || len - (size_t)(info - name) < 3 ||
	    info[1] != '2' || info[2] != ',')
		return 0;
	for (const char *p = info + 3; p < name + len; p++) {
		if (*p >= 'a' && *p <= 'z')
			kw |= UINT64_C(1) << (*p - 'a');
	}
	return kw;
}

int maildir_cur_path(char *buf, size_t size, const char *basename,
		     size_t bn_len, uint32_t flags, uint64_t keywords)
{
	size_t len = 0;

	if (bn_len + 8 + 6 + STORE_KEYWORD_LETTERS > size) /* SIZE-MATH */
		return -1;
	memcpy(buf, "cur/", 4);
	memcpy(buf + 4, basename, bn_len);
	memcpy(buf + 4 + bn_len, ":2,", 3);
	len = 4 + bn_len + 3;
	for (size_t i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]);
	     i++) {
		if ((flags & flag_letters[i].flag) != 0)
			buf[len++] = flag_letters[i].letter;
	}
	/* Keywords 0..25 as a..z, the Dovecot/mutt convention. */
	for (int i = 0; i < STORE_KEYWORD_LETTERS; i++) {
		if ((keywords & (UINT64_C(1) << i)) != 0)
			buf[len++] = (char)('a' + i);
	}
	buf[len] = '\0';
	return (int)len;
}

void maildir_path_letters(const char *path, size_t len, uint32_t *flags_r,
			  uint64_t *kw_r)
{
	*flags_r = 0;
	*kw_r = 0;
	if (len >= 4 && memcmp(path, "cur/", 4) == 0) {
		*flags_r = maildir_name_flags(path, len);
		*kw_r = maildir_name_keywords(path, len);
	}
}

void maildir_merge_letters(struct index_msg *hdr, const char *old_path,
			   size_t old_len, uint32_t disk_flags,
			   uint64_t disk_kw)
{
	uint32_t file_flags, flag_mask;
	uint64_t file_kw, kw_mask;

	maildir_path_letters(old_path, old_len, &file_flags, &file_kw);
	flag_mask = file_flags ^ disk_flags;
	kw_mask = file_kw ^ disk_kw;
	hdr->flags = (hdr->flags & ~flag_mask) | (disk_flags & flag_mask);
	hdr->keywords = (hdr->keywords & ~kw_mask) | (disk_kw & kw_mask);
}

bool maildir_path_differs(const char *path, size_t path_len, uint32_t flags,
			  uint64_t keywords)
{
	uint64_t letters = keywords &
		((UINT64_C(1) << STORE_KEYWORD_LETTERS) - 1);

	if (path_len < 4 || memcmp(path, "cur/", 4) != 0)
		return flags != 0 || letters != 0 ||
			memcmp(path, "new/", 4) != 0;
	return maildir_name_flags(path, path_len) != flags ||
		maildir_name_keywords(path, path_len) != letters;
}

static bool name_matches(const char *name, const char *basename,
			 size_t bn_len)
{
	return strncmp(name, basename, bn_len) == 0 &&
		(name[bn_len] == '\0' || name[bn_len] == ':');
}

int maildir_find(const char *dir, const char *basename, size_t bn_len,
		 char *buf, size_t size)
{
	static const char *const subs[] = { "cur", "new" };
	struct dirent *de;
	char path[4096];
	DIR *d;

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if ((d = opendir(path)) == NULL)
			return -1;
		while ((errno = 0, de = readdir(d)) != NULL) {
			if (name_matches(de->d_name, basename, bn_len)) {
				snprintf(buf, size, "%s/%s", subs[i],
					 de->d_name);
				closedir(d);
				return 1;
			}
		}
		closedir(d);
	}
	return 0;
}

int maildir_fsync_dir(const char *dir, const char *sub)
{
	char path[4096];
	int fd, ret, err;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = fsync(fd);
	err = errno;
	close(fd);
	errno = err;
	return ret;
}

const char *store_mailbox_name_error(const char *name)
{
	size_t len = strlen(name);

	if (strcasecmp(name, "INBOX") == 0)
		return NULL;
	if (len == 0)
		return "empty mailbox name";
	if (len > STORE_MAILBOX_NAME_MAX)
		return "mailbox name too long";
	if (name[0] == '/' || name[len - 1] == '/' ||
	    strstr(name, "//") != NULL)
		return "empty hierarchy level in mailbox name";
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return "control character in mailbox name";
		/* "." and ".." levels are stored escaped, so they are safe,
		 * but no client means them: refuse rather than surprise. */
		if (*p == '.' && (p == (const unsigned char *)name ||
				  p[-1] == '/') &&
		    (p[1] == '\0' || p[1] == '/' ||
		     (p[1] == '.' && (p[2] == '\0' || p[2] == '/'))))
			return "mailbox name has a \".\" or \"..\" level";
	}
	/* "INBOX/x" is fine; a level named like Maildir++'s own files
	 * is not an issue since folders all start with '.'. */
	return NULL;
}

/* '.' separates levels on disk (Maildir++), so a '.' inside a name is
 * stored escaped as "^2e" (and '^' as "^5e"), the form Dovecot's
 * maildir_name_escape_char = ^ uses. "a/b.c" -> ".a.b^2ec". */
char *maildir_name_to_key(const char *name)
{
	size_t len = strlen(name);
	char *key = xmalloc(1 + len * 3 + 1), *o = key;	/* SIZE-MATH */

	*o++ = '.';
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '/') {
			*o++ = '.';
		} else if (*p == '.' || *p == '^') {
			*o++ = '^';
			*o++ = *p == '.' ? '2' : '5';
			*o++ = 'e';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return key;
}

void maildir_key_to_name(const char *key, char *name, size_t size)
{
	size_t n = 0;

	for (const char *p = key; *p != '\0' && n + 1 < size; p++) {
		int hi, lo;

		if (*p == '.') {
			name[n++] = '/';
		} else if (*p == '^' && (hi = hex_digit_value((unsigned char)
							      p[1])) >= 0 &&
			   (lo = hex_digit_value((unsigned char)p[2])) >= 0) {
			name[n++] = (char)(hi * 16 + lo);
			p += 2;
		} else {
			name[n++] = *p;
		}
	}
	name[n] = '\0';
}

int maildir_resolve_why(struct store_user *su, const char *name,
			char **key_r, char **dir_r, const char **why_r)
{
	char *key;

	*why_r = NULL;
	if (strcasecmp(name, "INBOX") == 0) {
		*key_r = xstrdup("INBOX");
		*dir_r = xstrdup(su->root);
		return 0;
	}
	if ((*why_r = store_mailbox_name_error(name)) != NULL) {
		errno = EINVAL;
		return -1;
	}
	key = maildir_name_to_key(name);
	*key_r = key;
	*dir_r = xasprintf("%s/%s", su->root, key);
	return 0;
}

int maildir_resolve(struct store_user *su, const char *name, char **key_r,
		    char **dir_r)
{
	const char *why;

	return maildir_resolve_why(su, name, key_r, dir_r, &why);
}

static int mkdir_one(const char *path)
{
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Creates dir (and missing parents) plus tmp/ new/ cur/. */
static int maildir_create_dirs(const char *dir, char *errbuf)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[4096];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir_one(path) < 0)
			goto fail;
		*p = '/';
	}
	if (mkdir_one(path) < 0)
		goto fail;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if (mkdir_one(path) < 0)
			goto fail;
	}
	return 0;
fail:
	return store_set_error(errbuf, NULL, "mkdir(%s) failed: %s", path,
			       strerror(errno));
}

int store_user_open(const struct settings *set, const char *user,
		    struct store_user **su_r, const char **error_r)
{
	static char error[STORE_ERROR_MAX];
	struct store_user *su;
	char *root, *path;
	int ret;

	root = config_mail_path(set, user);
	if (root == NULL) {
		errno = EINVAL;
		return store_set_error_buf(error, error_r,
					   "invalid user name for mail_path");
	}
	if (maildir_create_dirs(root, error) < 0) {
		free(root);
		*error_r = error;
		return -1;
	}
	path = xasprintf("%s/%s", root, STORE_INDEX_NAME);
	su = xcalloc(1, sizeof(*su));
	su->user = xstrdup(user);
	su->root = root;
	ret = store_index_open(path, &su->index, error, sizeof(error));
	free(path);
	if (ret < 0) {
		int err = errno;

		store_user_close(&su);
		*error_r = error;
		errno = err;
		return -1;
	}
	*su_r = su;
	return 0;
}

void store_user_close(struct store_user **_su)
{
	struct store_user *su = *_su;

	if (su == NULL)
		return;
	*_su = NULL;
	store_index_unref(&su->index);
	free(su->user);
	free(su->root);
	free(su->error);
	free(su);
}

const char *store_user_name(const struct store_user *su)
{
	return su->user;
}

const char *store_user_root(const struct store_user *su)
{
	return su->root;
}

/* Moves the folder built at tmp to dir, failing with EEXIST rather than
 * replacing an existing dir (rename() would replace an empty one). */
static int folder_rename_noreplace(const char *tmp, const char *dir)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* No RENAME_NOREPLACE here: claim the name, then replace the
	 * empty directory atomically. */
	if (mkdir(dir, 0700) < 0)
		return -1;
	return rename(tmp, dir);
}

/* The folder is built in the parent Maildir's tmp/ and renamed into
 * place, so a crash never leaves a half-made folder that lists but can
 * be neither selected, deleted nor created again (tests/crash found
 * it). A leftover in tmp/ is invisible and removed by the next create
 * of the same process id. */
int maildir_create_folder(const char *dir, char *errbuf)
{
	const char *slash = strrchr(dir, '/');
	struct stat st;
	char *path, *tmp;
	int fd, ret = -1;

	if (stat(dir, &st) == 0) {
		errno = EEXIST;
		return store_set_error(errbuf, NULL, "mkdir(%s) failed: %s",
				       dir, strerror(errno));
	}
	tmp = xasprintf("%.*s/tmp/heron-mkdir.%ld", (int)(slash - dir), dir,
			(long)getpid());
	(void)maildir_remove_folder(tmp, errbuf);
	if (mkdir(tmp, 0700) < 0) {
		store_set_error(errbuf, NULL, "mkdir(%s) failed: %s", tmp,
				strerror(errno));
		goto out;
	}
	FAULT_POINT("mailbox-create");
	if (maildir_create_dirs(tmp, errbuf) < 0)
		goto out_remove;
	/* Maildir++ marks subfolders with an empty "maildirfolder" file. */
	path = xasprintf("%s/maildirfolder", tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(path);
	if (fd >= 0)
		close(fd);
	if (FAULT("mailbox-create-rename") ||
	    folder_rename_noreplace(tmp, dir) < 0) {
		store_set_error(errbuf, NULL, "mkdir(%s) failed: %s", dir,
				strerror(errno));
		goto out_remove;
	}
	ret = 0;
	goto out;
out_remove:
	{
		int err = errno;
		char ignored[STORE_ERROR_MAX];

		(void)maildir_remove_folder(tmp, ignored);
		errno = err;
	}
out:
	free(tmp);
	return ret;
}

int store_mailbox_create(struct store_user *su, const char *name,
			 const char **error_r)
{
	const char *why;
	char *key, *dir;
	int ret = -1;

	if (maildir_resolve_why(su, name, &key, &dir, &why) < 0)
		return store_set_error(su->error, error_r, "%s", why);
	if (strcmp(key, "INBOX") == 0) {
		errno = EEXIST;
		store_set_error(su->error, error_r, "INBOX exists");
		goto out;
	}
	if (maildir_create_folder(dir, store_errbuf(&su->error)) < 0) {
		*error_r = store_errbuf(&su->error);
		goto out;
	}
	ret = 0;
out:
	free(key);
	free(dir);
	return ret;
}

int store_mailbox_open(struct store_user *su, const char *name,
		       struct store_mailbox **mb_r, const char **error_r)
{
	return store_mailbox_open_flags(su, name, 0, mb_r, error_r);
}

int store_mailbox_open_flags(struct store_user *su, const char *name,
			     unsigned flags, struct store_mailbox **mb_r,
			     const char **error_r)
{
	struct store_mailbox *mb;
	const char *why;
	char *key, *dir, *path;
	struct stat st;
	int ret;

	if (maildir_resolve_why(su, name, &key, &dir, &why) < 0)
		return store_set_error(su->error, error_r, "%s", why);
	path = xasprintf("%s/cur", dir);
	ret = stat(path, &st);
	free(path);
	if (ret < 0 || !S_ISDIR(st.st_mode)) {
		if (ret == 0)
			errno = ENOTDIR;
		store_set_error(su->error, error_r, "mailbox %s: %s", name,
				strerror(errno));
		free(key);
		free(dir);
		return -1;
	}
	mb = xcalloc(1, sizeof(*mb));
	mb->su = su;
	mb->key = key;
	mb->dir = dir;
	mb->pop3_fd = -1;
	mb->no_names = (flags & STORE_OPEN_NO_NAMES) != 0;
	if (store_sync(mb, true) < 0) {
		int err = errno;

		store_set_error(su->error, NULL, "%s",
				store_errbuf(&mb->error));
		store_mailbox_close(&mb);
		*error_r = store_errbuf(&su->error);
		errno = err;
		return -1;
	}
	*mb_r = mb;
	return 0;
}

void store_mailbox_close(struct store_mailbox **_mb)
{
	struct store_mailbox *mb = *_mb;

	if (mb == NULL)
		return;
	*_mb = NULL;
	/* A bounded part only: closing after STORE 1:* on a huge mailbox
	 * must not stall the worker; the index keeps the rest pending for
	 * the next session that opens the mailbox to flush in slices. */
	if (mb->rec.pending_renames > 0)
		store_flush_all(mb, STORE_CLOSE_FLUSH_MAX);
	if (mb->pop3_fd >= 0)
		close(mb->pop3_fd);	/* releases the flock */
	store_mailbox_set_view(mb, NULL);
	for (unsigned i = 0; i < mb->kw_count; i++)
		free(mb->kw_names[i]);
	free(mb->kw_names);
	dovecot_pop3_uidls_free(&mb->pop3_uidls);
	free(mb->key);
	free(mb->dir);
	free(mb->error);
	free(mb);
}

int store_mailbox_lock_pop3(struct store_mailbox *mb, const char **error_r)
{
	char path[4096];
	int fd;

	if (mb->pop3_fd >= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", mb->dir, STORE_POP3_LOCK_NAME);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return store_set_error(mb->error, error_r,
				       "open(%s) failed: %s", path,
				       strerror(errno));
	/* RFC 1939 section 8: one session per maildrop. flock() locks
	 * belong to the open file, so two sessions in one process also
	 * exclude each other. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		close(fd);
		errno = err == EAGAIN ? EWOULDBLOCK : err;
		return store_set_error(mb->error, error_r,
				       "flock(%s) failed: %s", path,
				       strerror(errno));
	}
	mb->pop3_fd = fd;
	return 0;
}

int store_mailbox_sync(struct store_mailbox *mb, const char **error_r)
{
	if (store_sync(mb, true) < 0) {
		*error_r = store_errbuf(&mb->error);
		return -1;
	}
	return 0;
}

int store_mailbox_sync_changes(struct store_mailbox *mb,
			       struct store_changes *changes,
			       const char **error_r)
{
	if (store_sync_changes(mb, true, changes) < 0) {
		*error_r = store_errbuf(&mb->error);
		return -1;
	}
	return 0;
}

int store_mailbox_sync_index(struct store_mailbox *mb, const char **error_r)
{
	if (store_sync(mb, false) < 0) {
		*error_r = store_errbuf(&mb->error);
		return -1;
	}
	return 0;
}

int store_mailbox_refresh_changes(struct store_mailbox *mb,
				  struct store_changes *changes,
				  const char **error_r)
{
	if (store_sync_run(mb, true, true, changes) < 0) {
		*error_r = store_errbuf(&mb->error);
		return -1;
	}
	return 0;
}

void store_changes_free(struct store_changes *changes)
{
	free(changes->expunged_uids);
	free(changes->expunged_seqs);
	free(changes->changed_uids);
	memset(changes, 0, sizeof(*changes));
}

uint64_t store_mailbox_highestmodseq(const struct store_mailbox *mb)
{
	return mb->view_rec.highestmodseq;
}

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *mb)
{
	return mb->view_rec.uidvalidity;
}

uint32_t store_mailbox_first_recent_uid(const struct store_mailbox *mb)
{
	return mb->view_rec.first_recent_uid != 0 ?
		mb->view_rec.first_recent_uid : 1;
}

uint32_t store_mailbox_uidnext(const struct store_mailbox *mb)
{
	return mb->view_rec.uidnext;
}

uint32_t store_mailbox_count(const struct store_mailbox *mb)
{
	return mb->count;
}

const struct store_msg *store_mailbox_msg(const struct store_mailbox *mb,
					  uint32_t index)
{
	return index < mb->count ? &mb->msgs[index] : NULL;
}
