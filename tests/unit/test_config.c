/* test_config.c: heron.conf parsing, errors with file:line, and the
 * mail_path template's refusal of unsafe user names. */
#include "conf/config.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char conf_path[] = "/tmp/heron-test-configXXXXXX";

static int load_text(const char *text, struct settings **set_r,
		     char **error_r)
{
	FILE *f = fopen(conf_path, "w");

	fputs(text, f);
	fclose(f);
	return config_load(conf_path, set_r, error_r);
}

static void test_config_good(void)
{
	struct settings *set = NULL;
	char *error = NULL;
	int ret = load_text(
		"# comment\n"
		"listen = pop3 127.0.0.1:1110\n"
		"listen = lmtp unix:/tmp/x.sock\n"
		"listen = pop3 [::1]:1111   # trailing comment\n"
		"max_message_size = 2M\n"
		"allow_plaintext_auth = yes\n"
		"mail_path = /m/%d/%n\n"
		"log_level = debug\n", &set, &error);

	test_assert(ret == 0);
	if (ret != 0) {
		printf("  error: %s\n", error);
		free(error);
		return;
	}
	test_assert(set->listeners_count == 3);
	test_assert(set->listeners[0].port == 1110);
	test_assert_streq(set->listeners[0].host, "127.0.0.1");
	test_assert_streq(set->listeners[1].unix_path, "/tmp/x.sock");
	test_assert_streq(set->listeners[2].host, "::1");
	test_assert(set->max_message_size == 2 * 1024 * 1024);
	test_assert(set->allow_plaintext_auth);
	test_assert(set->max_line_length == 8192);
	test_assert(set->idle_timeout_secs == 600);
	config_free(&set);
	test_assert(set == NULL);
}

static void test_config_errors(void)
{
	static const struct {
		const char *text;
		const char *error_suffix;
	} rows[] = {
		{ "listen = pop3 127.0.0.1:1\nbogus = 1\n", ":2: unknown key" },
		{ "listen = pop3 127.0.0.1:0\n", ":1: expected HOST:PORT" },
		{ "listen = smtp 127.0.0.1:25\n", ":1: expected: listen" },
		{ "listen = pop3 127.0.0.1:1\nworkers = many\n",
		  ":2: expected a number" },
		{ "listen = pop3 127.0.0.1:1\nmax_message_size = 5Q\n",
		  ":2: expected a size" },
		{ "listen = pop3 127.0.0.1:1\nallow_plaintext_auth = maybe\n",
		  ":2: expected yes or no" },
		{ "listen = pop3 127.0.0.1:1\nnovalue\n", ":2: expected key" },
		{ "workers = 1\n", ": no listen lines" },
		{ "listen = pop3s 127.0.0.1:1\n", ": a TLS listener needs" },
		{ "listen = pop3 127.0.0.1:99999\n", ":1: expected HOST:PORT" },
		{ "listen = lmtp unix:relative\n", ":1: unix: needs" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct settings *set = NULL;
		char *error = NULL;
		int ret = load_text(rows[i].text, &set, &error);

		test_assert_idx(ret == -1, (int)i);
		test_assert_idx(error != NULL &&
				strstr(error, rows[i].error_suffix) != NULL &&
				strncmp(error, conf_path,
					strlen(conf_path)) == 0, (int)i);
		if (error != NULL && strstr(error, rows[i].error_suffix) == NULL)
			printf("  row %zu got: %s\n", i, error);
		free(error);
		config_free(&set);
	}
}

static void test_config_mail_path(void)
{
	static const struct {
		const char *tmpl, *user, *expected;
	} rows[] = {
		{ "/var/mail/%u/Maildir", "alice", "/var/mail/alice/Maildir" },
		{ "/m/%d/%n", "bob@example.org", "/m/example.org/bob" },
		{ "/m/%u%%", "a", "/m/a%" },
		{ "/m/%u", "..", NULL },
		{ "/m/%u", ".", NULL },
		{ "/m/%u", "a/b", NULL },
		{ "/m/%u", "", NULL },
		{ "/m/%u", "a\nb", NULL },
		{ "/m/%n", "@example.org", NULL },
		{ "/m/%d/%n", "x@..", NULL },
		{ "/m/%n/Maildir", "..@example.org", NULL },
		{ "/m/%n/Maildir", ".@example.org", NULL },
		{ "/m/%d/%n", "x@.", NULL },
		{ "/m/%u", "..@x", NULL },
	};
	struct settings set = { 0 };

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path;

		set.mail_path = (char *)rows[i].tmpl;
		path = config_mail_path(&set, rows[i].user);
		if (rows[i].expected == NULL)
			test_assert_idx(path == NULL, (int)i);
		else
			test_assert_streq_idx(path, rows[i].expected, (int)i);
		free(path);
	}
}

int main(void)
{
	int fd = mkstemp(conf_path);

	if (fd < 0)
		return 1;
	close(fd);
	test_run("config_good", test_config_good);
	test_run("config_errors", test_config_errors);
	test_run("config_mail_path", test_config_mail_path);
	unlink(conf_path);
	return test_done("test_config");
}
