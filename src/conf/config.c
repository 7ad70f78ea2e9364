/* config.c: reads heron.conf ("key = value" lines) into struct settings.
 * Every key is in one table with its type and default; unknown keys and bad
 * values are refused with "file:line: message" (STYLE.md section 4: a
 * broken environment at start-up is fatal). Does not validate paths on
 * disk: the daemon does that when it opens them. */
#include "conf/config.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_LINE_MAX 4096

enum config_type {
	CONFIG_STR,
	CONFIG_BOOL,
	CONFIG_UINT,
	CONFIG_SIZE,
	CONFIG_LOGLEVEL,
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	const char *def;
	uint64_t max;		/* for numbers */
};

#define S(field) offsetof(struct settings, field)
static const struct config_key config_keys[] = {
	{ "user", CONFIG_STR, S(user), NULL, 0 },
	{ "workers", CONFIG_UINT, S(workers), "0", 256 },
	{ "tls_cert", CONFIG_STR, S(tls_cert), NULL, 0 },
	{ "tls_key", CONFIG_STR, S(tls_key), NULL, 0 },
	{ "tls_ciphers", CONFIG_STR, S(tls_ciphers),
	  "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20", 0 },
	{ "tls_allow_tls10", CONFIG_BOOL, S(tls_allow_tls10), "no", 0 },
	{ "mail_path", CONFIG_STR, S(mail_path), "/var/mail/%u/Maildir", 0 },
	{ "passwd_file", CONFIG_STR, S(passwd_file), "/etc/heron/passwd", 0 },
	{ "state_dir", CONFIG_STR, S(state_dir), "/run/heron", 0 },
	{ "metrics_listen", CONFIG_STR, S(metrics_listen), NULL, 0 },
	{ "hostname", CONFIG_STR, S(hostname), NULL, 0 },
	{ "log_level", CONFIG_LOGLEVEL, S(log_level), "info", 0 },
	{ "allow_plaintext_auth", CONFIG_BOOL, S(allow_plaintext_auth), "no", 0 },
	{ "sandbox", CONFIG_BOOL, S(sandbox), "yes", 0 },
	{ "max_conns_per_ip", CONFIG_UINT, S(max_conns_per_ip), "50", 1000000 },
	{ "max_conns_per_user", CONFIG_UINT, S(max_conns_per_user), "20",
	  1000000 },
	{ "max_line_length", CONFIG_SIZE, S(max_line_length), "8K",
	  64 * 1024 * 1024 },
	{ "max_message_size", CONFIG_SIZE, S(max_message_size), "50M",
	  (uint64_t)1 << 40 },
	{ "max_recipients", CONFIG_UINT, S(max_recipients), "100", 100000 },
	{ "idle_timeout", CONFIG_UINT, S(idle_timeout_secs), "600", 86400 },
	{ "imap_idle_timeout", CONFIG_UINT, S(imap_idle_timeout_secs), "1800",
	  86400 },
	{ "auth_fail_delay_msecs", CONFIG_UINT, S(auth_fail_delay_msecs),
	  "1000", 600000 },
	{ "auth_fail_delay_max_msecs", CONFIG_UINT,
	  S(auth_fail_delay_max_msecs), "15000", 600000 },
	{ "max_auth_failures", CONFIG_UINT, S(max_auth_failures), "3", 1000 },
	{ "auth_cache_size", CONFIG_UINT, S(auth_cache_size), "10000",
	  10000000 },
	{ "auth_cache_ttl", CONFIG_UINT, S(auth_cache_ttl_secs), "3600",
	  86400 * 7 },
};
#undef S

static const struct config_key *config_key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]);
	     i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static int config_parse_bool(const char *value, bool *b_r)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
	    strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
		*b_r = true;
	else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
		 strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
		*b_r = false;
	else
		return -1;
	return 0;
}

static int config_parse_size(const char *value, uint64_t max, uint64_t *n_r)
{
	size_t len = strlen(value);
	uint64_t mult = 1, n;

	if (len > 0) {
		switch (toupper((unsigned char)value[len - 1])) {
		case 'K': mult = 1024; len--; break;
		case 'M': mult = 1024 * 1024; len--; break;
		case 'G': mult = 1024 * 1024 * 1024; len--; break;
		default: break;
		}
	}
	if (str_to_u64(value, len, max / mult, &n) < 0)
		return -1;
	*n_r = n * mult;
	return 0;
}

/* Stores value into the field described by key; -1 with *error_r. */
static int config_set(struct settings *set, const struct config_key *key,
		      const char *value, const char **error_r)
{
	char *field = (char *)set + key->offset;
	uint64_t n;
	enum log_level level;

	switch (key->type) {
	case CONFIG_STR:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(value, (bool *)field) < 0) {
			*error_r = "expected yes or no";
			return -1;
		}
		return 0;
	case CONFIG_UINT:
		if (str_to_u64z(value, key->max, &n) < 0) {
			*error_r = "expected a number in range";
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case CONFIG_SIZE:
		if (config_parse_size(value, key->max, &n) < 0) {
			*error_r = "expected a size (number with K, M or G)";
			return -1;
		}
		if (key->offset == offsetof(struct settings, max_line_length))
			*(size_t *)field = (size_t)n;
		else
			*(uint64_t *)field = n;
		return 0;
	case CONFIG_LOGLEVEL:
		if (log_level_parse(value, &level) < 0) {
			*error_r = "expected debug, info, warn or error";
			return -1;
		}
		*(int *)field = (int)level;
		return 0;
	}
	*error_r = "internal: bad key type";
	return -1;
}

static int config_parse_port(const char *s, uint16_t *port_r)
{
	uint64_t n;

	if (str_to_u64z(s, 65535, &n) < 0 || n == 0)
		return -1;
	*port_r = (uint16_t)n;
	return 0;
}

/* "pop3 127.0.0.1:110", "imaps [::1]:993", "lmtp unix:/run/heron/lmtp" */
static int config_parse_listen(struct settings *set, const char *value,
			       const char **error_r)
{
	static const struct {
		const char *name;
		enum listener_proto proto;
		bool is_tls;
	} protos[] = {
		{ "pop3", PROTO_POP3, false }, { "pop3s", PROTO_POP3, true },
		{ "imap", PROTO_IMAP, false }, { "imaps", PROTO_IMAP, true },
		{ "lmtp", PROTO_LMTP, false },
	};
	struct listener_conf l = { 0 };
	const char *sp = strchr(value, ' '), *addr, *colon;
	size_t i, nlen = sp ? (size_t)(sp - value) : 0;

	for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (strlen(protos[i].name) == nlen &&
		    strncmp(protos[i].name, value, nlen) == 0)
			break;
	}
	if (sp == NULL || i == sizeof(protos) / sizeof(protos[0])) {
		*error_r = "expected: listen = pop3|pop3s|imap|imaps|lmtp ADDRESS";
		return -1;
	}
	l.proto = protos[i].proto;
	l.is_tls = protos[i].is_tls;
	for (addr = sp; *addr == ' '; addr++)
		;
	if (strncmp(addr, "unix:", 5) == 0) {
		if (addr[5] != '/' || strlen(addr + 5) > 100) {
			*error_r = "unix: needs an absolute path (max 100 bytes)";
			return -1;
		}
		l.unix_path = xstrdup(addr + 5);
	} else if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (end == NULL || end[1] != ':' ||
		    config_parse_port(end + 2, &l.port) < 0) {
			*error_r = "expected [IPv6]:PORT";
			return -1;
		}
		l.host = xstrndup(addr + 1, (size_t)(end - addr - 1));
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || colon == addr ||
		    config_parse_port(colon + 1, &l.port) < 0) {
			*error_r = "expected HOST:PORT with a port 1-65535";
			return -1;
		}
		l.host = xstrndup(addr, (size_t)(colon - addr));
	}
	set->listeners = xreallocarray(set->listeners,
				       set->listeners_count + 1,
				       sizeof(*set->listeners));
	set->listeners[set->listeners_count++] = l;
	return 0;
}

static char *config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* One line; -1 with *error_r on a bad line. */
static int config_parse_line(struct settings *set, char *line,
			     const char **error_r)
{
	const struct config_key *key;
	char *eq, *name, *value, *hash = strchr(line, '#');

	if (hash != NULL)
		*hash = '\0';
	line = config_trim(line);
	if (*line == '\0')
		return 0;
	eq = strchr(line, '=');
	if (eq == NULL) {
		*error_r = "expected key = value";
		return -1;
	}
	*eq = '\0';
	name = config_trim(line);
	value = config_trim(eq + 1);
	if (strcmp(name, "listen") == 0)
		return config_parse_listen(set, value, error_r);
	key = config_key_find(name);
	if (key == NULL) {
		*error_r = "unknown key";
		return -1;
	}
	return config_set(set, key, value, error_r);
}

static void config_defaults(struct settings *set)
{
	const char *unused;

	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]);
	     i++) {
		if (config_keys[i].def != NULL &&
		    config_set(set, &config_keys[i], config_keys[i].def,
			       &unused) < 0)
			log_fatal("bad default for %s", config_keys[i].name);
	}
}

/* "HOST:PORT" or "[IPv6]:PORT" (metrics_listen). */
static bool config_is_hostport(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint16_t port;

	if (s[0] == '[')
		colon = strchr(s, ']') != NULL ? strchr(s, ']') + 1 : NULL;
	return colon != NULL && *colon == ':' && colon > s + (s[0] == '[') &&
		config_parse_port(colon + 1, &port) == 0;
}

/* Cross-field checks after the whole file is read. */
static const char *config_check(const struct settings *set)
{
	bool need_tls = false;

	if (set->listeners_count == 0)
		return "no listen lines";
	for (size_t i = 0; i < set->listeners_count; i++)
		need_tls |= set->listeners[i].is_tls;
	if (need_tls && (set->tls_cert == NULL || set->tls_key == NULL))
		return "a TLS listener needs tls_cert and tls_key";
	if ((set->tls_cert == NULL) != (set->tls_key == NULL))
		return "tls_cert and tls_key go together";
	if (strstr(set->mail_path, "%u") == NULL &&
	    strstr(set->mail_path, "%n") == NULL)
		return "mail_path must contain %u or %n";
	if (set->metrics_listen != NULL &&
	    !config_is_hostport(set->metrics_listen))
		return "metrics_listen: expected HOST:PORT or [IPv6]:PORT";
	if (set->max_line_length < 512)
		return "max_line_length must be at least 512";
	if (set->auth_fail_delay_max_msecs < set->auth_fail_delay_msecs)
		return "auth_fail_delay_max_msecs is below auth_fail_delay_msecs";
	return NULL;
}

int config_load(const char *path, struct settings **set_r, char **error_r)
{
	struct settings *set = xcalloc(1, sizeof(*set));
	char line[CONFIG_LINE_MAX];
	const char *error = NULL;
	unsigned lineno = 0;
	FILE *f;

	set->path = xstrdup(path);
	config_defaults(set);
	f = fopen(path, "r");
	if (f == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path,
				     strerror(errno));
		goto out_free;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			error = "line too long";
		else if (config_parse_line(set, line, &error) == 0)
			continue;
		*error_r = xasprintf("%s:%u: %s", path, lineno, error);
		fclose(f);
		goto out_free;
	}
	fclose(f);
	error = config_check(set);
	if (error != NULL) {
		*error_r = xasprintf("%s: %s", path, error);
		goto out_free;
	}
	if (set->hostname == NULL) {
		char host[256] = "localhost";
		gethostname(host, sizeof(host) - 1);
		set->hostname = xstrdup(host);
	}
	*set_r = set;
	return 0;
out_free:
	config_free(&set);
	return -1;
}

void config_free(struct settings **setp)
{
	struct settings *set = *setp;

	if (set == NULL)
		return;
	for (size_t i = 0; i < set->listeners_count; i++) {
		free(set->listeners[i].host);
		free(set->listeners[i].unix_path);
	}
	free(set->listeners);
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]);
	     i++) {
		if (config_keys[i].type == CONFIG_STR)
			free(*(char **)((char *)set + config_keys[i].offset));
	}
	free(set->path);
	free(set);
	*setp = NULL;
}

static bool config_user_is_safe(const char *user)
{
	size_t len = strlen(user);

	if (len == 0 || len > 255 || strcmp(user, ".") == 0 ||
	    strcmp(user, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return false;
	}
	return true;
}

static bool config_part_is_safe(const char *s, size_t len)
{
	return len > 0 && !(len == 1 && s[0] == '.') &&
		!(len == 2 && s[0] == '.' && s[1] == '.');
}

char *config_mail_path(const struct settings *set, const char *user)
{
	const char *at = strchr(user, '@'), *p;
	size_t local_len = at ? (size_t)(at - user) : strlen(user);
	char *out, *o;
	size_t cap;

	/* %n and %d alone must not be "", "." or "..": "..@x" with
	 * "/var/mail/%n" would be /var/mail/.. (outside the root), "x@."
	 * with "/var/mail/%d/%n" another domain's directory. */
	if (!config_user_is_safe(user) ||
	    !config_part_is_safe(user, local_len) ||
	    (at != NULL && !config_part_is_safe(at + 1, strlen(at + 1))))
		return NULL;
	/* Each %x expands to at most strlen(user) bytes. SIZE-MATH */
	cap = strlen(set->mail_path) * (strlen(user) + 1) + 1;
	out = o = xmalloc(cap);
	for (p = set->mail_path; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '\0') {
			*o++ = *p;
			continue;
		}
		p++;
		if (*p == 'u') {
			memcpy(o, user, strlen(user));
			o += strlen(user);
		} else if (*p == 'n') {
			memcpy(o, user, local_len);
			o += local_len;
		} else if (*p == 'd' && at != NULL) {
			memcpy(o, at + 1, strlen(at + 1));
			o += strlen(at + 1);
		} else if (*p == '%') {
			*o++ = '%';
		}
	}
	*o = '\0';
	return out;
}
