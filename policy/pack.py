"""The rules as CrossGuard policies (constructing them serves nothing; __main__ does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

try:  # run by the Pulumi CLI from inside policy/, or imported as a package by the tests
    import rules  # type: ignore[import-not-found]
except ImportError:
    from policy import rules


def _resource_policy(rule: Callable[[Any], list[str]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = rules.Resource(args.resource_type, args.name, args.props, rules.stack_of(args.urn))
        for message in rule(resource):
            report(message, None)

    return ResourceValidationPolicy(
        name=rule.__name__.replace("_", "-"),
        description=(rule.__doc__ or "").strip(),
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _stack_policy(rule: Callable[[list[Any]], list[str]]) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [rules.Resource(r.resource_type, r.name, r.props, rules.stack_of(r.urn)) for r in args.resources]
        for message in rule(resources):
            report(message, None)

    return StackValidationPolicy(
        name=rule.__name__.replace("_", "-"),
        description=(rule.__doc__ or "").strip(),
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [
        *(_resource_policy(rule) for rule in rules.RESOURCE_RULES),
        *(_stack_policy(rule) for rule in rules.STACK_RULES),
    ]
