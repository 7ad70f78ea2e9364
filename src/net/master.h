/* master.h: the master process of `heron serve`. */
#ifndef HERON_MASTER_H
#define HERON_MASTER_H

struct settings;

/* Binds the listeners and the auth socket, starts the auth process and the
 * workers, restarts them when they die, reloads on SIGHUP, stops on
 * SIGTERM/SIGINT. Takes ownership of set. Returns the exit code. */
int master_run(struct settings *set);

#endif
