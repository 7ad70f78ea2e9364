/* admin.c: offline administration commands (see admin.h), the doveadm
 * jobs people use most. They work on the store through store.h, so they
 * are safe while the server runs: every index change holds the user's
 * LMDB write lock, which serialises all heron writers (workers, LMTP,
 * `heron deliver`), and sessions see the result at their next sync
 * (IMAP sends EXPUNGE / EXISTS as for any other session's change).
 *
 * Privileges: the password file is read first (it may be root's only);
 * then, when run as root and the config names `user = X`, the process
 * drops to X (as the master's workers do) before it touches mail, so
 * files keep their owner. Users must exist in the password file: a typo
 * never creates a Maildir.
 *
 * expunge takes IMAP SEARCH keys (RFC 3501 6.4.4) as arguments, e.g.
 * `heron expunge alice INBOX BEFORE 1-Jan-2026 SEEN`, parsed and
 * evaluated by src/imap/imap_search.c exactly as for a client: each
 * argument is one IMAP atom (or a quoted string when it has spaces or
 * specials); "(" and ")" may stand alone or be glued to keys. */
#include "main/admin.h"

#include "auth/passdb.h"
#include "conf/config.h"
#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xmalloc.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#define ADMIN_DEFAULT_CONFIG "/etc/heron/heron.conf"
#define ADMIN_SEARCH_LINE_MAX (64 * 1024)
#define ADMIN_PASSWD_LINE_MAX 4096

struct admin_ctx {
	const char *conf_path;
	bool subscribed;	/* -s */
	bool tabs;		/* -t */
	struct settings *set;
	struct passdb *db;
	int argc;		/* operands after the options */
	char **argv;
	char **user_names;	/* `user list` */
	size_t user_count;
};

static const char *const admin_commands[] = {
	"user", "mailbox", "expunge", "index", "force-resync",
};

bool admin_is_command(const char *cmd)
{
	for (size_t i = 0; i < sizeof(admin_commands) /
	     sizeof(admin_commands[0]); i++) {
		if (strcmp(cmd, admin_commands[i]) == 0)
			return true;
	}
	return false;
}

const char admin_usage_lines[] =
	"       heron user list [-c FILE]\n"
	"       heron mailbox list [-c FILE] [-s] USER\n"
	"       heron mailbox status [-c FILE] [-t] USER MAILBOX...\n"
	"       heron mailbox create [-c FILE] [-s] USER MAILBOX...\n"
	"       heron mailbox delete [-c FILE] USER MAILBOX...\n"
	"       heron expunge [-c FILE] USER MAILBOX SEARCH-KEYS...\n"
	"       heron index check|rebuild [-c FILE] USER\n"
	"       heron force-resync [-c FILE] USER [MAILBOX]\n";

static int admin_usage(void)
{
	fprintf(stderr, "usage:\n%s", admin_usage_lines);
	return EX_USAGE;
}

/* ---- setup ---- */

static int parse_options(struct admin_ctx *ctx, int argc, char **argv,
			 const char *optstring)
{
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, optstring)) != -1) {
		switch (opt) {
		case 'c': ctx->conf_path = optarg; break;
		case 's': ctx->subscribed = true; break;
		case 't': ctx->tabs = true; break;
		default: return -1;
		}
	}
	ctx->argc = argc - optind;
	ctx->argv = argv + optind;
	return 0;
}

/* As the master does for its workers (src/net/master.c). */
static int drop_privileges(const struct settings *set)
{
	struct passwd *pw;

	if (geteuid() != 0 || set->user == NULL)
		return 0;
	if ((pw = getpwnam(set->user)) == NULL) {
		fprintf(stderr, "%s: user %s does not exist\n", set->path,
			set->user);
		return -1;
	}
	if (pw->pw_uid == 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || setuid(0) == 0) {
		fprintf(stderr, "dropping privileges to %s failed: %s\n",
			set->user, strerror(errno));
		return -1;
	}
	return 0;
}

/* The names of the password file's valid lines, in file order; read
 * before the privilege drop (the file may be root's only). */
static int user_names_read(struct admin_ctx *ctx)
{
	char line[ADMIN_PASSWD_LINE_MAX];
	FILE *f = fopen(ctx->set->passwd_file, "re");

	if (f == NULL) {
		fprintf(stderr, "open(%s): %s\n", ctx->set->passwd_file,
			strerror(errno));
		return EX_NOINPUT;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, ":\r\n");

		line[n] = '\0';
		if (n == 0 || line[0] == '#' ||
		    !passdb_user_exists(ctx->db, line))
			continue;
		ctx->user_names = xreallocarray(ctx->user_names,
						ctx->user_count + 1,
						sizeof(char *));
		ctx->user_names[ctx->user_count++] = xstrdup(line);
	}
	fclose(f);
	return 0;
}

/* Config, then the password file, then the privilege drop. */
static int admin_setup(struct admin_ctx *ctx, bool list_users)
{
	char *error;
	int ret;

	if (config_load(ctx->conf_path, &ctx->set, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return EX_CONFIG;
	}
	log_set_tag("admin");
	log_set_level((enum log_level)ctx->set->log_level);
	ctx->db = passdb_load(ctx->set->passwd_file, &error);
	if (ctx->db == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return EX_NOINPUT;
	}
	if (list_users && (ret = user_names_read(ctx)) != 0)
		return ret;
	if (drop_privileges(ctx->set) < 0)
		return EX_NOPERM;
	return 0;
}

static void admin_cleanup(struct admin_ctx *ctx)
{
	for (size_t i = 0; i < ctx->user_count; i++)
		free(ctx->user_names[i]);
	free(ctx->user_names);
	passdb_free(&ctx->db);
	config_free(&ctx->set);
}

static int user_open(struct admin_ctx *ctx, const char *user,
		     struct store_user **su_r)
{
	const char *error;

	if (!passdb_user_exists(ctx->db, user)) {
		fprintf(stderr, "unknown user %s\n", user);
		return EX_NOUSER;
	}
	if (store_user_open(ctx->set, user, su_r, &error) < 0) {
		fprintf(stderr, "%s: %s\n", user, error);
		return EX_TEMPFAIL;
	}
	return 0;
}

/* ---- user list ---- */

static int cmd_user_list(struct admin_ctx *ctx)
{
	for (size_t i = 0; i < ctx->user_count; i++)
		printf("%s\n", ctx->user_names[i]);
	return 0;
}

/* ---- mailbox list|status|create|delete ---- */

static void print_mailbox(const char *name, unsigned list_flags, void *ctx)
{
	(void)list_flags;
	(void)ctx;
	printf("%s\n", name);
}

static int cmd_mailbox_list(struct admin_ctx *ctx, struct store_user *su)
{
	const char *error;
	char **names;
	size_t count;

	if (!ctx->subscribed) {
		if (store_mailbox_list(su, print_mailbox, NULL, &error) < 0)
			goto fail;
		return 0;
	}
	if (store_subscriptions_get(su, &names, &count, &error) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++)
		printf("%s\n", names[i]);
	store_subscriptions_free(&names);
	return 0;
fail:
	fprintf(stderr, "%s\n", error);
	return EX_TEMPFAIL;
}

static int status_one(struct admin_ctx *ctx, struct store_user *su,
		      const char *name)
{
	struct store_mailbox *mb;
	uint32_t count, recent = 0, unseen = 0, first_recent;
	uint64_t size = 0;
	const char *error;

	if (store_mailbox_open_flags(su, name, STORE_OPEN_NO_NAMES, &mb,
				     &error) < 0) {
		fprintf(stderr, "%s: %s\n", name, error);
		return EX_DATAERR;
	}
	count = store_mailbox_count(mb);
	first_recent = store_mailbox_first_recent_uid(mb);
	for (uint32_t i = 0; i < count; i++) {
		const struct store_msg *m = store_mailbox_msg(mb, i);

		recent += m->uid >= first_recent;
		unseen += (m->flags & STORE_FLAG_SEEN) == 0;
		size += m->size;
	}
	printf(ctx->tabs ? "%s\t%u\t%u\t%u\t%u\t%u\t%llu\n" :
	       "%s messages=%u recent=%u unseen=%u uidnext=%u "
	       "uidvalidity=%u size=%llu\n", name, count, recent, unseen,
	       store_mailbox_uidnext(mb), store_mailbox_uidvalidity(mb),
	       (unsigned long long)size);
	store_mailbox_close(&mb);
	return 0;
}

static int cmd_mailbox_status(struct admin_ctx *ctx, struct store_user *su)
{
	int ret = 0, r;

	if (ctx->argc < 2)
		return admin_usage();
	if (ctx->tabs)
		printf("mailbox\tmessages\trecent\tunseen\tuidnext\t"
		       "uidvalidity\tsize\n");
	for (int i = 1; i < ctx->argc; i++) {
		if ((r = status_one(ctx, su, ctx->argv[i])) != 0)
			ret = r;
	}
	return ret;
}

static int cmd_mailbox_change(struct admin_ctx *ctx, struct store_user *su,
			      bool create)
{
	const char *error;
	int ret = 0;

	if (ctx->argc < 2)
		return admin_usage();
	for (int i = 1; i < ctx->argc; i++) {
		const char *name = ctx->argv[i];
		int r = create ? store_mailbox_create(su, name, &error) :
			store_mailbox_delete(su, name, &error);

		if (r == 0 && (create ? ctx->subscribed : true))
			r = store_subscriptions_set(su, name, create, &error);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", name, error);
			ret = errno == EEXIST || errno == ENOENT ||
				errno == EINVAL || errno == EPERM ?
				EX_DATAERR : EX_TEMPFAIL;
		}
	}
	return ret;
}

/* ---- expunge ---- */

/* An IMAP atom as is; anything else as a quoted string. Parentheses at
 * either end stay outside the quotes (they group keys). */
static void search_append_word(struct strbuf *line, const char *w)
{
	size_t len = strlen(w), lead = strspn(w, "("), trail = 0;
	bool is_atom = true;

	while (trail < len - lead && w[len - 1 - trail] == ')')
		trail++;
	for (size_t i = lead; i < len - trail; i++) {
		unsigned char c = (unsigned char)w[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){\"\\%", c) != NULL)
			is_atom = false;
	}
	strbuf_add(line, w, lead);
	if (is_atom && len - trail > lead) {
		strbuf_add(line, w + lead, len - lead - trail);
	} else if (len - trail > lead || !is_atom) {
		strbuf_add(line, "\"", 1);
		for (size_t i = lead; i < len - trail; i++) {
			if (w[i] == '"' || w[i] == '\\')
				strbuf_add(line, "\\", 1);
			strbuf_add(line, w + i, 1);
		}
		strbuf_add(line, "\"", 1);
	}
	strbuf_add(line, w + len - trail, trail);
}

/* Builds "x SEARCH <keys>\r\n" and parses it as a client's command. */
static struct imap_command *search_parse_args(char **words, int count)
{
	struct imap_parser_settings pset;
	struct imap_parser *parser;
	struct imap_command *cmd = NULL;
	struct strbuf line = { NULL, 0, 0 };
	size_t used;

	strbuf_add(&line, "x SEARCH", 8);
	for (int i = 0; i < count; i++) {
		strbuf_add(&line, " ", 1);
		search_append_word(&line, words[i]);
	}
	strbuf_add(&line, "\r\n", 2);
	imap_parser_settings_default(&pset, true);
	pset.utf8 = true;
	parser = imap_parser_create(&pset);
	if (line.len <= ADMIN_SEARCH_LINE_MAX &&
	    imap_parser_feed(parser, line.data, line.len,
			     &used) == IMAP_PARSE_DONE)
		cmd = imap_parser_take_command(parser);
	imap_parser_destroy(&parser);
	free(line.data);
	return cmd;
}

static int search_keyword_index(void *ctx, const char *name,
				unsigned *idx_r)
{
	const char *error;

	return store_mailbox_keyword_index(ctx, name, false, idx_r,
					   &error) < 0 ? -1 : 0;
}

/* 1 match, 0 not (or the file vanished), -1 error. */
static int search_match(struct imap_search_program *prog,
			struct store_mailbox *mb, uint32_t i)
{
	const struct store_msg *msg = store_mailbox_msg(mb, i);
	struct imap_search_msg m = {
		.seq = i + 1, .msg = msg,
		.is_recent = msg->uid >= store_mailbox_first_recent_uid(mb),
	};
	struct imap_search_file rc;
	struct stat st;
	const char *error;
	int r;

	r = imap_search_eval_cheap(prog, &m);
	if (r != IMAP_SEARCH_MAYBE)
		return r == IMAP_SEARCH_YES;
	if ((rc.fd = store_msg_open(mb, msg, &error)) < 0)
		return errno == ENOENT ? 0 : -1;
	rc.size = fstat(rc.fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	r = imap_search_eval_content(prog, &m, imap_search_file_read, &rc);
	close(rc.fd);
	return r < 0 ? -1 : r == IMAP_SEARCH_YES;
}

/* UIDs of mb's messages matching prog into uids (count entries). */
static int search_run(struct imap_search_program *prog,
		      struct store_mailbox *mb, uint32_t *uids, size_t *n_r)
{
	uint32_t count = store_mailbox_count(mb);
	int r;

	*n_r = 0;
	for (uint32_t i = 0; i < count; i++) {
		if ((r = search_match(prog, mb, i)) < 0) {
			fprintf(stderr, "reading uid %u: %s\n",
				store_mailbox_msg(mb, i)->uid,
				strerror(errno));
			return -1;
		}
		if (r > 0)
			uids[(*n_r)++] = store_mailbox_msg(mb, i)->uid;
	}
	return 0;
}

static int expunge_matching(struct store_mailbox *mb,
			    const struct imap_command *cmd)
{
	struct imap_search_program *prog;
	struct imap_search_env env = { 0 };
	uint32_t count = store_mailbox_count(mb), *uids;
	const char *error;
	size_t n = 0;
	int ret = 0;

	env.msg_count = count;
	env.max_uid = count > 0 ? store_mailbox_msg(mb, count - 1)->uid : 0;
	env.keyword_index = search_keyword_index;
	env.ctx = mb;
	env.now = time(NULL);
	if (imap_search_parse(cmd->args, cmd->args_count, &env, &prog,
			      &error) < 0) {
		fprintf(stderr, "search keys: %s\n", error);
		return EX_USAGE;
	}
	uids = xreallocarray(NULL, count + 1, sizeof(*uids));
	if (search_run(prog, mb, uids, &n) < 0) {
		ret = EX_IOERR;
	} else if (n > 0 && store_mailbox_expunge(mb, uids, n, &error) < 0) {
		fprintf(stderr, "expunge: %s\n", error);
		ret = EX_TEMPFAIL;
	} else {
		printf("expunged %zu message%s\n", n, n == 1 ? "" : "s");
	}
	free(uids);
	imap_search_free(&prog);
	return ret;
}

static int cmd_expunge(struct admin_ctx *ctx, struct store_user *su)
{
	struct imap_command *cmd;
	struct store_mailbox *mb;
	const char *error;
	int ret;

	if (ctx->argc < 3)
		return admin_usage();
	if ((cmd = search_parse_args(ctx->argv + 2, ctx->argc - 2)) == NULL) {
		fprintf(stderr, "search keys: syntax error\n");
		return EX_USAGE;
	}
	if (store_mailbox_open_flags(su, ctx->argv[1], STORE_OPEN_NO_NAMES,
				     &mb, &error) < 0) {
		fprintf(stderr, "%s: %s\n", ctx->argv[1], error);
		imap_command_free(&cmd);
		return EX_DATAERR;
	}
	ret = expunge_matching(mb, cmd);
	store_mailbox_close(&mb);
	imap_command_free(&cmd);
	return ret;
}

/* ---- index check|rebuild, force-resync ---- */

static void print_finding(const char *mailbox, const char *text,
			  bool is_problem, void *ctx)
{
	(void)ctx;
	printf("%s%s%s%s\n", is_problem ? "problem: " : "note: ", mailbox,
	       *mailbox != '\0' ? ": " : "", text);
}

static int cmd_index(struct admin_ctx *ctx, const char *sub)
{
	const char *user = ctx->argv[0], *error;
	int found;

	if (!passdb_user_exists(ctx->db, user)) {
		fprintf(stderr, "unknown user %s\n", user);
		return EX_NOUSER;
	}
	if (strcmp(sub, "check") == 0) {
		found = store_index_check_isolated(ctx->set, user,
						   print_finding, NULL,
						   &error);
		if (found < 0) {
			fprintf(stderr, "%s\n", error);
			return EX_SOFTWARE;
		}
		return found > 0 ? 1 : 0;
	}
	if (store_index_repair(ctx->set, user, &error) < 0) {
		fprintf(stderr, "rebuild: %s\n", error);
		return EX_TEMPFAIL;
	}
	printf("index of %s rebuilt\n", user);
	return 0;
}

static int cmd_force_resync(struct admin_ctx *ctx, struct store_user *su)
{
	const char *error;
	char **names;
	size_t count;
	int ret = 0;

	if (ctx->argc > 1) {
		names = xreallocarray(NULL, 1, sizeof(char *));
		names[0] = xstrdup(ctx->argv[1]);
		count = 1;
	} else if (store_user_mailbox_names(su, &names, &count, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return EX_TEMPFAIL;
	}
	for (size_t i = 0; i < count; i++) {
		if (store_mailbox_force_resync(su, names[i], &error) < 0) {
			fprintf(stderr, "%s: %s\n", names[i], error);
			ret = EX_TEMPFAIL;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

/* ---- dispatch ---- */

/* Commands that take USER first and open the user's store. */
static int run_user_command(struct admin_ctx *ctx, const char *cmd,
			    const char *sub)
{
	struct store_user *su;
	int ret;

	if (ctx->argc < 1)
		return admin_usage();
	if (strcmp(cmd, "index") == 0)
		return cmd_index(ctx, sub);
	if ((ret = user_open(ctx, ctx->argv[0], &su)) != 0)
		return ret;
	if (strcmp(cmd, "expunge") == 0)
		ret = cmd_expunge(ctx, su);
	else if (strcmp(cmd, "force-resync") == 0)
		ret = cmd_force_resync(ctx, su);
	else if (strcmp(sub, "list") == 0)
		ret = cmd_mailbox_list(ctx, su);
	else if (strcmp(sub, "status") == 0)
		ret = cmd_mailbox_status(ctx, su);
	else
		ret = cmd_mailbox_change(ctx, su, strcmp(sub, "create") == 0);
	store_user_close(&su);
	return ret;
}

static bool sub_valid(const char *cmd, const char *sub)
{
	static const char *const mailbox_subs[] = {
		"list", "status", "create", "delete",
	};

	if (strcmp(cmd, "user") == 0)
		return sub != NULL && strcmp(sub, "list") == 0;
	if (strcmp(cmd, "index") == 0)
		return sub != NULL && (strcmp(sub, "check") == 0 ||
				       strcmp(sub, "rebuild") == 0);
	if (strcmp(cmd, "mailbox") != 0)
		return true;
	for (size_t i = 0; sub != NULL && i < 4; i++) {
		if (strcmp(sub, mailbox_subs[i]) == 0)
			return true;
	}
	return false;
}

int admin_main(int argc, char **argv)
{
	struct admin_ctx ctx = { .conf_path = ADMIN_DEFAULT_CONFIG };
	const char *cmd = argv[0], *sub = NULL;
	bool has_sub = strcmp(cmd, "expunge") != 0 &&
		strcmp(cmd, "force-resync") != 0;
	int ret;

	if (has_sub) {
		sub = argc > 1 ? argv[1] : NULL;
		if (!sub_valid(cmd, sub))
			return admin_usage();
		argc--;
		argv++;
	}
	/* expunge: options only before USER; search keys are operands */
	if (parse_options(&ctx, argc, argv, has_sub ? "c:st" : "+c:") < 0)
		return admin_usage();
	if ((ret = admin_setup(&ctx, strcmp(cmd, "user") == 0)) == 0) {
		if (strcmp(cmd, "user") == 0)
			ret = cmd_user_list(&ctx);
		else
			ret = run_user_command(&ctx, cmd, sub);
	}
	fflush(stdout);
	admin_cleanup(&ctx);
	return ret;
}
