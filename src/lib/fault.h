/* fault.h: fault-injection hooks for crash-consistency tests. Compiled in
 * only with -DHERON_FAULT_INJECTION (the build-asan test build); in the
 * product build FAULT(name) is the constant false and fault.c defines no
 * symbols, so a hook costs nothing.
 *
 * A hook sits in front of a durable step:
 *	if (FAULT("delivery-fsync") || fsync(fd) < 0)
 *		goto fail;
 * FAULT() returns true (errno set) when a rule says the step fails, kills
 * the process with SIGKILL when a rule says so, and is false otherwise.
 * FAULT_POINT(name) is a kill-only point between two steps.
 *
 * Rules come from the environment variable HERON_FAULT (read once per
 * process, at the first hook; forked children inherit the rules):
 *	HERON_FAULT = rule *( "," rule )
 *	rule        = point "=" action [ "@" N [ "+" ] ] [ "%" P ]
 *	point       = a hook name ("delivery-fsync"), or a prefix ending in
 *	              "*" ("delivery-*", "*" = every hook)
 *	action      = "kill" | errno name ("eio", "enospc", "edquot", "exdev",
 *	              "enoent", "eacces", "erofs", "emlink") | errno number
 *	"@N"        = only the Nth hit of the rule in this process (1-based);
 *	"@N+"       = the Nth hit and every later one
 *	"%P"        = each (otherwise matching) hit with probability P percent
 * Examples: "delivery-fsync=kill", "uidlist-rename=eio@3",
 * "index-commit=kill%10,flag-rename=enospc". The first matching rule
 * decides. A malformed rule is logged once and ignored. Hit counters are
 * per process. The hook names are listed in fault.c. */
#ifndef HERON_FAULT_H
#define HERON_FAULT_H

#include <stdbool.h>

#ifdef HERON_FAULT_INJECTION

#define FAULT_ENABLED 1
#define FAULT(name) fault_hit(name)
#define FAULT_POINT(name) ((void)fault_hit(name))

/* Applies the rules to one hit of hook name (see above). */
bool fault_hit(const char *name);
/* Replaces the rules by spec (same grammar; NULL = none) and resets the
 * hit counters: for unit tests. Returns 0, or -1 when spec is malformed
 * (no rules are then active). */
int fault_set(const char *spec);

#else

#define FAULT_ENABLED 0
#define FAULT(name) false
#define FAULT_POINT(name) ((void)0)

#endif

#endif
