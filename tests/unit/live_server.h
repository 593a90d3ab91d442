/*
 * live_server.h - a real `coffer server` for the unit tests that talk S3 to one (the S3 client's,
 * libcoffer's): started on a free port of 127.0.0.1 with a data directory under the test's
 * temporary directory and the given root keys, stopped with SIGTERM. The binary is COFFER_BIN,
 * else the coffer next to the test binary (the same build, sanitizers included), else
 * build/coffer. A server that does not stop cleanly, or whose log holds a sanitizer report, sets
 * unclean: the test's main then fails.
 */
#ifndef CF_TEST_LIVE_SERVER_H
#define CF_TEST_LIVE_SERVER_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct live_server {
    pid_t pid;
    int port;
    char dir[300]; /* its --data */
    char log[400]; /* its standard output and error */
    int unclean;
} live_server;

static int live_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int live_server_ready(const live_server *s)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health/ready", s->port);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 500L);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    return status == 200;
}

/* 0 once the server answers /health/ready, -1 (said on stderr) when it exits or does not. */
static int live_server_start(live_server *s, const char *tmpdir, const char *root_user, const char *root_pass)
{
    memset(s, 0, sizeof *s);
    char bin[512];
    const char *env = getenv("COFFER_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
    } else {
        char self[512] = "";
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        snprintf(bin, sizeof bin, "%s/coffer", dirname(self));
        if (access(bin, X_OK) != 0)
            snprintf(bin, sizeof bin, "build/coffer");
    }
    snprintf(s->dir, sizeof s->dir, "%s/data", tmpdir);
    mkdir(s->dir, 0700);
    s->port = live_free_port();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port);
    snprintf(s->log, sizeof s->log, "%s/server.log", tmpdir);
    s->pid = fork();
    if (s->pid == 0) {
        setenv("COFFER_ROOT_USER", root_user, 1);
        setenv("COFFER_ROOT_PASSWORD", root_pass, 1);
        FILE *f = freopen(s->log, "w", stderr);
        (void)f;
        dup2(2, 1);
        execl(bin, "coffer", "server", "--address", addr, "--data", s->dir, "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        if (live_server_ready(s))
            return 0;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "coffer server '%s' exited; see %s\n", bin, s->log);
            s->pid = 0;
            return -1;
        }
        usleep(50000);
    }
    fprintf(stderr, "coffer server '%s' not ready after 15 s\n", bin);
    return -1;
}

static void live_server_check_log(live_server *s, int exited_0)
{
    char line[1024];
    FILE *f = fopen(s->log, "r");
    int reported = 0;
    while (f && fgets(line, sizeof line, f))
        reported |= strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL;
    if (!reported && exited_0) {
        if (f)
            fclose(f);
        return;
    }
    s->unclean = 1;
    fprintf(stderr, "coffer server: %s; its log:\n", reported ? "sanitizer report" : "unclean exit");
    if (f) {
        rewind(f);
        while (fgets(line, sizeof line, f))
            fputs(line, stderr);
        fclose(f);
    }
}

/* Stops the server (none running: nothing to do) and checks its log. */
static void live_server_stop(live_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st = 0, gone = 0;
    for (int i = 0; i < 100 && !(gone = waitpid(s->pid, &st, WNOHANG) == s->pid); i++)
        usleep(50000);
    if (!gone) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    s->pid = 0;
    live_server_check_log(s, gone && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

#endif
