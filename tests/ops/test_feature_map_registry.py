"""The feature-map registry is the one definition: every backend covers every registered map, and the
constants, ids and formulas each backend carries equal the registry's. Each failure names what is missing."""

import inspect
import re

import pytest
import torch

from flurka_export.kernels import c_api, launch
from flurka_export.models import ATTENTION_KINDS
from flurka_export.models.random_features import DRAWS
from flurka_export.ops.feature_maps import DEFAULTS, FEATURE_MAPS, OPTIONAL_ATTRIBUTES, REGISTRY, phi, phi_dim
from flurka_export.ops.schema import ATTRIBUTES

pytest.importorskip("triton")
from flurka_export.kernels import flurka_fwd, flurka_fwd_maps  # noqa: E402

MAPS = list(REGISTRY.values())


def test_enum_ids_are_dense_and_ordered():
    assert [m.enum_id for m in MAPS] == list(range(len(MAPS)))
    assert FEATURE_MAPS == tuple(m.name for m in MAPS)


def test_attributes_are_declared_once():
    names = [a.name for a in ATTRIBUTES]
    assert len(names) == len(set(names))
    for m in MAPS:
        for a in m.attributes:
            assert a in OPTIONAL_ATTRIBUTES, f"feature map {m.name!r} reads {a.name!r}, not in OPTIONAL_ATTRIBUTES"
    assert DEFAULTS == {a.name: a.default for a in OPTIONAL_ATTRIBUTES}


@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
@pytest.mark.parametrize("nu", [1, 3])
def test_phi_dim_is_the_width_of_phi(fmap, nu):
    d, p = 4, 5
    x = torch.randn(2, 3, 6, d)
    proj = torch.randn(3, p, d) if fmap.needs_feature_proj else None
    out = phi(x, fmap.name, proj, is_query=True, nu=nu)
    assert out.shape[-1] == phi_dim(fmap.name, d, p, nu=nu) == fmap.phi_dim(d, p, {**DEFAULTS, "nu": nu})


class _Params:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("fmap", MAPS, ids=lambda m: m.name)
@pytest.mark.parametrize("d,p,nu", [(32, 7, 1), (64, 70, 3), (128, 1, 2)])
def test_c_expressions_equal_the_python_ones(fmap, d, p, nu):
    params = _Params(head_dim=d, num_proj=p, nu=nu)
    attrs = {**DEFAULTS, "nu": nu}
    for c_expr, py in ((fmap.c_phi_dim, fmap.phi_dim), (fmap.c_kernel_p, fmap.kernel_p),
                       (fmap.c_kernel_columns, fmap.kernel_columns)):
        assert eval(c_expr.replace("p->", "params."), {"params": params}) == py(d, p, attrs), (fmap.name, c_expr)


def test_triton_covers_every_map_with_the_registry_ids():
    assert set(flurka_fwd.SUPPORTED) == set(FEATURE_MAPS), "flurka_fwd.SUPPORTED differs from the registry"
    for m in MAPS:
        const = f"FMAP_{m.name.upper().replace('-', '_')}"
        assert hasattr(flurka_fwd_maps, const), f"the Triton kernels have no {const} for feature map {m.name!r}"
        assert getattr(flurka_fwd_maps, const).value == m.enum_id
        sources = inspect.getsource(flurka_fwd) + inspect.getsource(flurka_fwd_maps)
        assert f"FMAP == {const}" in sources, (f"the Triton kernels never select feature map {m.name!r} (no "
                                               f"`FMAP == {const}` in kernels/flurka_fwd.py or flurka_fwd_maps.py)")
    for source in map(inspect.getsource, (*flurka_fwd.KERNELS.values(), flurka_fwd_maps)):
        assert not re.search(r"FMAP\s*(==|<=|>=|<|>|!=)\s*\d", source), "FMAP compared with a bare number"


def test_triton_constants_equal_the_registry():
    want = {name: value for m in MAPS for name, value in m.constants.items()}
    consts = dict(flurka_fwd.CONSTANTS)
    assert consts.pop("FMAP_IDS") == {m.name: m.enum_id for m in MAPS}
    assert consts == want


def test_launcher_has_tiles_and_codes_for_every_map():
    for m in MAPS:
        assert m.name in launch.HALF_TILES, f"kernels/launch.py HALF_TILES has no tile sizes for {m.name!r}"
        assert launch.FMAP_CODES[m.name] == m.enum_id


def test_c_api_enum_and_checks_are_generated():
    decl = c_api.declarations()
    for m in MAPS:
        assert f"{c_api.fmap_constant(m.name)} = {m.enum_id}" in decl
    assert f"#define FLURKA_FMAP_COUNT {len(MAPS)}" in decl
    functions = c_api.launcher_functions()
    assert "p->nu < 1" in functions  # dpfp's nu >= 1 is checked by the C launcher too
    for a in OPTIONAL_ATTRIBUTES:
        assert f"  {a.c_type} {a.name};" in decl


def test_models_cover_every_map():
    for m in MAPS:
        assert {f"kernel-{m.name}", f"flurka-{m.name}"} <= set(ATTENTION_KINDS), m.name
        if m.needs_feature_proj:
            assert m.random_features in DRAWS, f"models/random_features.py cannot draw {m.name!r}'s feature_proj"


def test_onnx_body_and_fusion_exist_for_every_map():
    from flurka_export.ops.onnx_bodies import function_proto
    from flurka_export.passes.fuse_flurka_attention import fusion_rules

    rules = {r.name for r in fusion_rules(cast_io=False).rules}
    for m in MAPS:
        body = function_proto(m.name)
        assert body.overload == m.name
        assert {a.name for a in body.attribute_proto} == {a.name for a in m.attributes}
        assert f"FuseFlurkaAttention[{m.name}]" in rules
