/* imap_flags.c: IMAP message flags <-> store flag bits (RFC 3501 2.3.2,
 * 9 "flag"). Parses the flag arguments of STORE and APPEND and writes a
 * message's flags for FETCH FLAGS and the STORE replies.
 *
 * Not here: PERMANENTFLAGS / FLAGS lists of SELECT (cmd_mailbox.c).
 * Limits: keywords are atoms of at most STORE_KEYWORD_NAME_MAX bytes; a
 * mailbox holds at most STORE_KEYWORDS_MAX of them (the store refuses
 * more with ENOSPC, reported as "[LIMIT]"). */
#include "imap/imap_client.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/log.h"

static const struct {
	const char *name;
	uint32_t flag;
} imap_system_flags[] = {
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

#define IMAP_SYSTEM_FLAGS_COUNT \
	(sizeof(imap_system_flags) / sizeof(imap_system_flags[0]))

/* "\" atom: a system flag. errno EINVAL on error (BAD). */
static int flags_parse_system(const char *str, uint32_t *flags_r,
			      const char **error_r)
{
	for (size_t i = 0; i < IMAP_SYSTEM_FLAGS_COUNT; i++) {
		if (strcasecmp(str, imap_system_flags[i].name) == 0) {
			*flags_r |= imap_system_flags[i].flag;
			return 0;
		}
	}
	errno = EINVAL;
	/* RFC 3501 2.3.2: \Recent is set by the server only; STORE and
	 * APPEND cannot change it. */
	if (strcasecmp(str, "\\Recent") == 0)
		*error_r = "\\Recent flag can't be set";
	else
		*error_r = "Unknown system flag";
	return -1;
}

/* A keyword atom: looked up (created when create) in mb. */
static int flags_parse_keyword(struct imap_client *client,
			       struct store_mailbox *mb, const char *str,
			       bool create, uint64_t *keywords_r,
			       const char **error_r)
{
	const char *store_error;
	unsigned idx;

	if (strlen(str) > STORE_KEYWORD_NAME_MAX) {
		errno = EINVAL;
		*error_r = "Keyword too long";
		return -1;
	}
	if (store_mailbox_keyword_index(mb, str, create, &idx,
					&store_error) == 0) {
		*keywords_r |= UINT64_C(1) << idx;
		return 0;
	}
	if (!create && errno == ENOENT)
		return 0;	/* a keyword nobody has: no bit to change */
	if (errno == ENOSPC) {
		/* RFC 5530 LIMIT: PERMANENTFLAGS lost "\*" at this point */
		*error_r = "[LIMIT] Too many keywords in this mailbox";
	} else if (errno == EINVAL) {
		*error_r = "Invalid keyword";
	} else {
		log_error("imap store_mailbox_keyword_index(%s) failed "
			  "id=%llu user=%s: %s", str,
			  (unsigned long long)conn_id(client->conn),
			  client->user != NULL ? client->user : "",
			  store_error);
		*error_r = "[SERVERBUG] Internal error, see the server log";
		errno = EIO;
	}
	return -1;
}

static bool flags_is_atom(const char *str)
{
	if (*str == '\0')
		return false;
	for (; *str != '\0'; str++) {
		if (!imap_char_is_atom((unsigned char)*str))
			return false;
	}
	return true;
}

/* One flag argument (an atom). */
static int flags_parse_one(struct imap_client *client,
			   struct store_mailbox *mb, const struct imap_arg *arg,
			   bool create, uint32_t *flags_r,
			   uint64_t *keywords_r, const char **error_r)
{
	const char *str = arg->str;

	if (arg->type != IMAP_ARG_ATOM) {
		errno = EINVAL;
		*error_r = "Invalid flag";
		return -1;
	}
	if (str[0] == '\\') {
		if (!flags_is_atom(str + 1)) {
			errno = EINVAL;
			*error_r = "Invalid flag";
			return -1;
		}
		return flags_parse_system(str, flags_r, error_r);
	}
	if (!flags_is_atom(str)) {
		errno = EINVAL;
		*error_r = "Invalid flag";
		return -1;
	}
	return flags_parse_keyword(client, mb, str, create, keywords_r,
				   error_r);
}

/* Errors: -1 with errno EINVAL for a client syntax error (answer BAD),
 * other errno values (ENOSPC "[LIMIT]", EIO) for NO. mb NULL = the
 * selected mailbox. *flags_r and *keywords_r are set (not or-ed). */
int imap_client_parse_flags(struct imap_client *client,
			    struct store_mailbox *mb,
			    const struct imap_arg *arg, bool create,
			    uint32_t *flags_r, uint64_t *keywords_r,
			    const char **error_r)
{
	const struct imap_arg *list = arg;
	size_t count = 1;

	*flags_r = 0;
	*keywords_r = 0;
	if (mb == NULL)
		mb = client->mb;
	if (arg == NULL) {
		errno = EINVAL;
		*error_r = "Missing flags";
		return -1;
	}
	if (arg->type == IMAP_ARG_LIST) {
		list = arg->list;
		count = arg->list_count;
	}
	for (size_t i = 0; i < count; i++) {
		if (list[i].type == IMAP_ARG_LIST) {
			errno = EINVAL;
			*error_r = "Invalid flag list";
			return -1;
		}
		if (flags_parse_one(client, mb, &list[i], create, flags_r,
				    keywords_r, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Writes the inside of "FLAGS (...)": the flags separated by spaces,
 * without the parentheses (empty for a message without flags). */
void imap_client_append_flags(struct imap_client *client,
			      struct evbuffer *out,
			      const struct store_msg *msg)
{
	const char *const *names = NULL;
	const char *sep = "";
	const char *error;
	unsigned names_count = 0;

	for (size_t i = 0; i < IMAP_SYSTEM_FLAGS_COUNT; i++) {
		if ((msg->flags & imap_system_flags[i].flag) != 0) {
			evbuffer_add_printf(out, "%s%s", sep,
					    imap_system_flags[i].name);
			sep = " ";
		}
	}
	if (msg->keywords != 0 && client->mb != NULL &&
	    store_mailbox_keyword_names(client->mb, &names, &names_count,
					&error) < 0) {
		log_error("imap store_mailbox_keyword_names failed "
			  "id=%llu user=%s: %s",
			  (unsigned long long)conn_id(client->conn),
			  client->user != NULL ? client->user : "", error);
		names_count = 0;
	}
	for (unsigned i = 0; i < names_count && i < 64; i++) {
		if ((msg->keywords & (UINT64_C(1) << i)) != 0) {
			evbuffer_add_printf(out, "%s%s", sep, names[i]);
			sep = " ";
		}
	}
	if (imap_client_is_recent(client, msg->uid))
		evbuffer_add_printf(out, "%s\\Recent", sep);
}
