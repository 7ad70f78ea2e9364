/* auth_server.h: the auth process. It alone reads the password file; workers
 * ask it over the Unix socket (auth_proto.h). Wrong passwords are answered
 * after a per-IP delay that doubles per consecutive failure. */
#ifndef HERON_AUTH_SERVER_H
#define HERON_AUTH_SERVER_H

struct settings;

/* Body of the auth process: loads set->passwd_file (fatal if unreadable),
 * serves worker connections accepted on listen_fd (bound, listening,
 * non-blocking Unix socket; closed on return) until SIGTERM or SIGINT.
 * SIGHUP reloads the password file, keeping the old one on error. */
void auth_server_main(const struct settings *set, int listen_fd);
/* Delay in msecs before answering the failures'th consecutive failure
 * from one IP: auth_fail_delay_msecs doubled per failure, capped at
 * auth_fail_delay_max_msecs. */
unsigned auth_fail_delay(const struct settings *set, unsigned failures);

#endif
