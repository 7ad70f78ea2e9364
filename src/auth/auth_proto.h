/* auth_proto.h: the private line protocol between workers (auth_client.c)
 * and the auth process (auth_server.c) over a Unix stream socket. Fields
 * are separated by TAB, lines end in LF, at most AUTH_PROTO_MAX_LINE bytes
 * including the LF. User names and secrets travel base64-encoded.
 *
 * server -> worker at connect, and again after a passwd reload:
 *   H <TAB> apop(0|1)
 * worker -> server:
 *   V <TAB> id <TAB> service <TAB> remote_ip <TAB> b64(user) <TAB> b64(pass)
 *   A <TAB> id <TAB> remote_ip <TAB> b64(user) <TAB> b64(timestamp)
 *     <TAB> digest
 *   L <TAB> id <TAB> b64(user)
 * server -> worker:
 *   id <TAB> OK <TAB> b64(canonical user) | id <TAB> FAIL | id <TAB> TEMP |
 *   id <TAB> NOUSER
 * A malformed request makes the server disconnect that worker; a malformed
 * reply makes the worker disconnect (pending requests get TEMPFAIL). */
#ifndef HERON_AUTH_PROTO_H
#define HERON_AUTH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_PROTO_MAX_LINE 8192	/* including the LF */
#define AUTH_PROTO_MAX_SERVICE 32
#define AUTH_PROTO_MAX_IP 64
#define AUTH_PROTO_MAX_DIGEST 64	/* APOP digest token as typed */

enum auth_proto_type {
	AUTH_PROTO_VERIFY = 'V',
	AUTH_PROTO_APOP = 'A',
	AUTH_PROTO_LOOKUP = 'L',
};

enum auth_proto_status {
	AUTH_PROTO_OK,
	AUTH_PROTO_FAIL,
	AUTH_PROTO_TEMP,
	AUTH_PROTO_NOUSER,
	AUTH_PROTO_HELLO,	/* "H" line: apop flag in is_apop */
};

struct auth_proto_request {
	enum auth_proto_type type;
	uint32_t id;
	char service[AUTH_PROTO_MAX_SERVICE + 1];	/* V only */
	char remote_ip[AUTH_PROTO_MAX_IP + 1];		/* V and A */
	char digest[AUTH_PROTO_MAX_DIGEST + 1];		/* A only */
	char *user;	/* heap, NUL-free */
	char *secret;	/* heap: password (V), timestamp (A), NULL (L) */
};

struct auth_proto_reply {
	enum auth_proto_status status;
	uint32_t id;		/* not for HELLO */
	bool is_apop;		/* HELLO only */
	char *user;		/* heap, OK only, else NULL */
};

/* True if s can be a service/remote_ip/digest field of at most max bytes:
 * non-empty, printable ASCII without TAB or space. */
bool auth_proto_token_valid(const char *s, size_t max);

/* Parses one request line (without LF; need not be NUL-ended). On success
 * fills *req_r, which the caller releases with auth_proto_request_clear().
 * Returns -1 with a static *error_r on malformed input (nothing to free). */
int auth_proto_request_parse(const char *line, size_t len,
			     struct auth_proto_request *req_r,
			     const char **error_r);
/* Wipes the secret and frees the heap fields. */
void auth_proto_request_clear(struct auth_proto_request *req);
/* Formats req as a line ending in LF into a heap string (*len_r bytes
 * without the NUL). NULL if a field is invalid or the line would exceed
 * AUTH_PROTO_MAX_LINE. The caller wipes and frees it. */
char *auth_proto_request_format(const struct auth_proto_request *req,
				size_t *len_r);

/* Parses one server line (without LF). -1 on malformed input. */
int auth_proto_reply_parse(const char *line, size_t len,
			   struct auth_proto_reply *reply_r,
			   const char **error_r);
void auth_proto_reply_clear(struct auth_proto_reply *reply);
/* "id\tSTATUS[\tb64(user)]\n" (user only for OK) or "H\t0|1\n" for
 * HELLO; heap string, *len_r bytes. NULL if the line would be too long. */
char *auth_proto_reply_format(const struct auth_proto_reply *reply,
			      size_t *len_r);

#endif
