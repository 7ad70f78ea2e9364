/* admin.h: the administration subcommands of the heron binary.
 *
 * Offline commands (admin.c) work on the mail store and the password file
 * directly, as root or as the mail user, with or without a running server:
 *   heron user list [-c FILE]
 *   heron mailbox list|status|create|delete [-c FILE] USER [MAILBOX...]
 *   heron expunge [-c FILE] USER MAILBOX SEARCH-KEYS...
 *   heron index check|rebuild [-c FILE] USER
 *   heron force-resync [-c FILE] USER [MAILBOX]
 * Commands that talk to the running server (ctl.c) over its control socket:
 *   heron who|kick USER|reload|stats [-c FILE]
 * Each returns the process exit code (sysexits.h). */
#ifndef HERON_ADMIN_H
#define HERON_ADMIN_H

#include <stdbool.h>

/* True when cmd is one of admin_main's / ctl_main's commands. */
bool admin_is_command(const char *cmd);
bool ctl_is_command(const char *cmd);

/* Usage lines ("       heron ...\n" each) for main's usage text. */
extern const char admin_usage_lines[];
extern const char ctl_usage_lines[];

/* argv[0] is cmd (as after main's shift), getopt-ready. */
int admin_main(int argc, char **argv);
int ctl_main(int argc, char **argv);

#endif
