/* store_fixture.h: what the store unit tests share: a throwaway mail
 * root under /tmp, settings pointing at it, and opening users. Included
 * by one test file per binary (everything is static). */
#ifndef HERON_STORE_FIXTURE_H
#define HERON_STORE_FIXTURE_H

#include "conf/config.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char test_dir[256];
static struct settings test_set;

/* Used when the real config.c is not linked in. */
__attribute__((weak)) char *config_mail_path(const struct settings *set,
					     const char *user)
{
	(void)set;
	return xasprintf("%s/%s", test_dir, user);
}

static int store_fixture_rm(const char *path, const struct stat *st,
			    int type, struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(path);
}

/* A fresh mail root /tmp/<prefix>-XXXXXX with mail_path "<root>/%u". */
static void store_fixture_setup(const char *prefix)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(test_dir) == NULL)
		abort();
	free(test_set.mail_path);
	test_set.mail_path = xasprintf("%s/%%u", test_dir);
}

static void teardown(void)
{
	nftw(test_dir, store_fixture_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store_user *store_fixture_user(const char *user)
{
	struct store_user *su = NULL;
	const char *error;

	if (store_user_open(&test_set, user, &su, &error) < 0) {
		printf("store_user_open: %s\n", error);
		abort();
	}
	return su;
}

#endif
