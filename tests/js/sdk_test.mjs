// The AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage, s3-request-presigner) against a
// coffer server, with the SDK's DEFAULT settings, which nothing here turns off: every upload
// carries a CRC32 checksum; a Buffer/string body as an x-amz-checksum-crc32 header, a stream body
// (fs.createReadStream) as an aws-chunked body (Content-Encoding: aws-chunked,
// x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER) with the checksum in a trailer named
// by x-amz-trailer. A presigned PutObject URL carries x-amz-checksum-crc32 of the body known at
// presign time, in the query string: of no body at all (AAAAAA==) when presigned the usual way.
// S3 ignores checksums in a presigned URL's query (presigned URLs do not support them) and
// stores the object without one; so must coffer.
//
// Run by tests/integration/test_sdk_js.py. Environment: COFFER_ENDPOINT (http://127.0.0.1:PORT),
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (read by the SDK's default credential chain),
// COFFER_SEED_BUCKET / COFFER_SEED_KEY / COFFER_SEED_SHA256: an object the test put with boto3,
// so that the read steps do not depend on the SDK's own uploads.
// Prints one JSON document: {"ok": bool, "steps": [{name, ok, ms, error?, detail?, requests}]},
// each request with method, path, status and the headers that matter to the server
// (x-amz-content-sha256, content-encoding, x-amz-trailer, ...). Exits 0 only if every step passed.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const MiB = 1024 * 1024;
const endpoint = process.env.COFFER_ENDPOINT;
const seedBucket = process.env.COFFER_SEED_BUCKET;
const seedKey = process.env.COFFER_SEED_KEY;
const seedSha256 = process.env.COFFER_SEED_SHA256;
if (!endpoint || !process.env.AWS_ACCESS_KEY_ID || !process.env.AWS_SECRET_ACCESS_KEY) {
  console.error("COFFER_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set");
  process.exit(2);
}

const s3 = new S3Client({
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1, // one request per operation, so a failure shows the request that failed
});

// Every request the client sends, after signing, with its response status.
const INTERESTING = [
  "content-length", "content-encoding", "transfer-encoding", "content-md5", "content-type",
  "x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer",
  "x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
  "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256",
  "x-amz-checksum-algorithm", "x-amz-checksum-type", "expect",
];
let log = [];
s3.middlewareStack.add(
  (next) => async (args) => {
    const req = args.request;
    const entry = { method: req.method, path: req.path, query: req.query ?? {}, headers: {} };
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      if (INTERESTING.includes(k.toLowerCase())) entry.headers[k.toLowerCase()] = v;
    }
    log.push(entry);
    try {
      const out = await next(args);
      entry.status = out.response?.statusCode;
      entry.requestId = out.response?.headers?.["x-amz-request-id"];
      return out;
    } catch (err) {
      entry.status = err?.$metadata?.httpStatusCode ?? err?.$response?.statusCode;
      entry.requestId = err?.$metadata?.requestId ?? err?.$response?.headers?.["x-amz-request-id"];
      throw err;
    }
  },
  { step: "finalizeRequest", priority: "low", name: "cofferRequestLog" },
);

// Node's fetch of a presigned URL, logged like the SDK's requests.
async function loggedFetch(url, init = {}) {
  const u = new URL(url);
  const entry = {
    method: init.method ?? "GET", path: u.pathname, via: "fetch",
    query: Object.fromEntries([...u.searchParams].filter(([k]) => k !== "X-Amz-Signature")),
    headers: {},
  };
  log.push(entry);
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30000) });
  entry.status = res.status;
  entry.requestId = res.headers.get("x-amz-request-id") ?? undefined;
  return res;
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const md5 = (buf) => createHash("md5").update(buf).digest();
function multipartEtag(parts) {
  return `"${createHash("md5").update(Buffer.concat(parts.map(md5))).digest("hex")}-${parts.length}"`;
}
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}
async function readBody(out) {
  return Buffer.from(await out.Body.transformToByteArray());
}

const results = [];
async function step(name, fn) {
  log = [];
  const t0 = Date.now();
  const r = { name, ok: false };
  try {
    r.detail = (await fn()) ?? undefined;
    r.ok = true;
  } catch (err) {
    r.error = {
      name: err?.name, message: String(err?.message ?? err).slice(0, 2000),
      code: err?.Code ?? err?.code, status: err?.$metadata?.httpStatusCode,
    };
  }
  r.ms = Date.now() - t0;
  r.requests = log;
  results.push(r);
  return r.ok;
}

const bucket = `js-sdk-${Date.now().toString(36)}`;
const text = "hello from @aws-sdk/client-s3 \u2713\n".repeat(20);
const buf = randomBytes(300 * 1024 + 7);
const big = randomBytes(2 * 5 * MiB + 123457);
const libData = randomBytes(12 * MiB + 5);
const presignData = randomBytes(64 * 1024 + 3);
const streamData = randomBytes(MiB + 333);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-js-"));
function tmpFile(name, data) {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, data);
  return p;
}

await step("CreateBucket", async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});

await step("GetObject.seeded", async () => {
  const out = await s3.send(new GetObjectCommand({ Bucket: seedBucket, Key: seedKey }));
  const body = await readBody(out);
  check(sha256(body) === seedSha256, "seeded object's content");
  return { size: body.length };
});

await step("HeadObject.seeded", async () => {
  const out = await s3.send(new HeadObjectCommand({ Bucket: seedBucket, Key: seedKey }));
  check(out.ContentLength > 0, "ContentLength");
  check(/^"[0-9a-f]{32}"$/.test(out.ETag), `ETag ${out.ETag}`);
  return { ContentLength: out.ContentLength, ETag: out.ETag };
});

await step("PutObject.string", async () => {
  const out = await s3.send(new PutObjectCommand({
    Bucket: bucket, Key: "dir/string.txt", Body: text, ContentType: "text/plain; charset=utf-8",
  }));
  check(out.ETag === `"${md5(Buffer.from(text)).toString("hex")}"`, `ETag ${out.ETag}`);
});

await step("PutObject.buffer", async () => {
  const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "dir/buffer.bin", Body: buf }));
  check(out.ETag === `"${md5(buf).toString("hex")}"`, `ETag ${out.ETag}`);
});

// Stream bodies: aws-chunked with a trailing checksum, CRC32 (the default) and CRC64NVME.
for (const algo of ["CRC32", "CRC64NVME"]) {
  await step(`PutObject.stream.${algo}`, async () => {
    const key = `stream/${algo}.bin`;
    const out = await s3.send(new PutObjectCommand({
      Bucket: bucket, Key: key, Body: fs.createReadStream(tmpFile(`${algo}.bin`, streamData)),
      ...(algo === "CRC32" ? {} : { ChecksumAlgorithm: algo }),
    }));
    check(out.ETag === `"${md5(streamData).toString("hex")}"`, `ETag ${out.ETag}`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }));
    check((await readBody(got)).equals(streamData), "content read back");
    return { putChecksum: out[`Checksum${algo}`] ?? null, getChecksum: got[`Checksum${algo}`] ?? null };
  });
}

await step("GetObject.string", async () => {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/string.txt" }));
  check((await out.Body.transformToString()) === text, "content");
  check(out.ContentType === "text/plain; charset=utf-8", `ContentType ${out.ContentType}`);
});

await step("GetObject.buffer", async () => {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/buffer.bin" }));
  check((await readBody(out)).equals(buf), "content");
  const part = await s3.send(new GetObjectCommand({
    Bucket: bucket, Key: "dir/buffer.bin", Range: "bytes=1000-1999",
  }));
  check((await readBody(part)).equals(buf.subarray(1000, 2000)), "ranged content");
});

await step("HeadObject", async () => {
  const out = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "dir/buffer.bin" }));
  check(out.ContentLength === buf.length, `ContentLength ${out.ContentLength}`);
  check(out.ETag === `"${md5(buf).toString("hex")}"`, `ETag ${out.ETag}`);
});

await step("ListObjectsV2", async () => {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "dir/" }));
  const keys = (out.Contents ?? []).map((o) => o.Key);
  check(JSON.stringify(keys) === JSON.stringify(["dir/buffer.bin", "dir/string.txt"]),
    `keys ${JSON.stringify(keys)}`);
  check(out.Contents[0].Size === buf.length, `size ${out.Contents[0].Size}`);
  const top = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/" }));
  const prefixes = (top.CommonPrefixes ?? []).map((p) => p.Prefix);
  check(prefixes.includes("dir/") && (top.Contents ?? []).length === 0,
    `top level: prefixes ${JSON.stringify(prefixes)}`);
  return { keys, prefixes };
});

await step("MultipartUpload", async () => {
  const key = "mpu/manual.bin";
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  check(UploadId, "UploadId");
  const chunks = [big.subarray(0, 5 * MiB), big.subarray(5 * MiB, 10 * MiB), big.subarray(10 * MiB)];
  const parts = [];
  for (let i = 0; i < chunks.length; i++) {
    const out = await s3.send(new UploadPartCommand({
      Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: chunks[i],
    }));
    check(out.ETag === `"${md5(chunks[i]).toString("hex")}"`, `part ${i + 1} ETag ${out.ETag}`);
    parts.push({ PartNumber: i + 1, ETag: out.ETag });
  }
  const done = await s3.send(new CompleteMultipartUploadCommand({
    Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts },
  }));
  check(done.ETag === multipartEtag(chunks), `ETag ${done.ETag}`);
  const got = await readBody(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
  check(sha256(got) === sha256(big), "content");
  return { ETag: done.ETag };
});

// The same with stream parts: each UploadPart body is aws-chunked with a CRC32 trailer.
await step("MultipartUpload.stream", async () => {
  const key = "mpu/stream.bin";
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const chunks = [big.subarray(0, 5 * MiB), big.subarray(5 * MiB)];
  const parts = [];
  for (let i = 0; i < chunks.length; i++) {
    const out = await s3.send(new UploadPartCommand({
      Bucket: bucket, Key: key, UploadId, PartNumber: i + 1,
      Body: fs.createReadStream(tmpFile(`part${i + 1}`, chunks[i])),
    }));
    check(out.ETag === `"${md5(chunks[i]).toString("hex")}"`, `part ${i + 1} ETag ${out.ETag}`);
    parts.push({ PartNumber: i + 1, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 });
  }
  const done = await s3.send(new CompleteMultipartUploadCommand({
    Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts },
  }));
  check(done.ETag === multipartEtag(chunks), `ETag ${done.ETag}`);
  const got = await readBody(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
  check(sha256(got) === sha256(big), "content");
  return { ETag: done.ETag };
});

await step("lib-storage.Upload", async () => {
  const key = "mpu/lib-storage.bin";
  const up = new Upload({
    client: s3, params: { Bucket: bucket, Key: key, Body: libData }, partSize: 5 * MiB, queueSize: 2,
  });
  const done = await up.done();
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  check(head.ContentLength === libData.length, `ContentLength ${head.ContentLength}`);
  check(/-3"$/.test(head.ETag), `ETag ${head.ETag} (3 parts)`);
  const got = await readBody(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
  check(sha256(got) === sha256(libData), "content");
  return { ETag: done.ETag };
});

await step("PresignedGet", async () => {
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: seedBucket, Key: seedKey }),
    { expiresIn: 300 });
  const res = await loggedFetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}: ${body.toString().slice(0, 600)}`);
  check(sha256(body) === seedSha256, "content");
  return { url: url.replace(/X-Amz-Signature=[0-9a-f]+/, "X-Amz-Signature=...") };
});

// The object a presigned PUT stored: its content, and no additional checksum, since S3 ignores
// the one in the URL's query.
async function checkPresignedObject(key, data) {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }));
  check((await readBody(got)).equals(data), "content read back");
  check(got.ChecksumCRC32 === undefined, `no stored CRC32, got ${got.ChecksumCRC32}`);
}

// Presigned with the body at hand: the URL's query carries that body's CRC32.
await step("PresignedPut", async () => {
  const key = "presigned/put.bin";
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, Body: presignData }),
    { expiresIn: 300 });
  const shown = url.replace(/X-Amz-Signature=[0-9a-f]+/, "X-Amz-Signature=...");
  const res = await loggedFetch(url, { method: "PUT", body: presignData });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT ${shown} -> ${res.status}: ${text.slice(0, 600)}`);
  check(res.headers.get("etag") === `"${md5(presignData).toString("hex")}"`, "ETag");
  await checkPresignedObject(key, presignData);
  return { url: shown };
});

// Presigned without a body, with the SDK's default settings (the common way): the query carries
// the CRC32 of the EMPTY body (x-amz-checksum-crc32=AAAAAA==), which S3 ignores; any body uploads.
await step("PresignedPut.defaultSettings", async () => {
  const key = "presigned/default.bin";
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 });
  const shown = url.replace(/X-Amz-Signature=[0-9a-f]+/, "X-Amz-Signature=...");
  check(/[?&]x-amz-checksum-crc32=AAAAAA%3D%3D/.test(url), `URL carries the empty body's CRC32: ${shown}`);
  const res = await loggedFetch(url, { method: "PUT", body: presignData });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT ${shown} -> ${res.status}, want 200: ${text.slice(0, 600)}`);
  check(res.headers.get("etag") === `"${md5(presignData).toString("hex")}"`, "ETag");
  await checkPresignedObject(key, presignData);
  // The same URL again, with the empty body its checksum was computed for.
  const empty = await loggedFetch(url, { method: "PUT", body: Buffer.alloc(0) });
  if (empty.status !== 200) throw new Error(`empty PUT ${shown} -> ${empty.status}: ${(await empty.text()).slice(0, 600)}`);
  await checkPresignedObject(key, Buffer.alloc(0));
  return { url: shown };
});

await step("DeleteObjects", async () => {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  const keys = (listed.Contents ?? []).map((o) => o.Key);
  const all = [...new Set([...keys, "dir/string.txt", "dir/buffer.bin", "mpu/manual.bin",
    "mpu/lib-storage.bin", "mpu/stream.bin", "stream/CRC32.bin", "stream/CRC64NVME.bin",
    "presigned/put.bin", "presigned/default.bin"])];
  const out = await s3.send(new DeleteObjectsCommand({
    Bucket: bucket, Delete: { Objects: all.map((Key) => ({ Key })) },
  }));
  check((out.Errors ?? []).length === 0, `errors ${JSON.stringify(out.Errors)}`);
  check((out.Deleted ?? []).length === all.length, `deleted ${(out.Deleted ?? []).length} of ${all.length}`);
  const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  check((after.KeyCount ?? 0) === 0, `KeyCount after ${after.KeyCount}`);
  return { deleted: all.length };
});

await step("DeleteBucket", async () => {
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
});

fs.rmSync(tmp, { recursive: true, force: true });
const ok = results.every((r) => r.ok);
process.stdout.write(JSON.stringify({ ok, bucket, steps: results }, null, 1) + "\n");
process.exit(ok ? 0 : 1);
