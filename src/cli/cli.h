/* cli.h - the coffer command line: subcommand dispatch and the commands themselves. */
#ifndef CF_CLI_CLI_H
#define CF_CLI_CLI_H

/* Exit codes, documented in README.md. */
enum {
    CF_EXIT_OK = 0,
    CF_EXIT_FAILURE = 1, /* the operation failed */
    CF_EXIT_USAGE = 2,   /* bad command line */
};

int cf_cli_main(int argc, char **argv);
int cf_cmd_server(int argc, char **argv);
int cf_cmd_admin(int argc, char **argv);
int cf_cmd_presign(int argc, char **argv);
int cf_cmd_snapshot(int argc, char **argv);
int cf_cmd_console(int argc, char **argv);
int cf_cmd_mirror(int argc, char **argv);
int cf_cmd_health(int argc, char **argv);
/* `coffer console user …`: argv[0] is "user", argv[1] the action (add, ls, rm, passwd). */
int cf_cmd_console_user(int argc, char **argv);

#endif
