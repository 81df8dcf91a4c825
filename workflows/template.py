"""Read a CloudFormation YAML template into plain Python data.

CloudFormation's short-form intrinsics (`!Ref`, `!Sub`, `!GetAtt`, ...) are YAML
tags that `yaml.safe_load` rejects. `load_template` turns each one into the
long form CloudFormation itself uses, so code that reads a template (tests, local
runners, docs) sees one shape whichever form the author wrote:

    !Ref X              -> {"Ref": "X"}
    !GetAtt A.B         -> {"Fn::GetAtt": ["A", "B"]}
    !Condition C        -> {"Condition": "C"}
    !Sub / !Join / ...  -> {"Fn::Sub": ...}, {"Fn::Join": ...}, ...
"""

from pathlib import Path
from typing import Any, Union

import yaml

# Tags whose long form is not "Fn::<Tag>".
_SPECIAL_KEYS = {"Ref": "Ref", "Condition": "Condition"}


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)

    if tag_suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute itself may contain dots).
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    key = _SPECIAL_KEYS.get(tag_suffix, f"Fn::{tag_suffix}")
    return {key: value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Union[str, Path]) -> dict:
    """Parse the CloudFormation YAML template at `path` into dicts and lists."""
    with open(path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict):
        raise ValueError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return template
