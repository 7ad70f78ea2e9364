/* imap_capability.c: what CAPABILITY, the greeting and the login reply
 * advertise (RFC 3501 7.2.1, RFC 9051 7.2.2). Pre-login lists how to log
 * in; post-login lists the extensions. */
#include "imap/imap_capability.h"
#include "imap/imap_client.h"

#include <stdio.h>

/* RFC 9051 Appendix A: both revisions; a client opts in to IMAP4rev2
 * with ENABLE IMAP4rev2. LITERAL+ (RFC 7888) is a superset of the
 * LITERAL- that IMAP4rev2 includes (RFC 9051 4.3). */
#define IMAP_CAPS_COMMON \
	"IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE"
#define IMAP_CAPS_LOGGED_IN \
	" NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE BINARY " \
	"LIST-EXTENDED LIST-STATUS MULTIAPPEND CONDSTORE QRESYNC STATUS=SIZE " \
	"ESEARCH SEARCHRES WITHIN UTF8=ACCEPT COMPRESS=DEFLATE SORT " \
	"SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES"

const char *imap_capability_string(struct imap_client *client)
{
	static char buf[512];
	bool plain_ok = conn_plaintext_auth_ok(client->conn);

	if (client->state != IMAP_STATE_NOT_AUTH) {
		snprintf(buf, sizeof(buf), "%s%s", IMAP_CAPS_COMMON,
			 IMAP_CAPS_LOGGED_IN);
		return buf;
	}
	/* RFC 3501 6.2.1 / 6.2.3: no plaintext login before TLS unless
	 * allowed; then LOGINDISABLED and no AUTH= mechanisms. */
	snprintf(buf, sizeof(buf), "%s%s%s", IMAP_CAPS_COMMON,
		 conn_tls_available(client->conn) &&
		 !conn_is_tls(client->conn) ? " STARTTLS" : "",
		 plain_ok ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED");
	return buf;
}
