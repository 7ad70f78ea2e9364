/* fault.c: the HERON_FAULT rules behind FAULT() (see fault.h). Only
 * compiled into test builds (-DHERON_FAULT_INJECTION); otherwise this file
 * is empty. At most FAULT_RULES_MAX rules of FAULT_SPEC_MAX bytes.
 *
 * Hook names (grep FAULT\( src/store):
 *   delivery-write delivery-fsync delivery-close delivery-link
 *   delivery-dir-fsync delivery-index     (message into new/ or cur/)
 *   uidlist-append uidlist-write uidlist-fsync uidlist-rename
 *   index-commit index-committed          (LMDB write txn, before/after)
 *   flag-rename                           (deferred flag renames)
 *   expunge-unlink expunge-dir-fsync
 *   copy-link copy-dir-fsync
 *   mailbox-create mailbox-create-rename mailbox-rename mailbox-delete
 *   master-forked                         (net/master.c, kill only) */
#include "lib/fault.h"

#ifdef HERON_FAULT_INJECTION

#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAULT_RULES_MAX 16
#define FAULT_SPEC_MAX 1024
#define FAULT_NAME_MAX 48

struct fault_rule {
	char point[FAULT_NAME_MAX];	/* without the trailing '*' */
	bool is_prefix;
	int err;		/* 0 = kill */
	unsigned long nth;	/* 0 = any */
	bool nth_on;		/* "@N+" */
	unsigned percent;	/* 100 = always */
	unsigned long hits;
};

static struct fault_rule rules[FAULT_RULES_MAX];
static unsigned rule_count;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static bool loaded;
static uint64_t rng_state;
static pid_t rng_pid;

static const struct {
	const char *name;
	int err;
} errno_names[] = {
	{ "eio", EIO }, { "enospc", ENOSPC }, { "edquot", EDQUOT },
	{ "exdev", EXDEV }, { "enoent", ENOENT }, { "eacces", EACCES },
	{ "erofs", EROFS }, { "emlink", EMLINK }, { "eperm", EPERM },
};

static int fault_parse_action(const char *s, size_t len, int *err_r)
{
	char *end;
	long n;

	if (len == 4 && memcmp(s, "kill", 4) == 0) {
		*err_r = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]);
	     i++) {
		if (strlen(errno_names[i].name) == len &&
		    strncasecmp(s, errno_names[i].name, len) == 0) {
			*err_r = errno_names[i].err;
			return 0;
		}
	}
	n = strtol(s, &end, 10);
	if (end != s + len || n <= 0 || n > 4095)
		return -1;
	*err_r = (int)n;
	return 0;
}

/* One "point=action[@N[+]][%P]" of len bytes into r. */
static int fault_parse_rule(const char *s, size_t len, struct fault_rule *r)
{
	const char *eq = memchr(s, '=', len), *end = s + len, *a, *p;
	size_t plen;
	char num[16];

	memset(r, 0, sizeof(*r));
	r->percent = 100;
	if (eq == NULL || (plen = (size_t)(eq - s)) == 0 ||
	    plen >= sizeof(r->point))
		return -1;
	memcpy(r->point, s, plen);
	if (r->point[plen - 1] == '*') {
		r->is_prefix = true;
		r->point[plen - 1] = '\0';
	}
	a = eq + 1;
	for (p = a; p < end && *p != '@' && *p != '%'; p++)
		;
	if (fault_parse_action(a, (size_t)(p - a), &r->err) < 0)
		return -1;
	while (p < end) {
		char c = *p++;
		const char *q = p;

		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q == p || (size_t)(q - p) >= sizeof(num))
			return -1;
		memcpy(num, p, (size_t)(q - p));
		num[q - p] = '\0';
		if (c == '@') {
			r->nth = strtoul(num, NULL, 10);
			if (q < end && *q == '+') {
				r->nth_on = true;
				q++;
			}
			if (r->nth == 0)
				return -1;
		} else if (c == '%') {
			r->percent = (unsigned)strtoul(num, NULL, 10);
			if (r->percent == 0 || r->percent > 100)
				return -1;
		} else {
			return -1;
		}
		p = q;
	}
	return 0;
}

/* Parses spec into rules[]; on error no rule stays active. */
static int fault_load(const char *spec)
{
	const char *s = spec, *comma;

	rule_count = 0;
	if (spec == NULL || *spec == '\0')
		return 0;
	if (strlen(spec) > FAULT_SPEC_MAX)
		return -1;
	for (; *s != '\0'; s = *comma == ',' ? comma + 1 : comma) {
		comma = strchr(s, ',');
		if (comma == NULL)
			comma = s + strlen(s);
		if (comma == s)
			continue;
		if (rule_count == FAULT_RULES_MAX ||
		    fault_parse_rule(s, (size_t)(comma - s),
				     &rules[rule_count]) < 0) {
			rule_count = 0;
			return -1;
		}
		rule_count++;
	}
	return 0;
}

/* xorshift64*, reseeded in each process (children of a fork must not
 * draw the same numbers). */
static unsigned fault_rand_percent(void)
{
	if (rng_pid != getpid()) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		rng_pid = getpid();
		rng_state = ((uint64_t)ts.tv_nsec << 20) ^
			(uint64_t)ts.tv_sec ^ ((uint64_t)rng_pid << 40) ^
			UINT64_C(0x9e3779b97f4a7c15);
	}
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (unsigned)((rng_state * UINT64_C(2685821657736338717)) >> 33)
		% 100;
}

static bool fault_matches(const struct fault_rule *r, const char *name)
{
	if (r->is_prefix)
		return strncmp(name, r->point, strlen(r->point)) == 0;
	return strcmp(name, r->point) == 0;
}

/* The action of the first rule matching this hit: -1 none, 0 kill, else
 * an errno. */
static int fault_decide(const char *name)
{
	for (unsigned i = 0; i < rule_count; i++) {
		struct fault_rule *r = &rules[i];

		if (!fault_matches(r, name))
			continue;
		r->hits++;
		if (r->nth != 0 && (r->nth_on ? r->hits < r->nth :
				    r->hits != r->nth))
			return -1;
		if (r->percent < 100 && fault_rand_percent() >= r->percent)
			return -1;
		return r->err;
	}
	return -1;
}

bool fault_hit(const char *name)
{
	int action;

	pthread_mutex_lock(&fault_lock);
	if (!loaded) {
		const char *spec = getenv("HERON_FAULT");

		loaded = true;
		if (fault_load(spec) < 0)
			log_warn("fault: ignoring malformed HERON_FAULT=%s",
				 spec);
	}
	action = rule_count == 0 ? -1 : fault_decide(name);
	pthread_mutex_unlock(&fault_lock);
	if (action < 0)
		return false;
	if (action == 0) {
		log_warn("fault: kill point=%s pid=%ld", name,
			 (long)getpid());
		raise(SIGKILL);
		_exit(137);	/* not reached */
	}
	log_info("fault: error point=%s errno=%d", name, action);
	errno = action;
	return true;
}

int fault_set(const char *spec)
{
	int ret;

	pthread_mutex_lock(&fault_lock);
	loaded = true;
	ret = fault_load(spec);
	pthread_mutex_unlock(&fault_lock);
	return ret;
}

#else

/* ISO C wants a declaration in every translation unit. */
typedef int fault_disabled;

#endif
