/* test_imap_fetch_vanished.c: the VANISHED UID FETCH modifier (RFC 7162
 * 3.2.6) in imap_fetch_parse: only with UID FETCH and CHANGEDSINCE, in
 * either order, once. The QRESYNC-enabled check and the VANISHED
 * (EARLIER) replies are the daemon's (tests/proto/test_imap_qresync.py). */
#include "test.h"

#include <stdlib.h>

#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"

/* Parses "T FETCH 1 <items>" and runs imap_fetch_parse on its args;
 * -2 when the command parser refused the line. */
static int parse_items(const char *items, bool is_uid,
		       struct imap_fetch_spec *spec, const char **error_r)
{
	struct imap_parser_settings set;
	struct imap_parser *parser;
	const struct imap_command *cmd;
	char line[1024];
	size_t used, len;
	int ret = -2;

	memset(spec, 0, sizeof(*spec));
	imap_parser_settings_default(&set, true);
	parser = imap_parser_create(&set);
	len = (size_t)snprintf(line, sizeof(line), "T FETCH 1 %s\r\n", items);
	if (imap_parser_feed(parser, line, len, &used) == IMAP_PARSE_DONE) {
		cmd = imap_parser_command(parser);
		ret = imap_fetch_parse(cmd->args + 1, cmd->args_count - 1,
				       is_uid, spec, error_r);
	}
	imap_parser_destroy(&parser);
	return ret;
}

static void test_vanished_modifier(void)
{
	static const struct {
		const char *items;
		bool is_uid;
		bool is_ok;
		uint64_t changedsince;	/* when is_ok */
	} rows[] = {
		{ "(FLAGS) (CHANGEDSINCE 5 VANISHED)", true, true, 5 },
		{ "(FLAGS) (VANISHED CHANGEDSINCE 7)", true, true, 7 },
		{ "FLAGS (changedsince 0 vanished)", true, true, 0 },
		{ "(FLAGS) (CHANGEDSINCE 5 VANISHED)", false, false, 0 },
		{ "(FLAGS) (VANISHED)", true, false, 0 },
		{ "FLAGS (VANISHED VANISHED CHANGEDSINCE 1)", true, false, 0 },
		{ "(FLAGS) (CHANGEDSINCE 1 VANISHED 2)", true, false, 0 },
		{ "(FLAGS) (CHANGEDSINCE VANISHED)", true, false, 0 },
		{ "(FLAGS) (CHANGEDSINCE 1) (VANISHED)", true, false, 0 },
	};
	struct imap_fetch_spec spec;
	const char *error;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = parse_items(rows[i].items, rows[i].is_uid, &spec,
				      &error);

		if (rows[i].is_ok) {
			test_assert_idx(ret == 0, i);
			test_assert_idx(spec.has_vanished, i);
			test_assert_idx(spec.has_changedsince &&
					spec.changedsince ==
					rows[i].changedsince, i);
			test_assert_idx(spec.has_modseq, i);
		} else {
			test_assert_idx(ret != 0, i);
			if (ret == -1)
				test_assert_idx(error != NULL, i);
		}
		imap_fetch_spec_free(&spec);
	}
}

static void test_no_vanished(void)
{
	struct imap_fetch_spec spec;
	const char *error;

	test_assert(parse_items("(FLAGS) (CHANGEDSINCE 3)", true, &spec,
				&error) == 0);
	test_assert(!spec.has_vanished);
	imap_fetch_spec_free(&spec);
}

int main(void)
{
	test_run("vanished_modifier", test_vanished_modifier);
	test_run("no_vanished", test_no_vanished);
	return test_done("imap_fetch_vanished");
}
