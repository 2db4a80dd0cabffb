#!/usr/bin/env python3
"""Checks of template.yaml that cfn-lint cannot make; `make lint-template` runs them.

1. Two stacks in one account and region must not collide: the template is
   put through the SAM transform (aws-sam-translator, which comes with
   cfn-lint) and every physical name (a top-level property called Name or
   ...Name) is resolved for two stack names. No name may be the same for
   both, or the second stack fails to create (SAM names ScheduleV2
   schedules after their logical id unless OmitName is set, say).
2. The parameters' patterns must not let a deployment through that cannot
   run: every MaxEventAge they allow is shorter than every
   IdempotencyRetention (the functions refuse to start otherwise), and
   ExistingSecretArn and ExistingSecretKmsKeyArn take full ARNs only.
3. The HTTP API's access log format is JSON and uses only allowed variables:
   never the raw path (the Tableau route's path carries the secret token)
   nor a header.

Also checks itself: a copy of the template with a fixed name must be
reported, so the name check can never pass for want of looking.

Runs offline: the transform gets a stub session for its region, so neither
boto3's configuration nor the network is consulted.

Usage: python3 tools/template_check.py [template.yaml]
"""

import copy
import json
import logging
import re
import sys
import types

from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# The translator warns about usage metrics it would publish to AWS.
logging.getLogger("samtranslator").setLevel(logging.CRITICAL)

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACKS = ("staging", "production")

# Required parameters have no default; these stand in for them.
REQUIRED = {"TableauServerUrl": "https://prod-useast-a.online.tableau.com"}

# The optional parameters that switch resources and conditions on, so that
# every conditional resource is looked at by one of the two parameter sets.
EVERYTHING_ON = {
    "ExistingSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bridge-AbCdEf",
    "ExistingSecretKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "ScheduledJobIds": "123,456",
    "RefreshMap": '{"jobs": {"123": [{"workbook": "Sales"}]}}',
}

# Top-level properties whose names end in "Name" but that name nothing
# account-wide: an SNS topic's display name, an alarm's metric, the stage
# of an HTTP API (unique within its API, which the stack owns).
NOT_PHYSICAL = {
    ("*", "DisplayName"),
    ("*", "MetricName"),
    ("AWS::ApiGatewayV2::Stage", "StageName"),
}

# $context variables an access log line may carry: none holds the path or
# a header.
ACCESS_LOG_VARIABLES = {
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "routeKey",
    "status",
    "responseLatency",
    "responseLength",
    "integration.requestId",
    "integration.status",
    "integration.latency",
    "integration.error",
    "integrationErrorMessage",
    "error.message",
    "error.messageString",
}


class Unresolvable(Exception):
    """An intrinsic the resolver does not evaluate."""


def translate(template, params):
    """The template after the SAM transform, as CloudFormation would run it."""
    template = copy.deepcopy(template)
    for res in template.get("Resources", {}).values():
        # The transform wants code in S3; sam deploy uploads it there.
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"
    session = types.SimpleNamespace(region_name=REGION)
    return Translator({}, Parser(), boto_session=session).translate(template, dict(params))


def parameter_values(template, overrides):
    values = {}
    for name, p in template.get("Parameters", {}).items():
        if "Default" in p:
            values[name] = str(p["Default"])
    values.update(REQUIRED)
    values.update(overrides)
    return values


class Stack:
    """Resolves intrinsics as CloudFormation would for one stack name."""

    def __init__(self, name, template, params):
        self.name = name
        self.template = template
        self.params = params
        self.resources = template.get("Resources", {})
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.evaluate(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.name}/id",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            p = self.template["Parameters"][name]
            v = self.params[name]
            return v.split(",") if p.get("Type") == "CommaDelimitedList" else v
        if name in self.resources:
            # CloudFormation generates the physical id from the stack name,
            # the logical id and a random suffix.
            return f"{self.name}-{name}-GENERATED"
        raise Unresolvable(f"Ref {name}")

    def evaluate(self, v):
        if isinstance(v, list):
            return [self.evaluate(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) != 1:
            return {k: self.evaluate(x) for k, x in v.items()}
        (fn, arg), = v.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return f"{self.name}-{logical}-GENERATED-{attr}"
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.evaluate(arg[1]))

            def sub(m):
                key = m.group(1)
                if key.startswith("!"):
                    return "${" + key[1:] + "}"
                if key in local:
                    return str(local[key])
                if "." in key and key.split(".", 1)[0] in self.resources:
                    return self.evaluate({"Fn::GetAtt": key.split(".", 1)})
                return str(self.ref(key))

            return re.sub(r"\$\{([^}]+)\}", sub, text)
        if fn == "Fn::Join":
            sep, items = self.evaluate(arg)
            return sep.join(str(i) for i in items)
        if fn == "Fn::Select":
            index, items = self.evaluate(arg)
            return items[int(index)]
        if fn == "Fn::Split":
            sep, text = self.evaluate(arg)
            return text.split(sep)
        if fn == "Fn::If":
            name, yes, no = arg
            return self.evaluate(yes if self.condition(name) else no)
        if fn == "Fn::Equals":
            a, b = self.evaluate(arg)
            return a == b
        if fn == "Fn::Not":
            return not self.evaluate(arg[0])
        if fn == "Fn::And":
            return all(self.evaluate(x) for x in arg)
        if fn == "Fn::Or":
            return any(self.evaluate(x) for x in arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn.startswith("Fn::"):
            raise Unresolvable(fn)
        return {fn: self.evaluate(arg)}

    def references_resource(self, value):
        if not isinstance(value, dict) or len(value) != 1:
            return False
        (fn, arg), = value.items()
        if fn == "Ref":
            return arg in self.resources
        if fn == "Fn::GetAtt":
            logical = arg[0] if isinstance(arg, list) else arg.split(".", 1)[0]
            return logical in self.resources
        return False

    def physical_names(self):
        """(type, property) -> {name: [logical ids]} of every physical name."""
        names = {}
        for logical, res in self.resources.items():
            if "Condition" in res and not self.condition(res["Condition"]):
                continue
            rtype = res["Type"]
            for prop, value in (res.get("Properties") or {}).items():
                if not prop.endswith("Name"):
                    continue
                if ("*", prop) in NOT_PHYSICAL or (rtype, prop) in NOT_PHYSICAL:
                    continue
                if self.references_resource(value):
                    continue  # FunctionName of a Lambda permission, say
                try:
                    name = self.evaluate(value)
                except Unresolvable as e:
                    raise Unresolvable(f"{logical}.{prop}: cannot resolve {e}") from None
                if name is not None:
                    names.setdefault((rtype, prop), {}).setdefault(str(name), []).append(logical)
        return names


def shared_names(template):
    """Physical names two stacks of the template would both use."""
    problems = []
    checked = set()
    for overrides in ({}, EVERYTHING_ON):
        params = parameter_values(template, overrides)
        out = translate(template, params)
        a, b = (Stack(s, out, params).physical_names() for s in STACKS)
        for key, names in a.items():
            checked.update((key, logical) for logicals in names.values() for logical in logicals)
            hint = " (for a SAM ScheduleV2 event, OmitName: true)" if key[0] == "AWS::Scheduler::Schedule" else ""
            for name in sorted(names.keys() & b.get(key, {}).keys()):
                for logical in names[name]:
                    problem = (
                        f"{logical} ({key[0]}) has {key[1]} {name!r} in both stack "
                        f"{STACKS[0]!r} and stack {STACKS[1]!r}: leave the name out{hint} "
                        f"or derive it from the stack name"
                    )
                    if problem not in problems:
                        problems.append(problem)
    return problems, len(checked)


def go_duration(text):
    """Seconds in a Go duration string, or None where Go rejects it."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def allowed(param, value):
    pattern = param.get("AllowedPattern")
    if "AllowedValues" in param and value not in [str(v) for v in param["AllowedValues"]]:
        return False
    # CloudFormation matches the pattern against the whole value.
    return pattern is None or re.fullmatch(pattern, value) is not None


def duration_candidates():
    # Every number up to 99999 with each unit, also with a leading zero,
    # and forms Go accepts that a loose pattern might let through.
    for n in range(100000):
        for unit in ("h", "m", "s"):
            yield f"{n}{unit}"
            yield f"0{n}{unit}"
    yield from ("1h30m", "1.5h", "48h1m", "48h59m", "2880m", "172800s", "90000s", "1d", "", " 24h")


def parameter_problems(template):
    params = template["Parameters"]
    problems = []
    age, retention = params["MaxEventAge"], params["IdempotencyRetention"]
    for name, p in (("MaxEventAge", age), ("IdempotencyRetention", retention)):
        if not allowed(p, str(p["Default"])):
            problems.append(f"{name}'s default {p['Default']!r} does not match its own AllowedPattern")
    longest_age = shortest_retention = None
    rejected = {}
    for value in duration_candidates():
        seconds = go_duration(value)
        for name, p in (("MaxEventAge", age), ("IdempotencyRetention", retention)):
            if not allowed(p, value):
                continue
            if seconds is None or seconds <= 0:
                rejected.setdefault(name, []).append(value)
            elif name == "MaxEventAge":
                longest_age = max(longest_age or (0, ""), (seconds, value))
            else:
                shortest_retention = min(shortest_retention or (float("inf"), ""), (seconds, value))
    for name, values in rejected.items():
        problems.append(
            f"{name} allows {', '.join(map(repr, values[:4]))}{' ...' if len(values) > 4 else ''}, "
            f"which the functions reject (not a positive Go duration)"
        )
    if longest_age and shortest_retention and longest_age[0] >= shortest_retention[0]:
        problems.append(
            f"MaxEventAge={longest_age[1]} and IdempotencyRetention={shortest_retention[1]} both pass "
            f"their patterns, but the functions refuse to start unless the retention is longer: "
            f"make the patterns' ranges disjoint"
        )

    arn_cases = {
        "ExistingSecretArn": {
            "": True,
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:dbt-tableau/refresh-AbCdEf": True,
            f"arn:aws-us-gov:secretsmanager:us-gov-west-1:{ACCOUNT}:secret:bridge-a1B2c3": True,
            "dbt-tableau-refresh": False,  # a name
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bridge": False,  # partial ARN
            f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234": False,
        },
        "ExistingSecretKmsKeyArn": {
            "": True,
            f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab": True,
            f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mrk-1234abcd12ab34cd56ef1234567890ab": True,
            f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/secrets": False,  # IAM matches key ARNs only
            "1234abcd-12ab-34cd-56ef-1234567890ab": False,
            "alias/aws/secretsmanager": False,
        },
    }
    for name, cases in arn_cases.items():
        if name not in params:
            problems.append(f"parameter {name} is missing")
            continue
        for value, want in cases.items():
            if allowed(params[name], value) != want:
                problems.append(f"{name} {'rejects' if want else 'accepts'} {value!r}")
    return problems


def access_log_problems(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    settings = api.get("AccessLogSettings")
    if not settings:
        return ["HttpApi has no AccessLogSettings"]
    fmt = settings["Format"]
    problems = []
    used = re.findall(r"\$([A-Za-z]+)((?:\.[A-Za-z0-9]+)*)", fmt)
    for root, rest in used:
        var = rest[1:]
        if root != "context" or var not in ACCESS_LOG_VARIABLES:
            problems.append(f"access log format uses ${root}{rest}, which is not allowed (raw path, header or unknown)")
    # Unquoted variables must be numbers; the whole line must be JSON.
    sample = re.sub(r"\$context(?:\.[A-Za-z0-9]+)+", "0", fmt)
    try:
        json.loads(sample)
    except ValueError as e:
        problems.append(f"access log format is not JSON: {e}")
    return problems


def self_check(template):
    """The name check must see a fixed name: the schedules without OmitName."""
    broken = copy.deepcopy(template)
    for res in broken["Resources"].values():
        for event in (res.get("Properties") or {}).get("Events", {}).values():
            if event.get("Type") == "ScheduleV2":
                event["Properties"].pop("OmitName", None)
    broken["Resources"]["AlarmTopic"]["Properties"]["TopicName"] = "dbt-tableau-refresh-alarms"
    problems, _ = shared_names(broken)
    wanted = ["SchedulerFunctionTick ", "SchedulerFunctionFollowUp ", "AlarmTopic "]
    missing = [w.strip() for w in wanted if not any(p.startswith(w) for p in problems)]
    if missing:
        return [f"self-check: the name check did not report the fixed names of {', '.join(missing)}: it is broken"]
    return []


def main(argv):
    path = argv[1] if len(argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    try:
        names, checked = shared_names(template)
    except Unresolvable as e:
        names, checked = [f"physical names: {e}"], 0
    problems = names + parameter_problems(template) + access_log_problems(template) + self_check(template)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"{path}: ok: no physical name shared by stacks {STACKS[0]!r} and {STACKS[1]!r} "
        f"(physical names set after the SAM transform: {checked}); "
        f"MaxEventAge below IdempotencyRetention for every allowed pair; secret and key ARNs only; "
        f"access log format JSON without path or headers"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
