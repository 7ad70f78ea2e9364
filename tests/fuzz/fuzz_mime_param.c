/* fuzz_mime_param.c: Content-Type / Content-Disposition / Content-Language
 * values with RFC 2231 parameters (src/mail/mime_param.c). Every parse
 * must give non-NULL type/subtype, at most MIME_PARAMS_MAX parameters with
 * non-NULL names and values, each found again by mime_params_get(); RFC
 * 2231 values ("name*") go through rfc2231_decode_value() (NULL result
 * on -1). Empty language tags and empty tokens are never returned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime_param.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const struct mime_params *params)
{
	unsigned int i;
	size_t n;
	char *utf8;

	if (params->count > MIME_PARAMS_MAX)
		abort();
	for (i = 0; i < params->count; i++) {
		const struct mime_param *p = &params->v[i];

		if (p->name == NULL || p->value == NULL ||
		    mime_params_get(params, p->name) == NULL)
			abort();
		n = strlen(p->name);
		if (n == 0 || p->name[n - 1] != '*')
			continue;
		if (rfc2231_decode_value(p->value, &utf8) < 0) {
			if (utf8 != NULL)
				abort();
			continue;
		}
		free(utf8);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size > 0 ? size : 1);	/* exact size */
	char *type, *subtype, *disp, **langs, *tok;
	struct mime_params params;
	unsigned int count, i;

	memcpy(copy, data, size);
	mime_content_type_parse(copy, size, &type, &subtype, &params);
	if (type == NULL || subtype == NULL)
		abort();
	check_params(&params);
	mime_params_free(&params);
	free(type);
	free(subtype);

	mime_disposition_parse(copy, size, &disp, &params);
	check_params(&params);
	mime_params_free(&params);
	free(disp);

	mime_language_parse(copy, size, &langs, &count);
	for (i = 0; i < count; i++) {
		if (langs[i] == NULL || langs[i][0] == '\0')
			abort();
	}
	mime_strings_free(langs, count);

	tok = mime_token_parse(copy, size);
	if (tok != NULL && tok[0] == '\0')
		abort();
	free(tok);
	free(copy);
	return 0;
}
