"""Run the real SAM transform offline, as CloudFormation would at deploy time.

    .venv-tools/bin/python sam_translate.py TEMPLATE OUT.json

cfn-lint (>= 1.x) validates SAM templates against SAM's schema without translating them, and
`sam build` does not translate either, so translation errors (e.g. an event's
`ApiKeyRequired: false` without an API-level `true`) would only show at `sam deploy`. Local
CodeUri/Location paths are replaced by S3 placeholders, as `sam package` would. Exit 1 with the
translator's errors on an invalid template.
"""

from __future__ import annotations

import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_BUCKET = "hematovision-artifacts-placeholder"


class NoManagedPolicies:
    """The template attaches no AWS managed policy by name, so no IAM look-up is needed."""

    def load(self) -> dict:
        return {}


def main(template_path: str, out_path: str) -> int:
    with open(template_path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    for logical_id, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/{logical_id}.zip"
        if res.get("Type") == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            props["Location"] = f"https://{PLACEHOLDER_BUCKET}.s3.amazonaws.com/{logical_id}.template"
    try:
        output = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"SAM transform error: {cause.message}", file=sys.stderr)
        return 1
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(output, handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
