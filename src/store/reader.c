/*
 * reader.c - reading a byte range of an object across its segments (multipart objects), or
 * from its record when it is kept there.
 *
 * Segment files are opened one at a time as the range reaches them: an object of 10,000 parts
 * must not take 10,000 descriptors. So that an overwrite cannot unlink the later ones mid-read,
 * the reader pins the version (cf_store_pin): its files stay until the reader is freed. An
 * overwrite that won the race with the caller's lookup is seen at open, before any byte is sent
 * (CF_ENOTFOUND: look the key up again).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/txn.h"

struct cf_store_reader {
    cf_store *s;
    cf_store_segment *segs;
    size_t nsegs;
    size_t seg;       /* index of the segment being read */
    uint64_t seg_off; /* offset within it */
    uint64_t left;    /* bytes of the range still to read */
    int fd;           /* of segs[seg], or -1 */
    int pinned;
    unsigned char *data; /* the body of an object kept in its record (no segments) */
    uint64_t data_off;
};

/* A segment's file that is missing while its version is pinned was lost, not reclaimed. */
static int lost_segment(cf_store *s, const cf_store_segment *seg, cf_err *err)
{
    char path[PATH_MAX];
    cf_store_data_path(s, seg->id, path);
    return cf_err_set(err, CF_ECORRUPT, "data file '%s' of the record is missing", path);
}

static int open_current(cf_store_reader *rd, cf_err *err)
{
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
    int rc = cf_store_segment_open(rd->s, &rd->segs[rd->seg], &rd->fd, err);
    return rc == CF_ENOTFOUND && rd->pinned ? lost_segment(rd->s, &rd->segs[rd->seg], err) : rc;
}

int cf_store_part_open(cf_store *s, const cf_object_info *info, size_t i, int *fd, cf_err *err)
{
    int rc = cf_store_segment_open(s, &info->segs[i], fd, err);
    if (rc != CF_ENOTFOUND)
        return rc;
    /* Only a failed open pays for the pin. Reclaiming unlinks a version's files first to last,
     * whole under the pin's mutex: a first file still there (the pin holds) means no reclaim
     * took this one, so it was lost; a first file gone means the version was replaced. */
    if ((rc = cf_store_pin(s, info, err)) != 0)
        return rc;
    rc = lost_segment(s, &info->segs[i], err);
    cf_store_unpin(s, info->segs[0].id);
    return rc;
}

int cf_store_reader_open(cf_store *s, const cf_object_info *info, uint64_t start, uint64_t len,
                         cf_store_reader **out, cf_err *err)
{
    if (start > info->size || len > info->size - start)
        return cf_err_set(err, CF_ERANGE, "range %llu+%llu is outside the object (%llu bytes)",
                          (unsigned long long)start, (unsigned long long)len, (unsigned long long)info->size);
    cf_store_reader *rd = calloc(1, sizeof *rd);
    if (!rd || (info->nsegs && !(rd->segs = malloc(info->nsegs * sizeof *rd->segs)))) {
        free(rd);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    if (info->nsegs)
        memcpy(rd->segs, info->segs, info->nsegs * sizeof *rd->segs);
    if (info->data && len) {
        if (!(rd->data = malloc((size_t)len))) {
            cf_store_reader_free(rd);
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        memcpy(rd->data, info->data + start, (size_t)len);
    }
    rd->s = s;
    rd->nsegs = info->nsegs;
    rd->fd = -1;
    rd->left = len;
    while (rd->seg < rd->nsegs && start >= rd->segs[rd->seg].len) {
        start -= rd->segs[rd->seg].len;
        rd->seg++;
    }
    rd->seg_off = start;
    /* One segment needs no pin: its open descriptor keeps the data readable. */
    if (len && rd->nsegs > 1) {
        int rc = cf_store_pin(s, info, err);
        if (rc) {
            cf_store_reader_free(rd);
            return rc;
        }
        rd->pinned = 1;
    }
    if (len && rd->seg < rd->nsegs) {
        int rc = open_current(rd, err);
        if (rc) {
            cf_store_reader_free(rd);
            return rc;
        }
    }
    *out = rd;
    return 0;
}

long cf_store_reader_read(cf_store_reader *rd, void *buf, size_t n, cf_err *err)
{
    if (rd->data) {
        size_t want = rd->left < n ? (size_t)rd->left : n;
        memcpy(buf, rd->data + rd->data_off, want);
        rd->data_off += want;
        rd->left -= want;
        return (long)want;
    }
    while (rd->left && rd->seg < rd->nsegs) {
        uint64_t in_seg = rd->segs[rd->seg].len - rd->seg_off;
        if (in_seg == 0) {
            rd->seg++;
            rd->seg_off = 0;
            if (rd->seg < rd->nsegs) {
                int rc = open_current(rd, err);
                if (rc)
                    return rc;
            }
            continue;
        }
        uint64_t want = n;
        if (want > in_seg)
            want = in_seg;
        if (want > rd->left)
            want = rd->left;
        if (want > (uint64_t)LONG_MAX)
            want = (uint64_t)LONG_MAX;
        ssize_t got = pread(rd->fd, buf, (size_t)want, (off_t)rd->seg_off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? cf_err_sys(err, CF_EIO, errno, "cannot read object data")
                           : cf_err_set(err, CF_ECORRUPT, "object data file is shorter than its record");
        rd->seg_off += (uint64_t)got;
        rd->left -= (uint64_t)got;
        return (long)got;
    }
    return 0;
}

void cf_store_reader_free(cf_store_reader *rd)
{
    if (!rd)
        return;
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->pinned)
        cf_store_unpin(rd->s, rd->segs[0].id);
    free(rd->segs);
    free(rd->data);
    free(rd);
}
