/* ctl.c: commands that talk to the running server (see admin.h). */
#include "main/admin.h"

#include <stdio.h>
#include <sysexits.h>

bool ctl_is_command(const char *cmd)
{
	(void)cmd;
	return false;
}

int ctl_main(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "%s: not implemented\n", argv[0]);
	return EX_UNAVAILABLE;
}
