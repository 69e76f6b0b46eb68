"""Create an S3 bucket if it is missing, waiting for the endpoint to come up (compose, k8s init).

Usage: python create_bucket.py BUCKET. Endpoint and credentials come from the standard variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), read by boto3.
"""

import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError


def main(bucket: str, wait_s: float = 120.0) -> None:
    s3 = boto3.client("s3")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            s3.head_bucket(Bucket=bucket)
            print(f"bucket {bucket} exists")
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            s3.create_bucket(Bucket=bucket)
            print(f"bucket {bucket} created")
            return
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


if __name__ == "__main__":
    main(sys.argv[1])
