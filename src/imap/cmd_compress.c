/* cmd_compress.c: COMPRESS (RFC 4978), authenticated and selected states.
 * Only DEFLATE exists; the connection layer (conn_start_compress) does
 * the compressing, this file only the command's rules. */
#include "imap/imap_client.h"
#include "lib/log.h"

#include <strings.h>

int cmd_compress(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	const char *algorithm;

	/* RFC 4978 section 5: compress = "COMPRESS" SP algorithm. */
	if (cmd->args_count != 1 ||
	    !imap_arg_get_atom(&cmd->args[0], &algorithm)) {
		imap_cmd_bad(cmd, "COMPRESS needs an algorithm");
		return IMAP_CMD_DONE;
	}
	if (strcasecmp(algorithm, "DEFLATE") != 0) {
		imap_cmd_bad(cmd, "Unknown compression algorithm");
		return IMAP_CMD_DONE;
	}
	/* RFC 4978 section 3: NO with COMPRESSIONACTIVE, saying which
	 * layer compresses. */
	if (conn_is_compressed(client->conn)) {
		imap_cmd_no(cmd, "[COMPRESSIONACTIVE] DEFLATE active via "
			    "COMPRESS");
		return IMAP_CMD_DONE;
	}
	/* RFC 4978 section 3: the server compresses starting immediately
	 * after the CRLF of the tagged OK. */
	imap_cmd_ok(cmd, "DEFLATE active");
	/* Fails only when the session is closing (the sync before the OK
	 * can end it): nothing more is read then, so no harm. */
	if (conn_start_compress(client->conn) == 0)
		log_debug("imap compress id=%llu user=%s",
			  (unsigned long long)conn_id(client->conn),
			  client->user);
	return IMAP_CMD_DONE;
}
