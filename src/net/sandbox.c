/* sandbox.c: worker self-confinement (sandbox.h).
 *
 * 1. PR_SET_NO_NEW_PRIVS: no exec can ever gain privileges again.
 * 2. Landlock, by raw syscalls (glibc has no wrappers): the filesystem
 *    shrinks to
 *      read/write: the mail root (mail_path up to its first '%', cut at
 *                  the last '/'), state_dir (auth socket, LMTP spool);
 *      read-only:  /usr /lib /lib64 (libraries, iconv gconv modules,
 *                  zoneinfo, locales, OpenSSL engines), /etc/localtime,
 *                  /etc/ssl, /proc/self (sanitizer reports), /dev/urandom;
 *      read/write file: /dev/null.
 *    The password file, the TLS key and anything else are out of reach
 *    even if the worker still runs as root (no `user` configured).
 *    Landlock does not control connect() to Unix sockets by path, so the
 *    auth socket keeps working. Paths that do not exist are skipped.
 * Limits: a mail root of "/" or a relative one, or a mail root that can't
 * be created, leaves Landlock off (logged once). Rules bind to the
 * directories as they are at worker start: a file system mounted over
 * the mail root later is out of reach until the workers are replaced
 * (SIGHUP reload or restart). The Landlock ABI decides
 * which rights are handled (1: basic, 2: REFER, 3: TRUNCATE, 5: IOCTL_DEV).
 * No seccomp filter: the syscall set of libevent + OpenSSL + LMDB is
 * wide and a wrong guess kills a worker mid-session. */
#include "net/sandbox.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

/* ABI 1: EXECUTE .. MAKE_SYM */
#define SANDBOX_FS_ABI1 ((1ULL << 13) - 1)
/* Rights that may be granted on a file (not a directory) */
#define SANDBOX_FS_FILE (LANDLOCK_ACCESS_FS_EXECUTE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define SANDBOX_FS_RO (LANDLOCK_ACCESS_FS_EXECUTE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define SANDBOX_FS_RW_FILE (LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define SANDBOX_PATH_MAX 4096

/* Only the first field: accepted by every kernel with Landlock. */
struct sandbox_ruleset_attr {
	uint64_t handled_access_fs;
};

static const struct {
	const char *path;
	uint64_t access;
} sandbox_fixed[] = {
	{ "/usr", SANDBOX_FS_RO },
	{ "/lib", SANDBOX_FS_RO },
	{ "/lib64", SANDBOX_FS_RO },
	{ "/etc/localtime", SANDBOX_FS_RO },
	{ "/etc/ssl", SANDBOX_FS_RO },
	{ "/proc/self", SANDBOX_FS_RO },
	{ "/dev/urandom", SANDBOX_FS_RO },
	{ "/dev/null", SANDBOX_FS_RW_FILE },
};

static int landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

static uint64_t sandbox_handled(int abi)
{
	uint64_t h = SANDBOX_FS_ABI1;

	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/* Grants access (masked to what is handled, and to file rights for a
 * file) beneath path. A missing path is skipped: 0. */
static int sandbox_allow(int ruleset, const char *path, uint64_t access,
			 uint64_t handled)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	if (fstat(fd, &st) < 0) {
		ret = -1;
		goto out_close;
	}
	pb.allowed_access = access & handled;
	if (!S_ISDIR(st.st_mode))
		pb.allowed_access &= SANDBOX_FS_FILE;
	pb.parent_fd = fd;
	if (pb.allowed_access != 0 &&
	    syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
		    &pb, 0) < 0)
		ret = -1;
out_close:
	close(fd);
	return ret;
}

/* The directory that holds every user's mail: mail_path up to its first
 * '%', cut back to the last '/'. Created if missing (like the store would
 * on first delivery). NULL when there is no usable root. */
static char *sandbox_mail_root(const struct settings *set)
{
	char path[SANDBOX_PATH_MAX];
	const char *pct = strchr(set->mail_path, '%');
	size_t len = pct ? (size_t)(pct - set->mail_path) :
		strlen(set->mail_path);
	char *slash;

	if (len >= sizeof(path) || set->mail_path[0] != '/')
		return NULL;
	memcpy(path, set->mail_path, len);
	path[len] = '\0';
	slash = strrchr(path, '/');
	*slash = '\0';
	if (path[0] == '\0')
		return NULL;	/* "/": nothing would be confined */
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(path, 0700);
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return NULL;
	return xstrdup(path);
}

static int sandbox_rules_fail(const char *path)
{
	log_warn("sandbox: Landlock off: cannot allow %s: %s", path,
		 strerror(errno));
	return -1;
}

/* Adds every rule; -1 (logged) if one of them fails. */
static int sandbox_rules(int ruleset, const struct settings *set,
			 uint64_t handled)
{
	char *root = sandbox_mail_root(set);
	int ret = 0;

	if (root == NULL)
		return sandbox_rules_fail(set->mail_path);
	if (sandbox_allow(ruleset, root, handled, handled) < 0)
		ret = sandbox_rules_fail(root);
	else if (sandbox_allow(ruleset, set->state_dir, handled, handled) < 0)
		ret = sandbox_rules_fail(set->state_dir);
	for (size_t i = 0; ret == 0 && i < sizeof(sandbox_fixed) /
	     sizeof(sandbox_fixed[0]); i++) {
		if (sandbox_allow(ruleset, sandbox_fixed[i].path,
				  sandbox_fixed[i].access, handled) < 0)
			ret = sandbox_rules_fail(sandbox_fixed[i].path);
	}
	free(root);
	return ret;
}

/* Landlock; returns the ABI applied, or 0 when not applied. */
static int sandbox_landlock(const struct settings *set)
{
	struct sandbox_ruleset_attr attr;
	int abi = landlock_abi(), ruleset, ret = 0;

	if (abi <= 0)
		return 0;	/* no Landlock in this kernel: silent */
	attr.handled_access_fs = sandbox_handled(abi);
	ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr,
			       sizeof(attr), 0);
	if (ruleset < 0) {
		log_warn("sandbox: landlock_create_ruleset failed: %s",
			 strerror(errno));
		return 0;
	}
	if (sandbox_rules(ruleset, set, attr.handled_access_fs) < 0)
		ret = 0;
	else if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0)
		log_warn("sandbox: landlock_restrict_self failed: %s",
			 strerror(errno));
	else
		ret = abi;
	close(ruleset);
	return ret;
}

int sandbox_worker(const struct settings *set)
{
	int abi;

	if (!set->sandbox)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error("sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed: %s",
			  strerror(errno));
		return -1;
	}
	abi = sandbox_landlock(set);
	log_debug("sandbox no_new_privs=1 landlock_abi=%d", abi);
	return abi;
}
