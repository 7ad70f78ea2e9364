/* config.h: heron.conf, the one configuration file.
 *
 * Format: one "key = value" per line; '#' starts a comment; blank lines are
 * ignored. "listen" may repeat. Unknown keys and bad values are refused with
 * "file:line: message". See etc/heron.conf.example for every key. */
#ifndef HERON_CONFIG_H
#define HERON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum listener_proto {
	PROTO_POP3,
	PROTO_IMAP,
	PROTO_LMTP,
};

struct listener_conf {
	enum listener_proto proto;
	bool is_tls;		/* implicit TLS (pop3s, imaps) */
	char *host;		/* NULL for a Unix socket */
	uint16_t port;
	char *unix_path;	/* set for "unix:/path" listeners */
};

struct settings {
	char *path;		/* the file these came from */
	char *user;		/* drop to this user when started as root */
	unsigned workers;	/* 0 = one per core */
	struct listener_conf *listeners;
	size_t listeners_count;

	char *tls_cert;
	char *tls_key;
	char *tls_ciphers;	/* TLS 1.2 cipher list */
	bool tls_allow_tls10;	/* default off: TLS 1.2 and newer only */

	char *mail_path;	/* template: %u = user, %d = domain, %n = local */
	char *passwd_file;
	char *state_dir;	/* runtime files: auth socket, pid, spool */
	char *metrics_listen;	/* "HOST:PORT" for GET /metrics, NULL = off */
	char *hostname;		/* banner and LMTP greeting */
	int log_level;		/* enum log_level */

	bool allow_plaintext_auth;	/* also on non-TLS, non-loopback */
	bool sandbox;		/* workers: no_new_privs + Landlock */
	unsigned max_conns_per_ip;
	unsigned max_conns_per_user;
	size_t max_line_length;		/* command lines, all protocols */
	uint64_t max_message_size;	/* LMTP DATA, APPEND */
	unsigned max_recipients;	/* LMTP RCPT per transaction */
	unsigned idle_timeout_secs;	/* POP3/LMTP idle (RFC 1939: >= 600) */
	unsigned imap_idle_timeout_secs;/* IMAP (RFC 3501: >= 30 min) */
	unsigned auth_fail_delay_msecs;	/* first failure; doubles per failure */
	unsigned auth_fail_delay_max_msecs;
	unsigned max_auth_failures;	/* per connection, then disconnect */
	unsigned auth_cache_size;	/* verified logins kept; 0 = off */
	unsigned auth_cache_ttl_secs;
};

/* Loads path into a fresh *set_r (defaults applied first). On error
 * returns -1 and sets *error_r to a heap string "file:line: message"
 * that the caller frees. */
int config_load(const char *path, struct settings **set_r, char **error_r);
void config_free(struct settings **set);

/* Expands the mail_path template for user: %u user, %n local part, %d
 * domain, %% percent. Refuses (returns NULL) users that could escape the
 * mail root: empty, "." or ".." (also as local part or domain alone),
 * containing '/', NUL or control bytes,
 * or longer than 255 bytes. Caller frees. */
char *config_mail_path(const struct settings *set, const char *user);

#endif
