/* replay.c: a main() for the fuzz targets without libFuzzer. Linked with
 * one tests/fuzz/fuzz_<name>.c, it feeds every file named on the command
 * line (directories: every regular file in them, not recursive) to
 * LLVMFuzzerTestOneInput, each in a forked child so a crash, an abort()
 * or a sanitizer report fails that input only. Prints the inputs that
 * failed and ends with "<prog>: N passed, M failed"; exits 1 on any
 * failure. Inputs are read into an exact-size heap buffer (so ASan sees
 * reads past the end) of at most REPLAY_MAX_BYTES. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLAY_MAX_BYTES (4 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay_counts {
	unsigned passed, failed;
};

static int replay_read(const char *path, uint8_t **data_r, size_t *size_r)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > REPLAY_MAX_BYTES)
		goto out_close;
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (data == NULL)
		goto out_close;
	while (got < (size_t)st.st_size) {
		n = read(fd, data + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*data_r = data;
	*size_r = got;
	return 0;
out_close:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Runs one input in a child; returns 0 when it came back cleanly. */
static int replay_one(const char *path)
{
	uint8_t *data;
	size_t size;
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (replay_read(path, &data, &size) < 0)
			_exit(2);
		(void)LLVMFuzzerTestOneInput(data, size);
		free(data);
		exit(0);	/* exit, not _exit: LeakSanitizer runs */
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		printf("FAIL %s (signal %d)\n", path, WTERMSIG(status));
	else
		printf("FAIL %s (exit %d)\n", path, WEXITSTATUS(status));
	return -1;
}

static void replay_count(const char *path, struct replay_counts *c)
{
	if (replay_one(path) == 0)
		c->passed++;
	else
		c->failed++;
}

static void replay_dir(const char *dir, struct replay_counts *c)
{
	struct dirent **names;
	struct stat st;
	char path[4096];
	int i, n = scandir(dir, &names, NULL, alphasort);

	if (n < 0)
		return;
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     names[i]->d_name) < sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay_count(path, c);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	struct replay_counts c = { 0, 0 };
	const char *prog = strrchr(argv[0], '/');
	struct stat st;
	int i;

	prog = prog != NULL ? prog + 1 : argv[0];
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) < 0)
			continue;	/* a target may have no regress dir */
		if (S_ISDIR(st.st_mode))
			replay_dir(argv[i], &c);
		else
			replay_count(argv[i], &c);
	}
	printf("%s: %u passed, %u failed\n", prog, c.passed, c.failed);
	return c.failed == 0 ? 0 : 1;
}
