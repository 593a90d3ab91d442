/*
 * coffer_server.h - a real coffer server of a unit test's own (COFFER_BIN, default the coffer
 * next to the test binary), on a free loopback port, with its data under DIR/server and its log
 * in DIR/server.log, and a client of it signed as its root user.
 */
#ifndef CF_TEST_COFFER_SERVER_H
#define CF_TEST_COFFER_SERVER_H

#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "s3client/s3client.h"

extern char **environ;

typedef struct test_server {
    pid_t pid;
    cf_s3c *client;
    char endpoint[128]; /* http://127.0.0.1:PORT */
    char dir[256];
    char data[300];
    char log[300];
} test_server;

static inline int test_server_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int ok = !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ok ? ntohs(a.sin_port) : -1;
}

/* Starts the server (root user:password) and makes bucket, which also waits until it answers. */
static inline int test_server_start(test_server *s, const char *dir, const char *user, const char *password,
                                    const char *bucket)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->data, sizeof s->data, "%s/server", dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", dir);
    char bin[600], addr[64];
    const char *env = getenv("COFFER_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        char self[512] = "";
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        self[len > 0 ? len : 0] = '\0';
        snprintf(bin, sizeof bin, "%s/coffer", dirname(self));
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%d", test_server_port());
    setenv("COFFER_ROOT_USER", user, 1);
    setenv("COFFER_ROOT_PASSWORD", password, 1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"coffer", "server", "--address", addr, "--data", s->data, "--log-level", "warn", NULL};
    int e = posix_spawn(&s->pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e) {
        fprintf(stderr, "cannot start '%s': %s\n", bin, strerror(e));
        return -1;
    }
    cf_s3c_config cfg = {0};
    snprintf(s->endpoint, sizeof s->endpoint, "http://%s", addr);
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", s->endpoint);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "%s", user);
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "%s", password);
    cfg.max_attempts = 1;
    cf_err err;
    if (cf_s3c_new(&cfg, &s->client, &err))
        return -1;
    int rc = -1;
    for (int i = 0; i < 300 && rc; i++)
        if ((rc = cf_s3c_create_bucket(s->client, bucket, &err)))
            usleep(50000);
    if (rc)
        fprintf(stderr, "coffer server '%s' did not answer: %s (log: %s)\n", bin, err.msg, s->log);
    return rc ? -1 : 0;
}

/* Stops the server; -1 when it did not exit cleanly or its log holds a sanitizer report. */
static inline int test_server_stop(test_server *s)
{
    cf_s3c_free(s->client);
    s->client = NULL;
    if (s->pid <= 0)
        return 0;
    kill(s->pid, SIGTERM);
    int st = 0;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    int failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    char line[1024];
    FILE *f = fopen(s->log, "r");
    while (f && fgets(line, sizeof line, f))
        failed |= strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL;
    if (f)
        fclose(f);
    if (failed)
        fprintf(stderr, "coffer server: unclean exit or sanitizer report, see %s\n", s->log);
    return failed ? -1 : 0;
}

#endif
