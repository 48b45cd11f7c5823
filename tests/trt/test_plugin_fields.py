"""The plugin's field list (C++) equals the op's attribute list (flurka_export/ops/schema.py)."""

import re
from pathlib import Path

from flurka_export.ops.feature_maps import FEATURE_MAPS
from flurka_export.ops.schema import ATTRIBUTES, OP_NAME, OP_VERSION
from flurka_export.passes.prepare_trt import PLUGIN_NAMESPACE, PLUGIN_VERSION
from flurka_export.trt import plugin

HEADER = Path(__file__).resolve().parents[2] / "plugins" / "flurka_attention" / "flurkaAttentionPlugin.h"
TRT_TYPES = {"int": "kINT32", "float": "kFLOAT32", "string": "kCHAR"}


def _between(tag: str) -> str:
    text = HEADER.read_text()
    return text[text.index(f"FLURKA-{tag}-BEGIN"):text.index(f"FLURKA-{tag}-END")]


def test_fields_match_schema():
    fields = re.findall(r'\{"(\w+)", nvinfer1::PluginFieldType::(\w+)\}', _between("FIELDS"))
    assert fields == [(a.name, TRT_TYPES[a.type]) for a in ATTRIBUTES]


def test_feature_maps_match():
    assert tuple(re.findall(r'"(\w+)"', _between("FEATURE-MAPS"))) == FEATURE_MAPS


def test_identity_matches_pass_and_loader():
    text = HEADER.read_text()
    name = re.search(r'kPLUGIN_NAME = "(\w+)"', text).group(1)
    version = re.search(r'kPLUGIN_VERSION = "(\w+)"', text).group(1)
    namespace = re.search(r'kPLUGIN_NAMESPACE = "([\w.]+)"', text).group(1)
    assert (name, version, namespace) == (OP_NAME, str(OP_VERSION), PLUGIN_NAMESPACE)
    assert (plugin.PLUGIN_NAME, plugin.PLUGIN_VERSION, plugin.PLUGIN_NAMESPACE) == (name, version, namespace)
    assert PLUGIN_VERSION == version
