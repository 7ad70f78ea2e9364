/* admin.c: offline administration commands (see admin.h). */
#include "main/admin.h"

#include <stdio.h>
#include <sysexits.h>

bool admin_is_command(const char *cmd)
{
	(void)cmd;
	return false;
}

int admin_main(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "%s: not implemented\n", argv[0]);
	return EX_UNAVAILABLE;
}
