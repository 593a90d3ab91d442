/* test_users.c - the users file: strict parsing with line numbers, real bcrypt and yescrypt
 * through libxcrypt, the same answer for an unknown name as for a wrong password, 0600 atomic
 * writes, and the file-mode rules. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log_capture.h"

#include "console/users.h"
#include "core/clock.h"
#include "core/fs.h"

/* "secret", hashed by libxcrypt with its default yescrypt parameters. */
static const char yescrypt_secret[] =
    "$y$j9T$YKdpWrctxqiyIFOtTI/K9.$J1yeVntI.UyzMbvM60tOETLyo5MqwBg/BMrLpN9aWh4";

static char *hash_of(const char *password, unsigned cost)
{
    char *hash = NULL;
    cf_err err = {0};
    assert_int_equal(cf_users_hash_password(password, cost, &hash, &err), 0);
    return hash;
}

static cf_users *parse_ok(const char *text)
{
    cf_users *u = NULL;
    cf_err err = {0};
    int rc = cf_users_parse(text, strlen(text), &u, &err);
    if (rc)
        fail_msg("parse failed: %s", err.msg);
    return u;
}

static void expect_parse_error(const char *text, const char *where, const char *what)
{
    cf_users *u = (cf_users *)1;
    cf_err err = {0};
    assert_int_equal(cf_users_parse(text, strlen(text), &u, &err), CF_EINVAL);
    assert_null(u);
    if (!strstr(err.msg, where) || !strstr(err.msg, what))
        fail_msg("message '%s' lacks '%s' or '%s'", err.msg, where, what);
}

static void test_parse_comments_blank_lines_and_crlf(void **state)
{
    (void)state;
    char *h = hash_of("pw", 4);
    char text[1024];
    snprintf(text, sizeof text,
             "# users\n\n  \nalice:premium:%s\r\n  # indented comment\nbob.x@example-1:free:%s", h,
             yescrypt_secret);
    cf_users *u = parse_ok(text);
    assert_int_equal(cf_users_count(u), 2);
    assert_string_equal(cf_users_name(u, 0), "alice");
    assert_string_equal(cf_users_tier(u, 0), "premium");
    assert_string_equal(cf_users_name(u, 1), "bob.x@example-1");
    assert_string_equal(cf_users_tier(u, 1), "free");
    assert_int_equal(cf_users_find(u, "bob.x@example-1"), 1);
    assert_int_equal(cf_users_find(u, "carol"), -1);
    assert_null(cf_users_name(u, 2));
    cf_users_free(u);
    free(h);
}

static void test_parse_errors_name_the_line_and_the_problem(void **state)
{
    (void)state;
    const char *bc = "$2b$04$uzrQ5Rp7OUVo1Mi8BoqFRe/vItI6FeeR1CMp7CeMvCWQY7WwQq6.a";
    char text[1024];
    expect_parse_error("# c\nalice\n", "line 2", "no ':'");
    expect_parse_error("\n\nalice:free\n", "line 3", "one ':'");
    snprintf(text, sizeof text, "al ice:free:%s\n", bc);
    expect_parse_error(text, "line 1", "user name");
    snprintf(text, sizeof text, ":free:%s\n", bc);
    expect_parse_error(text, "line 1", "user name");
    snprintf(text, sizeof text, "a:free:%s\n%065d:free:%s\n", bc, 0, bc);
    expect_parse_error(text, "line 2", "user name");
    snprintf(text, sizeof text, "alice:Premium:%s\n", bc);
    expect_parse_error(text, "line 1", "tier of 'alice'");
    snprintf(text, sizeof text, "alice::%s\n", bc);
    expect_parse_error(text, "line 1", "tier");
    expect_parse_error("alice:free:plaintext\n", "line 1", "neither bcrypt");
    expect_parse_error("alice:free:$1$abc$def\n", "line 1", "neither bcrypt");
    expect_parse_error("alice:free:$2b$04$short\n", "line 1", "bcrypt");
    expect_parse_error("alice:free:$2b$03$uzrQ5Rp7OUVo1Mi8BoqFRe/vItI6FeeR1CMp7CeMvCWQY7WwQq6.a\n", "line 1",
                       "cost");
    expect_parse_error("alice:free:$2b$04$uzrQ5Rp7OUVo1Mi8BoqFRe/vItI6FeeR1CMp7CeMvCWQY7WwQq6:a\n", "line 1",
                       "alphabet");
    expect_parse_error("alice:free:$y$j9T$onlysalt\n", "line 1", "yescrypt");
    snprintf(text, sizeof text, "alice:free:%s\nbob:free:%s\nalice:premium:%s\n", bc, bc, bc);
    expect_parse_error(text, "line 3", "'alice' appears a second time");
    /* A NUL byte cannot hide the rest of a line from the parser. */
    static const char nul[] = "alice:free:$2b$04$uzrQ5Rp7OUVo1Mi8BoqFRe/vItI6FeeR1CMp7CeMvCWQY7WwQq6.a\0x";
    cf_users *u = NULL;
    cf_err err = {0};
    assert_int_equal(cf_users_parse(nul, sizeof nul - 1, &u, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
}

static void test_empty_text_is_nobody(void **state)
{
    (void)state;
    cf_users *u = parse_ok("# nobody yet\n");
    assert_int_equal(cf_users_count(u), 0);
    const char *tier = "x";
    cf_err err = {0};
    assert_int_equal(cf_users_check(u, "alice", "pw", &tier, &err), CF_EDENIED);
    assert_null(tier);
    cf_users_free(u);
}

static void test_check_right_wrong_and_unknown_answer_alike(void **state)
{
    (void)state;
    char *h = hash_of("correct horse", 4);
    assert_memory_equal(h, "$2b$04$", 7);
    char text[256];
    snprintf(text, sizeof text, "alice:premium:%s\nbob:free:%s\n", h, yescrypt_secret);
    cf_users *u = parse_ok(text);
    const char *tier = NULL;
    cf_err err = {0};
    assert_int_equal(cf_users_check(u, "alice", "correct horse", &tier, &err), 0);
    assert_string_equal(tier, "premium");
    assert_int_equal(cf_users_check(u, "bob", "secret", &tier, &err), 0);
    assert_string_equal(tier, "free");

    cf_err wrong = {0}, unknown = {0}, other = {0};
    assert_int_equal(cf_users_check(u, "alice", "correct horsE", &tier, &wrong), CF_EDENIED);
    assert_null(tier);
    assert_int_equal(cf_users_check(u, "mallory", "correct horse", &tier, &unknown), CF_EDENIED);
    assert_int_equal(cf_users_check(u, "bob", "correct horse", &tier, &other), CF_EDENIED);
    assert_string_equal(wrong.msg, unknown.msg);
    assert_string_equal(wrong.msg, other.msg);
    assert_int_equal(cf_users_check(u, "alice", "", &tier, &err), CF_EDENIED);
    assert_int_equal(cf_users_check(u, NULL, "x", &tier, &err), CF_EDENIED);
    /* The first 72 bytes are all bcrypt reads: a longer guess must not match by its prefix... */
    char longer[100];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(cf_users_check(u, "alice", longer, &tier, &err), CF_EDENIED);
    cf_users_free(u);
    free(h);
}

static void test_unknown_name_costs_as_much_as_a_known_one(void **state)
{
    (void)state;
    char *h = hash_of("pw", 10); /* ~50-100 ms: large against timer noise */
    char text[256];
    snprintf(text, sizeof text, "alice:free:%s\n", h);
    cf_users *u = parse_ok(text);
    const char *tier;
    double t0 = cf_clock_mono();
    assert_int_equal(cf_users_check(u, "alice", "nope", &tier, NULL), CF_EDENIED);
    double known = cf_clock_mono() - t0;
    t0 = cf_clock_mono();
    assert_int_equal(cf_users_check(u, "nobody-at-all", "nope", &tier, NULL), CF_EDENIED);
    double unknown = cf_clock_mono() - t0;
    /* A lower bound only: an unknown name must not answer early (no upper bound: a busy machine). */
    if (unknown < known / 3)
        fail_msg("unknown user answered in %.1f ms, a known one in %.1f ms", unknown * 1e3, known * 1e3);
    cf_users_free(u);
    free(h);
}

static void test_hash_password_refuses_what_bcrypt_would_mangle(void **state)
{
    (void)state;
    char *h = NULL;
    cf_err err = {0};
    assert_int_equal(cf_users_hash_password("", 4, &h, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    char longer[80];
    memset(longer, 'x', 73);
    longer[73] = '\0';
    assert_int_equal(cf_users_hash_password(longer, 4, &h, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "72"));
    assert_int_equal(cf_users_hash_password("pw", 3, &h, &err), CF_EINVAL);
    assert_int_equal(cf_users_hash_password("pw", 32, &h, &err), CF_EINVAL);
    assert_null(h);
    /* Cost 0 is the default, 12; two hashes of one password differ by their salt. */
    char *a = hash_of("pw", 0), *b = hash_of("pw", 4), *c = hash_of("pw", 4);
    assert_memory_equal(a, "$2b$12$", 7);
    assert_string_not_equal(b, c);
    free(a);
    free(b);
    free(c);
}

static void test_edit_add_set_remove_and_format_round_trip(void **state)
{
    (void)state;
    char *h1 = hash_of("one", 4), *h2 = hash_of("two", 4);
    cf_users *u = cf_users_new();
    cf_err err = {0};
    assert_int_equal(cf_users_add(u, "alice", "free", h1, &err), 0);
    assert_int_equal(cf_users_add(u, "bob", "premium", h1, &err), 0);
    assert_int_equal(cf_users_add(u, "alice", "premium", h2, &err), CF_EEXISTS);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(cf_users_add(u, "c d", "free", h1, &err), CF_EINVAL);
    assert_int_equal(cf_users_add(u, "carol", "Free", h1, &err), CF_EINVAL);
    assert_int_equal(cf_users_add(u, "carol", "free", "nothash", &err), CF_EINVAL);
    assert_int_equal(cf_users_add(u, "carol", NULL, h1, &err), CF_EINVAL);
    assert_int_equal(cf_users_set_hash(u, "alice", h2, &err), 0);
    assert_int_equal(cf_users_set_hash(u, "carol", h2, &err), CF_ENOTFOUND);
    assert_int_equal(cf_users_remove(u, "carol", &err), CF_ENOTFOUND);
    assert_int_equal(cf_users_count(u), 2);

    char *text;
    size_t len;
    assert_int_equal(cf_users_format(u, &text, &len, &err), 0);
    cf_users *back = NULL;
    assert_int_equal(cf_users_parse(text, len, &back, &err), 0);
    const char *tier;
    assert_int_equal(cf_users_check(back, "alice", "two", &tier, &err), 0);
    assert_int_equal(cf_users_check(back, "alice", "one", &tier, &err), CF_EDENIED);
    assert_int_equal(cf_users_check(back, "bob", "one", &tier, &err), 0);
    assert_string_equal(tier, "premium");
    assert_int_equal(cf_users_remove(back, "alice", &err), 0);
    assert_int_equal(cf_users_count(back), 1);
    assert_string_equal(cf_users_name(back, 0), "bob");
    cf_users_free(back);
    free(text);
    cf_users_free(u);
    free(h1);
    free(h2);
}

static char dir[] = "/tmp/coffer-users-XXXXXX";

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/coffer-users-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    return cf_fs_remove_tree(dir, NULL);
}

static void write_mode(const char *path, const char *text, mode_t mode)
{
    cf_err err = {0};
    assert_int_equal(cf_fs_write_atomic(path, text, strlen(text), mode, &err), 0);
}

static void test_write_file_is_0600_atomic_and_loads_back(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/users", dir);
    char *h = hash_of("pw", 4);
    cf_users *u = cf_users_new();
    cf_err err = {0};
    assert_int_equal(cf_users_add(u, "alice", "free", h, &err), 0);
    umask(022);
    assert_int_equal(cf_users_write_file(u, path, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* Replacing keeps 0600 even when the old file had another mode. */
    chmod(path, 0640);
    assert_int_equal(cf_users_write_file(u, path, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    assert_int_equal(access(tmp, F_OK), -1);

    captured c = {{0}};
    cf_logger log = {CF_LOG_DEBUG, capture, &c};
    cf_users *back = NULL;
    assert_int_equal(cf_users_load_file_log(path, &log, &back, &err), 0);
    assert_int_equal(cf_users_count(back), 1);
    assert_string_equal(c.lines, "");
    cf_users_free(back);
    cf_users_free(u);
    free(h);
}

static void test_load_refuses_writable_by_others_and_warns_when_readable(void **state)
{
    (void)state;
    char path[256], text[256];
    snprintf(path, sizeof path, "%s/users-modes", dir);
    char *h = hash_of("pw", 4);
    snprintf(text, sizeof text, "alice:free:%s\n", h);
    cf_err err = {0};
    cf_users *u = NULL;
    captured c = {{0}};
    cf_logger log = {CF_LOG_DEBUG, capture, &c};

    write_mode(path, text, 0620);
    assert_int_equal(cf_users_load_file_log(path, &log, &u, &err), CF_EDENIED);
    assert_null(u);
    assert_non_null(strstr(err.msg, "writable by group or others"));
    assert_non_null(strstr(err.msg, "chmod 600"));
    write_mode(path, text, 0602);
    assert_int_equal(cf_users_load_file_log(path, &log, &u, &err), CF_EDENIED);

    write_mode(path, text, 0644); /* a Kubernetes secret's default mode */
    assert_int_equal(cf_users_load_file_log(path, &log, &u, &err), 0);
    assert_non_null(strstr(c.lines, "readable by group or others"));
    assert_non_null(strstr(c.lines, "0644"));
    assert_null(strstr(c.lines, h));
    cf_users_free(u);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/absent", dir);
    assert_int_equal(cf_users_load_file(missing, &u, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(cf_users_load_file(dir, &u, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));

    /* A file's errors say which file as well as which line. */
    write_mode(path, "alice:free:x\n", 0600);
    assert_int_equal(cf_users_load_file(path, &u, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "line 1"));
    free(h);
}

static void test_from_env_or_file_precedence_and_separators(void **state)
{
    (void)state;
    char path[256], text[256];
    snprintf(path, sizeof path, "%s/users-env", dir);
    char *h = hash_of("pw", 4);
    snprintf(text, sizeof text, "fromfile:free:%s\n", h);
    write_mode(path, text, 0600);
    char lines[512];
    snprintf(lines, sizeof lines, "one:free:%s;two:premium:%s\nthree:free:%s", h, h, h);
    cf_err err = {0};
    cf_users *u = NULL;

    unsetenv("COFFER_CONSOLE_USERS_FILE");
    unsetenv("COFFER_CONSOLE_USERS");
    assert_int_equal(cf_users_from_env_or_file(NULL, &u, &err), 0);
    assert_int_equal(cf_users_count(u), 0);
    cf_users_free(u);

    setenv("COFFER_CONSOLE_USERS", lines, 1);
    assert_int_equal(cf_users_from_env_or_file(NULL, &u, &err), 0);
    assert_int_equal(cf_users_count(u), 3);
    assert_string_equal(cf_users_tier(u, 1), "premium");
    cf_users_free(u);

    setenv("COFFER_CONSOLE_USERS_FILE", path, 1);
    assert_int_equal(cf_users_from_env_or_file("", &u, &err), 0);
    assert_string_equal(cf_users_name(u, 0), "fromfile");
    cf_users_free(u);

    char other[300];
    snprintf(other, sizeof other, "%s/users-flag", dir);
    snprintf(text, sizeof text, "fromflag:free:%s\n", h);
    write_mode(other, text, 0600);
    assert_int_equal(cf_users_from_env_or_file(other, &u, &err), 0);
    assert_string_equal(cf_users_name(u, 0), "fromflag");
    cf_users_free(u);

    unsetenv("COFFER_CONSOLE_USERS_FILE");
    setenv("COFFER_CONSOLE_USERS", "ok-name:free:bad", 1);
    assert_int_equal(cf_users_from_env_or_file(NULL, &u, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "COFFER_CONSOLE_USERS line 1"));
    unsetenv("COFFER_CONSOLE_USERS");
    free(h);
}

static void test_lock_is_exclusive_between_processes(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/users-lock", dir);
    int fd;
    cf_err err = {0};
    assert_int_equal(cf_users_lock(path, &fd, &err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child's own open of the lock file must not get it while the parent holds it. */
        char lock_path[300];
        snprintf(lock_path, sizeof lock_path, "%s.lock", path);
        int mine = open(lock_path, O_RDWR);
        _exit(mine >= 0 && flock(mine, LOCK_EX | LOCK_NB) != 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cf_users_unlock(fd);
    assert_int_equal(cf_users_lock(path, &fd, &err), 0);
    cf_users_unlock(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_comments_blank_lines_and_crlf),
        cmocka_unit_test(test_parse_errors_name_the_line_and_the_problem),
        cmocka_unit_test(test_empty_text_is_nobody),
        cmocka_unit_test(test_check_right_wrong_and_unknown_answer_alike),
        cmocka_unit_test(test_unknown_name_costs_as_much_as_a_known_one),
        cmocka_unit_test(test_hash_password_refuses_what_bcrypt_would_mangle),
        cmocka_unit_test(test_edit_add_set_remove_and_format_round_trip),
        cmocka_unit_test(test_write_file_is_0600_atomic_and_loads_back),
        cmocka_unit_test(test_load_refuses_writable_by_others_and_warns_when_readable),
        cmocka_unit_test(test_from_env_or_file_precedence_and_separators),
        cmocka_unit_test(test_lock_is_exclusive_between_processes),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
