"""AWS prices the projections and the cost estimate use: a dated table, no network at run time.

On-demand list prices in US dollars, as published on AWS's pricing pages on AS_OF, for
US East (N. Virginia); Europe (Ireland) lists the same figures for every line used here.
Check them against the pages before budgeting:

- Lambda: https://aws.amazon.com/lambda/pricing/ (Arm: the first 7.5 billion GB-seconds a month)
- Step Functions: https://aws.amazon.com/step-functions/pricing/ (Express: the first 1,000 GB-hours)
- S3: https://aws.amazon.com/s3/pricing/ (Standard: the first 50 TB a month)
- Data transfer between regions: https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer_within_the_same_AWS_Region
"""

from __future__ import annotations

AS_OF = "2026-11-01"

LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_X86_GB_SECOND = 0.0000166667
EXPRESS_REQUEST = 1.00 / 1_000_000
EXPRESS_GB_SECOND = 0.00001667
STANDARD_TRANSITION = 0.025 / 1000
S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET = 0.0004 / 1000
S3_STANDARD_GB_MONTH = 0.023
INTER_REGION_GB = 0.02
