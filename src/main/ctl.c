/* ctl.c: commands that talk to the running server over its control socket
 * <state_dir>/control (net/control.h has the protocol; admin.h the
 * commands):
 *   heron who [-c FILE]          sessions of every worker
 *   heron kick [-c FILE] USER    close USER's sessions
 *   heron reload [-c FILE]       like SIGHUP
 *   heron stats [-c FILE]        the metrics text
 * One command per connection; the reply ends with "OK" or "ERR reason".
 * Limits: CTL_TIMEOUT_SECS for connecting and for each read. */
#include "main/admin.h"
#include "conf/config.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#define CTL_DEFAULT_CONFIG "/etc/heron/heron.conf"
#define CTL_TIMEOUT_SECS 10
#define CTL_USER_MAX 255

static const char *const ctl_commands[] = { "who", "kick", "reload", "stats" };

bool ctl_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(ctl_commands) / sizeof(*ctl_commands);
	     i++) {
		if (strcmp(cmd, ctl_commands[i]) == 0)
			return true;
	}
	return false;
}

const char ctl_usage_lines[] =
	"       heron who|reload|stats [-c FILE]\n"
	"       heron kick [-c FILE] USER\n";

static int ctl_usage(void)
{
	fprintf(stderr, "usage:\n%s", ctl_usage_lines);
	return EX_USAGE;
}

/* Connects to path; on failure prints why and returns -1 with the exit
 * code in *code_r. */
static int ctl_connect(const char *path, int *code_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { CTL_TIMEOUT_SECS, 0 };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "heron: control socket path too long: %s\n",
			path);
		*code_r = EX_CONFIG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "heron: socket: %s\n", strerror(errno));
		*code_r = EX_OSERR;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	if (errno == ENOENT || errno == ECONNREFUSED) {
		fprintf(stderr, "heron: the server is not running (nothing "
			"listens on %s)\n", path);
		*code_r = EX_UNAVAILABLE;
	} else if (errno == EACCES || errno == EPERM) {
		fprintf(stderr, "heron: %s: permission denied (run as the "
			"user the server runs as)\n", path);
		*code_r = EX_NOPERM;
	} else {
		fprintf(stderr, "heron: connect(%s): %s\n", path,
			strerror(errno));
		*code_r = EX_UNAVAILABLE;
	}
	close(fd);
	return -1;
}

/* Prints the reply lines (notes to stderr) up to OK / ERR. */
static int ctl_print_reply(FILE *in, const char *cmd)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int code = EX_PROTOCOL;

	if (strcmp(cmd, "who") == 0)
		printf("%-7s %-5s %-20s %-24s %-3s %6s %s\n", "PID", "PROTO",
		       "USER", "REMOTE", "TLS", "SECS", "MAILBOX");
	while ((len = getline(&line, &cap, in)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (strcmp(line, "OK") == 0) {
			code = 0;
			break;
		}
		if (strncmp(line, "ERR", 3) == 0) {
			fprintf(stderr, "heron %s: %s\n", cmd,
				line[3] == ' ' ? line + 4 : line);
			code = EX_SOFTWARE;
			break;
		}
		if (line[0] == '#' && strcmp(cmd, "stats") != 0) {
			fprintf(stderr, "%s\n", line);
		} else if (strcmp(cmd, "who") == 0) {
			char pid[16], proto[8], user[256], remote[64], tls[4];
			unsigned long secs;
			int off = 0;

			if (sscanf(line, "%15s %7s %255s %63s %3s %lu %n", pid,
				   proto, user, remote, tls, &secs, &off) == 6)
				printf("%-7s %-5s %-20s %-24s %-3s %6lu %s\n",
				       pid, proto, user, remote, tls, secs,
				       line + off);
			else
				printf("%s\n", line);
		} else {
			printf("%s\n", line);
		}
	}
	if (code == EX_PROTOCOL)
		fprintf(stderr, "heron %s: %s\n", cmd, ferror(in) ?
			"no reply from the server (timeout)" :
			"the server closed the connection");
	free(line);
	return code;
}

static int ctl_run(const char *path, const char *cmd, const char *user)
{
	char req[CTL_USER_MAX + 16];
	FILE *f;
	int fd, code;

	if (user != NULL)
		snprintf(req, sizeof(req), "KICK %s\n", user);
	else
		snprintf(req, sizeof(req), "%s\n", cmd);
	for (char *p = req; *p != '\0' && *p != ' '; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	fd = ctl_connect(path, &code);
	if (fd < 0)
		return code;
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		fprintf(stderr, "heron %s: write: %s\n", cmd, strerror(errno));
		close(fd);
		return EX_IOERR;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return EX_OSERR;
	}
	code = ctl_print_reply(f, cmd);
	fclose(f);
	return code;
}

int ctl_main(int argc, char **argv)
{
	const char *config = CTL_DEFAULT_CONFIG, *cmd = argv[0];
	const char *user = NULL;
	struct settings *set;
	char *error, *path;
	int opt, code;

	optind = 1;
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c')
			return ctl_usage();
		config = optarg;
	}
	if (strcmp(cmd, "kick") == 0) {
		if (optind + 1 != argc)
			return ctl_usage();
		user = argv[optind];
		if (*user == '\0' || strlen(user) > CTL_USER_MAX ||
		    strpbrk(user, " \t\r\n") != NULL) {
			fprintf(stderr, "heron kick: bad user name\n");
			return EX_USAGE;
		}
	} else if (optind != argc) {
		return ctl_usage();
	}
	if (config_load(config, &set, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return EX_CONFIG;
	}
	path = xasprintf("%s/control", set->state_dir);
	config_free(&set);
	code = ctl_run(path, cmd, user);
	free(path);
	return code;
}
