"""EdgeFirewall: a WAF web ACL for the distribution (scope CLOUDFRONT, us-east-1)."""

from typing import TypedDict

import pulumi
import pulumi_aws as aws

MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")


class EdgeFirewallArgs(TypedDict):
    """Arguments of `EdgeFirewall`."""

    name_prefix: str
    """Prefix of the web ACL's name and metrics."""
    rate_limit: int
    """Requests per client IP per 5 minutes before that IP is blocked."""


def _visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
    return aws.wafv2.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


class EdgeFirewall(pulumi.ComponentResource):
    """Rate limit per IP, then AWS's common and known-bad-inputs rule groups."""

    web_acl_arn: pulumi.Output[str]
    """The web ACL (scope CLOUDFRONT) to give FailoverDistribution as `web_acl_arn`."""

    def __init__(self, name: str, args: EdgeFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:EdgeFirewall", name, None, opts)
        prefix = args["name_prefix"]
        rules = [
            aws.wafv2.WebAclRuleArgs(
                name="rate-per-ip",
                priority=0,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=args["rate_limit"], aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility(f"{prefix}-rate-per-ip"),
            )
        ]
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(
                aws.wafv2.WebAclRuleArgs(
                    name=group,
                    priority=priority,
                    override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                        none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()  # type: ignore[no-untyped-call]
                    ),
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                            name=group, vendor_name="AWS"
                        )
                    ),
                    visibility_config=_visibility(f"{prefix}-{group}"),
                )
            )
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            name=f"{prefix}-edge",
            scope="CLOUDFRONT",
            region="us-east-1",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=f"{prefix}-edge", sampled_requests_enabled=True
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.web_acl_arn = self.web_acl.arn
        self.register_outputs({"web_acl_arn": self.web_acl_arn})
