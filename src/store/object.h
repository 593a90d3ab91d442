/*
 * object.h - what object.c lends to the multipart uploads (upload.c): a part is written by the
 * same body writer as an object, and committed by upload.c. Internal to src/store/.
 */
#ifndef CF_STORE_OBJECT_H
#define CF_STORE_OBJECT_H

#include "store/store_int.h"

/*
 * Makes a writer's body durable under its final name objects/ab/cd/<id> (finish, rename, fsync
 * the directory) and describes it in *seg. Nothing references the file yet: the caller commits
 * a record that does, or unlinks final_path (PATH_MAX bytes). The caller still frees w.
 */
int cf_store_writer_publish(cf_store_writer *w, cf_store_segment *seg, unsigned char md5[16],
                            char *final_path, cf_err *err);
cf_store *cf_store_writer_store(const cf_store_writer *w);

#endif
