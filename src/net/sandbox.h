/* sandbox.h: cheap self-confinement of a worker process after it dropped
 * its privileges: no_new_privs always, and Landlock (Linux >= 5.13) where
 * the kernel has it, so a compromised worker can reach only the mail root,
 * state_dir and the read-only files the libraries need (never the password
 * file or the TLS key). Falls back silently where Landlock is missing. */
#ifndef HERON_SANDBOX_H
#define HERON_SANDBOX_H

struct settings;

/* Applies the sandbox when set->sandbox is on (a no-op otherwise). Must run
 * before the process starts threads (Landlock binds the calling thread and
 * its future children). Returns the Landlock ABI applied (> 0), 0 when only
 * no_new_privs applies (Landlock unsupported or not usable with these
 * paths), or -1 if no_new_privs itself failed (logged). */
int sandbox_worker(const struct settings *set);

#endif
