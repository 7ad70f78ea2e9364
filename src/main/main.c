/* main.c: the heron binary and its subcommands:
 *   heron serve [-c FILE]          run the server in the foreground
 *   heron check-config [-c FILE]   validate the configuration
 *   heron deliver [-c FILE] -u USER [-f SENDER] < message
 *   heron passwd [-s SCHEME]       hash a password read from stdin
 *   heron version
 * and the administration commands of admin.h. */
#include "auth/passdb.h"
#include "conf/config.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lmtp/lmtp.h"
#include "main/admin.h"
#include "net/master.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#define HERON_VERSION "0.1.0"
#define DEFAULT_CONFIG "/etc/heron/heron.conf"
#define PASSWORD_MAX 1024

static void usage(void)
{
	fprintf(stderr,
		"usage: heron serve [-c FILE]\n"
		"       heron check-config [-c FILE]\n"
		"       heron deliver [-c FILE] -u USER [-f SENDER] < message\n"
		"       heron passwd [-s SCHEME] < password\n"
		"%s%s"
		"       heron version\n", ctl_usage_lines, admin_usage_lines);
	exit(EX_USAGE);
}

static struct settings *load_config(const char *path, int fail_code)
{
	struct settings *set;
	char *error;

	if (config_load(path, &set, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		exit(fail_code);
	}
	log_set_level((enum log_level)set->log_level);
	return set;
}

static int cmd_serve_or_check(int argc, char **argv, bool serve)
{
	const char *path = DEFAULT_CONFIG;
	struct settings *set;
	int opt;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c')
			usage();
		path = optarg;
	}
	set = load_config(path, 1);
	if (!serve) {
		printf("%s: ok\n", path);
		config_free(&set);
		return 0;
	}
	return master_run(set);
}

static int cmd_deliver(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG, *user = NULL, *sender = NULL;
	struct settings *set;
	int opt, ret;

	while ((opt = getopt(argc, argv, "c:u:f:")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'u': user = optarg; break;
		case 'f': sender = optarg; break;
		default: usage();
		}
	}
	if (user == NULL)
		usage();
	log_set_tag("deliver");
	set = load_config(path, EX_TEMPFAIL);
	ret = lmtp_deliver_cli(set, user, sender != NULL ? sender : "",
			       STDIN_FILENO);
	config_free(&set);
	return ret;
}

/* Reads one line from stdin without echo when it is a terminal. */
static int read_password(char *buf, size_t size)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO) &&
		tcgetattr(STDIN_FILENO, &old) == 0;
	size_t len;

	if (tty) {
		fprintf(stderr, "Password: ");
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	if (fgets(buf, (int)size, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return len > 0 ? 0 : -1;
}

static int cmd_passwd(int argc, char **argv)
{
	enum passdb_scheme scheme = PASSDB_SCHEME_SHA512_CRYPT;
	char password[PASSWORD_MAX], *hash;
	int opt;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		if (opt != 's')
			usage();
		scheme = passdb_scheme_parse(optarg, strlen(optarg));
		if (scheme == PASSDB_SCHEME_UNKNOWN) {
			fprintf(stderr, "unknown scheme %s\n", optarg);
			return EX_USAGE;
		}
	}
	if (read_password(password, sizeof(password)) < 0) {
		fprintf(stderr, "empty password\n");
		return EX_DATAERR;
	}
	hash = passdb_hash(scheme, password);
	xwipe(password, sizeof(password));
	if (hash == NULL) {
		fprintf(stderr, "hashing failed\n");
		return EX_SOFTWARE;
	}
	printf("%s\n", hash);
	free(hash);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	/* A fixed mmap threshold: large buffers (LMDB's per-environment page
	 * lists are 2 MB) stay separate mappings that are only resident where
	 * touched and go back to the kernel when freed, instead of glibc's
	 * adaptive threshold moving them into the heap for good. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (argc < 2)
		usage();
	cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve_or_check(argc, argv, true);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_serve_or_check(argc, argv, false);
	if (strcmp(cmd, "deliver") == 0)
		return cmd_deliver(argc, argv);
	if (strcmp(cmd, "passwd") == 0)
		return cmd_passwd(argc, argv);
	if (admin_is_command(cmd))
		return admin_main(argc, argv);
	if (ctl_is_command(cmd))
		return ctl_main(argc, argv);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("heron %s%s\n", HERON_VERSION,
		       FAULT_ENABLED ? " (fault-injection)" : "");
		return 0;
	}
	usage();
}
