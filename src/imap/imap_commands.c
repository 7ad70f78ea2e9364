/* imap_commands.c: the IMAP command table (STYLE.md section 8). The
 * session enforces the state flags; handlers assume them. */
#include "imap/imap_client.h"

#include <string.h>
#include <strings.h>

#define ANY (IMAP_CMD_NOT_AUTH | IMAP_CMD_AUTH)
#define AUTHED IMAP_CMD_AUTH
#define SEL (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

static const struct imap_cmd_def imap_commands[] = {
	{ "CAPABILITY", cmd_capability, ANY },
	{ "NOOP", cmd_noop, ANY },
	{ "LOGOUT", cmd_logout, ANY },
	{ "ID", cmd_id, ANY },
	{ "STARTTLS", cmd_starttls, IMAP_CMD_NOT_AUTH },
	{ "LOGIN", cmd_login, IMAP_CMD_NOT_AUTH },
	{ "AUTHENTICATE", cmd_authenticate, IMAP_CMD_NOT_AUTH },
	{ "ENABLE", cmd_enable, AUTHED },
	{ "NAMESPACE", cmd_namespace, AUTHED },
	{ "SELECT", cmd_select, AUTHED },
	{ "EXAMINE", cmd_select, AUTHED },
	{ "CREATE", cmd_create, AUTHED },
	{ "DELETE", cmd_delete, AUTHED },
	{ "RENAME", cmd_rename, AUTHED },
	{ "SUBSCRIBE", cmd_subscribe, AUTHED },
	{ "UNSUBSCRIBE", cmd_subscribe, AUTHED },
	{ "LIST", cmd_list, AUTHED },
	{ "LSUB", cmd_list, AUTHED },
	{ "STATUS", cmd_status, AUTHED },
	{ "APPEND", cmd_append, AUTHED },
	{ "IDLE", cmd_idle, AUTHED },
	{ "COMPRESS", cmd_compress, AUTHED },
	{ "CHECK", cmd_check, SEL | IMAP_CMD_SELECTED },
	{ "CLOSE", cmd_close, SEL | IMAP_CMD_SELECTED },
	{ "UNSELECT", cmd_close, SEL | IMAP_CMD_SELECTED },
	{ "EXPUNGE", cmd_expunge, SEL | IMAP_CMD_UID_OK },
	{ "SEARCH", cmd_search, SEL | IMAP_CMD_UID_OK | IMAP_CMD_NO_EXPUNGES },
	{ "SORT", cmd_sort, SEL | IMAP_CMD_UID_OK | IMAP_CMD_NO_EXPUNGES },
	{ "THREAD", cmd_thread, SEL | IMAP_CMD_UID_OK | IMAP_CMD_NO_EXPUNGES },
	{ "FETCH", cmd_fetch, SEL | IMAP_CMD_UID_OK | IMAP_CMD_NO_EXPUNGES },
	{ "STORE", cmd_store, SEL | IMAP_CMD_UID_OK | IMAP_CMD_NO_EXPUNGES },
	{ "COPY", cmd_copy, SEL | IMAP_CMD_UID_OK },
	{ "MOVE", cmd_copy, SEL | IMAP_CMD_UID_OK },
};

const struct imap_cmd_def *imap_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]);
	     i++) {
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return &imap_commands[i];
	}
	return NULL;
}
