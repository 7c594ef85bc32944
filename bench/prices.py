"""AWS prices the projections and the cost estimate use: a dated table, no network at run time.

On-demand list prices in US dollars, as published on AWS's pricing pages on AS_OF, for
US East (N. Virginia); Europe (Ireland) lists the same figures for every line used here.
Check them against the pages before budgeting:

- Lambda: https://aws.amazon.com/lambda/pricing/ (Arm: the first 7.5 billion GB-seconds a month)
- Step Functions: https://aws.amazon.com/step-functions/pricing/ (Express: the first 1,000 GB-hours)
- S3: https://aws.amazon.com/s3/pricing/ (Standard: the first 50 TB a month)
- Data transfer between regions: https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer_within_the_same_AWS_Region
- CloudFront, CloudFront Functions, KeyValueStore: https://aws.amazon.com/cloudfront/pricing/ (pay as you go,
  the first 10 TB a month; the always-free allowance is left out: `--free-tier` applies it)
- Lambda@Edge: https://aws.amazon.com/lambda/pricing/#Lambda.40Edge_Pricing
- DynamoDB on-demand: https://aws.amazon.com/dynamodb/pricing/on-demand/
- API Gateway HTTP APIs: https://aws.amazon.com/api-gateway/pricing/ (the first 300 million a month)
- AWS WAF: https://aws.amazon.com/waf/pricing/
- CloudWatch: https://aws.amazon.com/cloudwatch/pricing/ (standard-resolution alarms, per metric; custom
  metrics, the first 10,000; dashboards beyond the first three; Logs ingestion)
- Secrets Manager: https://aws.amazon.com/secrets-manager/pricing/
- SQS: https://aws.amazon.com/sqs/pricing/ (standard queues; the free million a month is left out)
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
SQS_REQUEST = 0.40 / 1_000_000  # standard queues, after the first million a month

# CloudFront, per GB to the internet and per 10,000 HTTPS requests, by where the viewer is.
CLOUDFRONT_GB = {
    "north_america": 0.085,
    "europe": 0.085,
    "south_america": 0.110,
    "japan": 0.114,
    "australia": 0.114,
    "asia": 0.120,
    "india": 0.109,
    "middle_east_africa": 0.110,
}
CLOUDFRONT_HTTPS_10K = {
    "north_america": 0.0100,
    "europe": 0.0120,
    "south_america": 0.0220,
    "japan": 0.0120,
    "australia": 0.0125,
    "asia": 0.0120,
    "india": 0.0120,
    "middle_east_africa": 0.0220,
}
# The viewer regions each price class serves from its own edges (the rest are served, and billed,
# from the nearest edge inside the class: North America or Europe).
PRICE_CLASS_AREAS = {
    "PriceClass_100": ("north_america", "europe"),
    "PriceClass_200": ("north_america", "europe", "asia", "japan", "india", "middle_east_africa"),
    "PriceClass_All": tuple(CLOUDFRONT_GB),
}
CLOUDFRONT_FREE_GB = 1024
CLOUDFRONT_FREE_REQUESTS = 10_000_000
CLOUDFRONT_FUNCTION_INVOCATION = 0.10 / 1_000_000
CLOUDFRONT_FREE_FUNCTION_INVOCATIONS = 2_000_000
KVS_READ = 0.03 / 1_000_000
LAMBDA_EDGE_REQUEST = 0.60 / 1_000_000
LAMBDA_EDGE_GB_SECOND = 0.00005001
DYNAMODB_WRITE_UNIT = 0.625 / 1_000_000
DYNAMODB_READ_UNIT = 0.125 / 1_000_000
DYNAMODB_GB_MONTH = 0.25
HTTP_API_REQUEST = 1.00 / 1_000_000
WAF_WEB_ACL_MONTH = 5.00
WAF_RULE_MONTH = 1.00
WAF_REQUEST = 0.60 / 1_000_000
CLOUDWATCH_ALARM_METRIC_MONTH = 0.10
CLOUDWATCH_CUSTOM_METRIC_MONTH = 0.30
CLOUDWATCH_DASHBOARD_MONTH = 3.00
CLOUDWATCH_LOGS_GB = 0.50
SECRET_MONTH = 0.40
