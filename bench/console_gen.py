#!/usr/bin/env python3
"""Synthetic snapshot manifests for bench/console.sh: CHAINS chains of PER_CHAIN snapshots each,
made from one real manifest (`coffer snapshot create` wrote it) with the id, namespace, times,
height label, archive key and checksum changed, so that every one parses as coffer's own.
Archives are not written: the console's catalogue reads manifests only.

  console_gen.py --template M.json --ids OUT.txt --dir DIR          (a directory repository)
  console_gen.py --template M.json --ids OUT.txt --bucket B [--prefix P] --endpoint URL
                 [--jobs 16]       (credentials: COFFER_ACCESS_KEY / COFFER_SECRET_KEY; the
                                    bucket is created when it does not exist)

OUT.txt gets one "CHAIN ID" line per snapshot, newest of each chain first.
"""
import argparse
import concurrent.futures
import copy
import datetime
import json
import os
import random
import sys


def manifests(template, chains, per_chain, seed):
    rng = random.Random(seed)
    # Hourly snapshots ending a day ago, one chain a second apart from the next.
    end = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) - 86400
    for c in range(chains):
        name = "chain-%02d" % c
        for j in range(per_chain):
            created = end - (per_chain - 1 - j) * 3600 + c
            when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
            sid = when.strftime("%Y%m%dT%H%M%SZ") + "-%04x" % rng.randrange(65536)
            m = copy.deepcopy(template)
            m["id"] = sid
            m["namespace"] = name
            m["created"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            m["created_ns"] = rng.randrange(1000000000)
            m["labels"] = {"height": str(1000000 + j * 1200), "chain_id": name}
            arch = m["archive"]
            suffix = arch["key"][arch["key"].index(".tar"):]
            arch["key"] = "%s/%s%s" % (name, sid, suffix)
            arch["sha256"] = "%064x" % rng.getrandbits(256)
            yield name, sid, json.dumps(m, indent=2).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--chains", type=int, default=50)
    ap.add_argument("--per-chain", type=int, default=200)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--dir")
    ap.add_argument("--bucket")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--endpoint")
    ap.add_argument("--jobs", type=int, default=16)
    a = ap.parse_args()
    if bool(a.dir) == bool(a.bucket):
        sys.exit("console_gen.py: give --dir or --bucket (with --endpoint)")
    with open(a.template, "rb") as f:
        template = json.load(f)
    prefix = a.prefix.strip("/") + "/" if a.prefix.strip("/") else ""
    items = list(manifests(template, a.chains, a.per_chain, a.seed))

    if a.dir:
        for name, sid, body in items:
            os.makedirs(os.path.join(a.dir, prefix, name), exist_ok=True)
            with open(os.path.join(a.dir, prefix, name, sid + ".json"), "wb") as f:
                f.write(body)
    else:
        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3",
            endpoint_url=a.endpoint,
            aws_access_key_id=os.environ["COFFER_ACCESS_KEY"],
            aws_secret_access_key=os.environ["COFFER_SECRET_KEY"],
            region_name="us-east-1",
            config=Config(max_pool_connections=a.jobs, retries={"max_attempts": 3},
                          s3={"addressing_style": "path"}),
        )

        try:
            s3.create_bucket(Bucket=a.bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass

        def put(item):
            name, sid, body = item
            s3.put_object(Bucket=a.bucket, Key="%s%s/%s.json" % (prefix, name, sid), Body=body,
                          ContentType="application/json")

        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            for _ in pool.map(put, items):
                pass

    # Newest first per chain, as the console lists them (the hours make time and id agree).
    by_chain = {}
    for name, sid, _ in items:
        by_chain.setdefault(name, []).append(sid)
    with open(a.ids, "w") as f:
        for name in sorted(by_chain):
            for sid in sorted(by_chain[name], reverse=True):
                f.write("%s %s\n" % (name, sid))
    print(len(items))


if __name__ == "__main__":
    main()
