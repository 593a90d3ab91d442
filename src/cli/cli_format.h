/* cli_format.h - how the commands write quantities for people (progress bars, summaries). */
#ifndef CF_CLI_CLI_FORMAT_H
#define CF_CLI_CLI_FORMAT_H

#include <stddef.h>

/* bytes in binary units into out: "512 B" (whole bytes), else "1.5 KiB" … "2.25 PiB" with
 * `decimals` digits after the point. Always NUL-terminated (truncated to n). */
void cf_cli_human_bytes(double bytes, int decimals, char *out, size_t n);

#endif
