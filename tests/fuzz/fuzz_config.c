/* fuzz_config.c: the configuration file parser (src/conf/config.c). The
 * input up to the first NUL is the file: it is written to a memfd (no
 * file is left behind) that config_load() opens as /proc/self/fd/N. The
 * part after the NUL is a user name for config_mail_path(), whose result
 * must be refused for names that could leave the mail root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/config.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mail_path(const struct settings *set, const char *user)
{
	static const char *const users[] = { "u", "u@d", "@", "a@b@c" };
	char *path;
	size_t i;

	path = config_mail_path(set, user);
	if (path != NULL && (user[0] == '\0' || strchr(user, '/') != NULL ||
			     strcmp(user, "..") == 0 || strlen(user) > 255))
		abort();
	free(path);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		free(config_mail_path(set, users[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	const uint8_t *nul = memchr(data, '\0', size);
	size_t file_len = nul != NULL ? (size_t)(nul - data) : size;
	struct settings *set;
	char path[64], *error, *user;

	if (fd < 0) {
		log_set_level(LOG_LEVEL_ERROR);
		fd = memfd_create("heron-fuzz-conf", 0);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, data, file_len, 0) != (ssize_t)file_len)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (config_load(path, &set, &error) < 0) {
		if (error == NULL || strncmp(error, path, strlen(path)) != 0)
			abort();
		free(error);
		return 0;
	}
	user = nul != NULL ? strndup((const char *)nul + 1,
				     size - file_len - 1) : strdup("user");
	check_mail_path(set, user);
	free(user);
	config_free(&set);
	if (set != NULL)
		abort();
	return 0;
}
