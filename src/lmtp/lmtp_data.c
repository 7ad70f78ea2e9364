/* lmtp_data.c: the DATA stream decoder and a Message-ID scanner.
 *
 * Both are pure and incremental: they keep their whole state in a small
 * struct, so input may be split anywhere. The decoder never buffers a
 * line (at most one CR is held back); the scanner keeps one unfolded
 * header field of at most LMTP_HDR_FIELD_MAX bytes and stops at the end
 * of the first header block. */
#include "lmtp/lmtp_private.h"

#include <string.h>
#include <strings.h>

/* A byte inside a line. */
static enum lmtp_data_state data_mid(unsigned char c, unsigned char *out,
				     size_t *o)
{
	if (c == '\r')
		return LMTP_DATA_CR;
	out[(*o)++] = c;
	return c == '\n' ? LMTP_DATA_LINE_START : LMTP_DATA_MID;
}

/* A byte after a held-back CR: CRLF becomes LF, a bare CR is data. */
static enum lmtp_data_state data_after_cr(unsigned char c, unsigned char *out,
					  size_t *o)
{
	if (c == '\n') {
		out[(*o)++] = '\n';
		return LMTP_DATA_LINE_START;
	}
	out[(*o)++] = '\r';
	return data_mid(c, out, o);
}

/* Where the next CR and LF are, at or after the cursor (in_len: none).
 * Each is searched again only once the cursor has passed it, so a call
 * scans its input at most once per character: linear also for lines full
 * of bare CRs or without any CR. */
struct data_scan {
	size_t next_cr, next_lf;
	bool is_valid;		/* searched at least once */
};

static size_t find_from(const unsigned char *in, size_t in_len, size_t i,
			unsigned char c)
{
	const unsigned char *p = memchr(in + i, c, in_len - i);

	return p == NULL ? in_len : (size_t)(p - in);
}

/* Inside a line: copies up to the next CR or LF in one go (memchr and
 * memcpy instead of a call per byte). in[*i] is neither a leading '.'
 * nor the byte after a held-back CR. */
static enum lmtp_data_state data_run(const unsigned char *in, size_t in_len,
				     struct data_scan *sc, size_t *i,
				     unsigned char *out, size_t *o)
{
	size_t end;

	if (!sc->is_valid || sc->next_cr < *i)
		sc->next_cr = find_from(in, in_len, *i, '\r');
	if (!sc->is_valid || sc->next_lf < *i)
		sc->next_lf = find_from(in, in_len, *i, '\n');
	sc->is_valid = true;
	end = sc->next_cr < sc->next_lf ? sc->next_cr : sc->next_lf;
	memcpy(out + *o, in + *i, end - *i);
	*o += end - *i;
	*i = end;
	if (end == in_len)
		return LMTP_DATA_MID;
	(*i)++;
	if (end == sc->next_cr)
		return LMTP_DATA_CR;
	out[(*o)++] = '\n';
	return LMTP_DATA_LINE_START;
}

int lmtp_data_decode(struct lmtp_data_decoder *dec,
		     const unsigned char *in, size_t in_len,
		     unsigned char *out, size_t *out_len_r,
		     size_t *consumed_r)
{
	enum lmtp_data_state st = dec->state;
	struct data_scan sc = { 0, 0, false };
	size_t i = 0, o = 0;
	while (i < in_len && st != LMTP_DATA_DONE) {
		unsigned char c;

		if (st == LMTP_DATA_MID ||
		    (st == LMTP_DATA_LINE_START && in[i] != '.')) {
			st = data_run(in, in_len, &sc, &i, out, &o);
			continue;
		}
		c = in[i++];
		switch (st) {
		case LMTP_DATA_LINE_START:
			st = c == '.' ? LMTP_DATA_DOT : data_mid(c, out, &o);
			break;
		case LMTP_DATA_DOT:
			/* RFC 5321 section 4.5.2: a line of a single period
			 * ends the mail data (we also accept a bare LF);
			 * otherwise the leading period is deleted. */
			if (c == '\r')
				st = LMTP_DATA_DOT_CR;
			else if (c == '\n')
				st = LMTP_DATA_DONE;
			else
				st = data_mid(c, out, &o);
			break;
		case LMTP_DATA_DOT_CR:
			/* ".\r" + not LF: stuffing dot dropped, CR is data */
			st = c == '\n' ? LMTP_DATA_DONE :
				data_after_cr(c, out, &o);
			break;
		case LMTP_DATA_MID:
			st = data_mid(c, out, &o);
			break;
		case LMTP_DATA_CR:
			st = data_after_cr(c, out, &o);
			break;
		case LMTP_DATA_DONE:
			break;
		}
	}
	dec->state = st;
	*out_len_r = o;
	*consumed_r = i;
	return st == LMTP_DATA_DONE ? 1 : 0;
}

void lmtp_hdr_scan_init(struct lmtp_hdr_scan *scan)
{
	memset(scan, 0, sizeof(*scan));
	scan->at_line_start = true;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The current field is complete: is it "Message-ID:"? */
static void hdr_field_done(struct lmtp_hdr_scan *scan)
{
	static const char name[] = "Message-ID";
	size_t name_len = sizeof(name) - 1, i, n = 0;
	const char *f = scan->field;

	if (scan->is_skipping || scan->len <= name_len ||
	    strncasecmp(f, name, name_len) != 0)
		return;
	for (i = name_len; i < scan->len && is_wsp(f[i]); i++)
		;
	if (i == scan->len || f[i] != ':')
		return;
	/* Keep printable ASCII only: the value goes into a log line. */
	for (i++; i < scan->len && n < LMTP_MSGID_MAX; i++) {
		unsigned char c = f[i];

		if (c > 0x20 && c < 0x7f)
			scan->msgid[n++] = (char)c;
	}
	scan->msgid[n] = '\0';
	if (n > 0)
		scan->is_done = true;
}

static void hdr_add(struct lmtp_hdr_scan *scan, char c)
{
	if (scan->is_skipping)
		return;
	if (scan->len == sizeof(scan->field)) {
		scan->is_skipping = true;
		return;
	}
	scan->field[scan->len++] = c;
}

void lmtp_hdr_scan_feed(struct lmtp_hdr_scan *scan, const void *data,
			size_t len)
{
	const char *p = data;

	for (size_t i = 0; i < len && !scan->is_done; i++) {
		char c = p[i];

		if (scan->at_line_start) {
			scan->at_line_start = false;
			if (c == '\n') {
				/* empty line: end of the header block */
				hdr_field_done(scan);
				scan->is_done = true;
				break;
			}
			if (!is_wsp(c)) {
				/* a new field starts: the old one is whole */
				hdr_field_done(scan);
				scan->len = 0;
				scan->is_skipping = false;
			}
		}
		if (c == '\n')
			scan->at_line_start = true;
		else
			hdr_add(scan, c);
	}
}

void lmtp_hdr_scan_finish(struct lmtp_hdr_scan *scan)
{
	if (!scan->is_done) {
		hdr_field_done(scan);
		scan->is_done = true;
	}
}
