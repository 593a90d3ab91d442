// S3 API details as the AWS SDK for JavaScript v3 sees them (default settings): ListBuckets
// paging, empty metadata values, the error names the SDK derives from coffer's error documents,
// response-* overrides, versionId "null". Run by tests/integration/test_s3_compat.py with
// COFFER_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set. Prints one JSON object:
// {check name: {ok, error?, detail?}}; exits 0 only if every check passed.
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  paginateListBuckets,
} from "@aws-sdk/client-s3";

const s3 = new S3Client({
  endpoint: process.env.COFFER_ENDPOINT,
  region: "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
});
const bucket = "jsc-objects";

function expect(cond, detail) {
  if (!cond) throw new Error(`unexpected: ${JSON.stringify(detail)}`);
}

// The error the SDK throws for a command: its name and HTTP status.
async function failure(command) {
  try {
    await s3.send(command);
  } catch (err) {
    return { name: err.name, status: err.$metadata?.httpStatusCode };
  }
  return { name: null, status: 200 };
}

const checks = {
  async "ListBuckets.paginated"() {
    const names = ["jsc-page-a", "jsc-page-b", "jsc-page-c"];
    for (const n of names) await s3.send(new CreateBucketCommand({ Bucket: n }));
    const seen = [];
    let pages = 0;
    for await (const page of paginateListBuckets({ client: s3, pageSize: 1 }, { Prefix: "jsc-page-" })) {
      pages++;
      for (const b of page.Buckets ?? []) {
        expect(b.BucketRegion === "us-east-1", b);
        seen.push(b.Name);
      }
    }
    expect(JSON.stringify(seen) === JSON.stringify(names) && pages >= 3, { seen, pages });
  },
  async "Metadata.emptyValue"() {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "meta", Body: "x", Metadata: { empty: "", full: "v" } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "meta" }));
    expect(head.Metadata.empty === "" && head.Metadata.full === "v", head.Metadata);
  },
  async "GetObject.NoSuchKey"() {
    const f = await failure(new GetObjectCommand({ Bucket: bucket, Key: "missing" }));
    expect(f.name === "NoSuchKey" && f.status === 404, f);
  },
  async "GetObject.InvalidRange"() {
    const f = await failure(new GetObjectCommand({ Bucket: bucket, Key: "meta", Range: "bytes=5-9" }));
    expect(f.name === "InvalidRange" && f.status === 416, f);
  },
  async "GetObject.NotModified"() {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "meta" }));
    const f = await failure(new GetObjectCommand({ Bucket: bucket, Key: "meta", IfNoneMatch: head.ETag }));
    expect(f.status === 304, f);
    const g = await failure(new GetObjectCommand({ Bucket: bucket, Key: "meta", IfMatch: '"0"' }));
    expect(g.name === "PreconditionFailed" && g.status === 412, g);
  },
  async "GetObject.responseOverrides"() {
    const out = await s3.send(new GetObjectCommand({
      Bucket: bucket, Key: "meta", ResponseContentType: "text/x-js", ResponseCacheControl: "no-store",
    }));
    expect(out.ContentType === "text/x-js" && out.CacheControl === "no-store", out.ContentType);
    expect((await out.Body.transformToString()) === "x", "body");
  },
  async "GetObject.versionId"() {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "meta", VersionId: "null" }));
    expect((await out.Body.transformToString()) === "x", "body");
    const f = await failure(new GetObjectCommand({ Bucket: bucket, Key: "meta", VersionId: "3HL4kqtJlcpXroDTDmJ" }));
    expect(f.name === "NoSuchVersion" && f.status === 404, f);
  },
};

const report = {};
let ok = true;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
for (const [name, fn] of Object.entries(checks)) {
  try {
    await fn();
    report[name] = { ok: true };
  } catch (err) {
    ok = false;
    report[name] = { ok: false, error: `${err.name}: ${err.message}` };
  }
}
console.log(JSON.stringify(report));
process.exit(ok ? 0 : 1);
