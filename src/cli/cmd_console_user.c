/*
 * cmd_console_user.c - `coffer console user add|ls|rm|passwd`: the console's users file.
 *
 * The password comes from standard input, never from the command line (argv is visible to every
 * user of the machine in /proc): from a terminal it is asked twice with echo off; from a pipe or
 * file the whole input is the password, less one trailing newline. Editors of one file take its
 * lock (users.h, cf_users_lock) around read-modify-write, so two `user add` at once keep both.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "console/users.h"

static const char user_usage[] =
    "usage: coffer console user add NAME --tier TIER --users-file FILE [--cost N]   (password on stdin)\n"
    "       coffer console user passwd NAME --users-file FILE [--cost N]            (password on stdin)\n"
    "       coffer console user rm NAME --users-file FILE\n"
    "       coffer console user ls --users-file FILE [--json]\n"
    "\n"
    "FILE defaults to $COFFER_CONSOLE_USERS_FILE. The file holds NAME:TIER:HASH lines (bcrypt, cost\n"
    "12 unless --cost) and is written with mode 0600. From a terminal the password is asked twice;\n"
    "otherwise all of standard input, less one trailing newline, is the password.\n";

#define PASSWORD_INPUT_MAX 1024

typedef struct user_opts {
    const char *file, *tier;
    unsigned cost;
    int json;
} user_opts;

static int fail(const char *action, const cf_err *err)
{
    fprintf(stderr, "coffer console user %s: %s\n", action, err->msg);
    return CF_EXIT_FAILURE;
}

/* One line from a terminal, echo off. 0, or -1 with a message printed. */
static int read_tty_line(const char *prompt, char *buf, size_t size)
{
    struct termios saved, quiet;
    if (tcgetattr(STDIN_FILENO, &saved) != 0) {
        fprintf(stderr, "coffer console user: cannot turn terminal echo off: %s\n", strerror(errno));
        return -1;
    }
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    /* Echo off before the prompt: what is typed once the prompt shows must not be flushed. */
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
        fprintf(stderr, "coffer console user: cannot turn terminal echo off: %s\n", strerror(errno));
        return -1;
    }
    fputs(prompt, stderr);
    fflush(stderr);
    char *got = fgets(buf, (int)size, stdin);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    if (!got) {
        fputs("coffer console user: no password given\n", stderr);
        return -1;
    }
    size_t len = strlen(buf);
    if (len && buf[len - 1] != '\n' && !feof(stdin)) {
        fprintf(stderr, "coffer console user: the password is longer than %d bytes\n",
                PASSWORD_INPUT_MAX - 2);
        return -1;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* All of a non-terminal stdin, less one trailing newline. */
static int read_piped(char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "coffer console user: cannot read the password from standard input: %s\n",
                    strerror(errno));
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == size - 1) {
            fprintf(stderr, "coffer console user: the password on standard input is longer than %zu bytes\n",
                    size - 2);
            return -1;
        }
    }
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (memchr(buf, '\0', n) || strpbrk(buf, "\r\n")) {
        fputs("coffer console user: the password holds a newline or NUL byte; no login form can send it\n",
              stderr);
        return -1;
    }
    return 0;
}

static int read_password(const char *name, char *buf, size_t size)
{
    if (isatty(STDIN_FILENO)) {
        char prompt[128], again[PASSWORD_INPUT_MAX];
        snprintf(prompt, sizeof prompt, "Password for %s: ", name);
        if (read_tty_line(prompt, buf, size) != 0)
            return -1;
        int rc = read_tty_line("Repeat the password: ", again, sizeof again);
        int same = rc == 0 && strcmp(buf, again) == 0;
        OPENSSL_cleanse(again, sizeof again);
        if (rc != 0)
            return -1;
        if (!same) {
            fputs("coffer console user: the two passwords differ; nothing changed\n", stderr);
            return -1;
        }
    } else if (read_piped(buf, size) != 0) {
        return -1;
    }
    if (!*buf) {
        fputs("coffer console user: the password is empty; nothing changed\n", stderr);
        return -1;
    }
    return 0;
}

/* The file's users, or an empty set when it does not exist yet and missing_ok. */
static int load(const char *path, int missing_ok, cf_users **out, cf_err *err)
{
    int rc = cf_users_load_file(path, out, err);
    if (rc == CF_ENOTFOUND && missing_ok) {
        *out = cf_users_new();
        return *out ? 0 : cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    return rc;
}

/* Reads the password and hashes it before the lock: a prompt or 250 ms of bcrypt must not hold
 * other editors back. *hash: caller frees. */
static int new_hash(const char *action, const char *name, unsigned cost, char **hash)
{
    char password[PASSWORD_INPUT_MAX];
    if (read_password(name, password, sizeof password) != 0)
        return CF_EXIT_FAILURE;
    cf_err err;
    int rc = cf_users_hash_password(password, cost, hash, &err);
    OPENSSL_cleanse(password, sizeof password);
    return rc ? fail(action, &err) : CF_EXIT_OK;
}

/* add, passwd and rm: lock, load, change, write atomically, unlock. */
static int edit(const char *action, const char *path, const char *name, const char *tier, const char *hash)
{
    cf_err err;
    int lock_fd;
    if (cf_users_lock(path, &lock_fd, &err) != 0)
        return fail(action, &err);
    cf_users *u = NULL;
    int rc = load(path, strcmp(action, "add") == 0, &u, &err);
    if (!rc && strcmp(action, "add") == 0)
        rc = cf_users_add(u, name, tier, hash, &err);
    else if (!rc && strcmp(action, "passwd") == 0)
        rc = cf_users_set_hash(u, name, hash, &err);
    else if (!rc)
        rc = cf_users_remove(u, name, &err);
    if (!rc)
        rc = cf_users_write_file(u, path, &err);
    cf_users_unlock(lock_fd);
    cf_users_free(u);
    return rc ? fail(action, &err) : CF_EXIT_OK;
}

static int user_add(const user_opts *o, const char *name)
{
    if (!o->tier) {
        fputs("coffer console user add: --tier is required (for instance free or premium)\n", stderr);
        return CF_EXIT_USAGE;
    }
    if (!cf_users_valid_name(name)) {
        fprintf(stderr,
                "coffer console user add: user name must be 1 to %d characters of A-Z a-z 0-9 . _ @ -\n",
                CF_USER_NAME_MAX);
        return CF_EXIT_USAGE;
    }
    if (!cf_users_valid_tier(o->tier)) {
        fprintf(stderr, "coffer console user add: tier '%.40s' must be 1 to %d characters of a-z 0-9 -\n",
                o->tier, CF_USER_TIER_MAX);
        return CF_EXIT_USAGE;
    }
    /* Early answers before the password is asked for; the locked edit checks again. */
    cf_err err;
    cf_users *u = NULL;
    if (load(o->file, 1, &u, &err) != 0)
        return fail("add", &err);
    int taken = cf_users_find(u, name) >= 0;
    cf_users_free(u);
    if (taken) {
        fprintf(stderr,
                "coffer console user add: user '%s' already exists; hint: coffer console user passwd %s\n",
                name, name);
        return CF_EXIT_FAILURE;
    }
    char *hash = NULL;
    int rc = new_hash("add", name, o->cost, &hash);
    if (rc == CF_EXIT_OK)
        rc = edit("add", o->file, name, o->tier, hash);
    free(hash);
    if (rc == CF_EXIT_OK)
        printf("added user %s (tier %s) to %s\n", name, o->tier, o->file);
    return rc;
}

static int user_passwd(const user_opts *o, const char *name)
{
    cf_err err;
    cf_users *u = NULL;
    if (load(o->file, 0, &u, &err) != 0)
        return fail("passwd", &err);
    int known = cf_users_find(u, name) >= 0;
    cf_users_free(u);
    if (!known) {
        fprintf(stderr, "coffer console user passwd: no user '%.80s' in %s\n", name, o->file);
        return CF_EXIT_FAILURE;
    }
    char *hash = NULL;
    int rc = new_hash("passwd", name, o->cost, &hash);
    if (rc == CF_EXIT_OK)
        rc = edit("passwd", o->file, name, NULL, hash);
    free(hash);
    if (rc == CF_EXIT_OK)
        printf("changed the password of %s\n", name);
    return rc;
}

static int user_ls(const user_opts *o)
{
    cf_err err;
    cf_users *u = NULL;
    if (load(o->file, 0, &u, &err) != 0)
        return fail("ls", &err);
    size_t n = cf_users_count(u);
    int rc = CF_EXIT_OK;
    if (o->json) {
        json_t *list = json_array(), *doc = json_pack("{s:o}", "users", list);
        for (size_t i = 0; doc && i < n; i++)
            if (json_array_append_new(list, json_pack("{s:s, s:s}", "name", cf_users_name(u, i), "tier",
                                                      cf_users_tier(u, i))) != 0)
                rc = CF_EXIT_FAILURE;
        char *text = doc && rc == CF_EXIT_OK ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (text) {
            printf("%s\n", text);
        } else {
            fputs("coffer console user ls: out of memory\n", stderr);
            rc = CF_EXIT_FAILURE;
        }
        free(text);
        json_decref(doc);
    } else {
        printf("%-32s %s\n", "NAME", "TIER");
        for (size_t i = 0; i < n; i++)
            printf("%-32s %s\n", cf_users_name(u, i), cf_users_tier(u, i));
    }
    cf_users_free(u);
    return rc;
}

int cf_cmd_console_user(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"users-file", required_argument, NULL, 'f'},
        {"tier", required_argument, NULL, 't'},
        {"cost", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    user_opts o = {0};
    int c;
    char *end;
    optind = 0; /* a full rescan: the console's own options may have been parsed before */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o.file = optarg; break;
        case 't': o.tier = optarg; break;
        case 'c':
            errno = 0;
            unsigned long cost = strtoul(optarg, &end, 10);
            if (errno || *end || cost < 4 || cost > 31) {
                fprintf(stderr, "coffer console user: --cost '%s' must be 4 to 31\n", optarg);
                return CF_EXIT_USAGE;
            }
            o.cost = (unsigned)cost;
            break;
        case 'j': o.json = 1; break;
        case 'h': fputs(user_usage, stdout); return CF_EXIT_OK;
        default: fputs(user_usage, stderr); return CF_EXIT_USAGE;
        }
    }
    /* argv[0] is "user"; what is left is the action and its operand. */
    int nargs = argc - optind;
    char **args = argv + optind;
    if (!o.file)
        o.file = getenv("COFFER_CONSOLE_USERS_FILE");
    if (nargs < 1 || !o.file || !*o.file) {
        if (nargs >= 1 && (!o.file || !*o.file))
            fputs("coffer console user: --users-file is required (or COFFER_CONSOLE_USERS_FILE)\n\n", stderr);
        fputs(user_usage, stderr);
        return CF_EXIT_USAGE;
    }
    const char *action = args[0];
    if (strcmp(action, "ls") == 0 && nargs == 1)
        return user_ls(&o);
    if (strcmp(action, "add") == 0 && nargs == 2)
        return user_add(&o, args[1]);
    if (strcmp(action, "passwd") == 0 && nargs == 2)
        return user_passwd(&o, args[1]);
    if (strcmp(action, "rm") == 0 && nargs == 2) {
        int rc = edit("rm", o.file, args[1], NULL, NULL);
        if (rc == CF_EXIT_OK)
            printf("removed user %s from %s\n", args[1], o.file);
        return rc;
    }
    fprintf(stderr, "coffer console user: unknown action or wrong operands: '%s'\n\n%s", action, user_usage);
    return CF_EXIT_USAGE;
}
