"""Create a small sample bucket on the S3 server named by AWS_ENDPOINT_URL (for the demo)."""

import sys

import boto3

OBJECTS = {
    "README.txt": 1200,
    "photos/": 0,
    "photos/2024/beach.jpg": 3 * 1024 * 1024,
    "photos/2024/city at night.jpg": 2_500_000,
    "docs/report (final).pdf": 48_000,
    "docs/notes#1.txt": 12,
    "data/100%.csv": 640,
    "data/a+b.parquet": 0,
    "日本語/ファイル.txt": 33,
}


def main(bucket: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for key, size in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(size))
    print(f"bucket {bucket!r}: {len(OBJECTS)} objects")


if __name__ == "__main__":
    main(sys.argv[1])
