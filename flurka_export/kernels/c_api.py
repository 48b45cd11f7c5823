"""The C side of the feature-map registry, generated: the launcher API's enums and parameter struct (in the
generated flurka_attention_launch.h and the plugin's fallback copy), and the launcher's per-map functions.

`python -m flurka_export.kernels.c_api` prints the declarations block that
plugins/flurka_attention/flurka_attention_launch_api.h must hold (a test compares them);
`python -m flurka_export.kernels.c_api --write plugins/flurka_attention/flurka_attention_launch_api.h` puts it there.
"""

from __future__ import annotations

from ..ops.feature_maps import OPTIONAL_ATTRIBUTES, REGISTRY
from .launch import NEEDS_KEY_MAX

DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16")  # = flurka_dtype_t order
BEGIN = "/* FLURKA-API-BEGIN (generated from flurka_export/ops/feature_maps: python -m flurka_export.kernels.c_api) */"
END = "/* FLURKA-API-END */"


def fmap_constant(name: str) -> str:
    return f"FLURKA_FMAP_{name.upper().replace('-', '_')}"  # favor-causal -> FLURKA_FMAP_FAVOR_CAUSAL


def declarations() -> str:
    """Enums, parameter struct and prototypes of the launcher's C API, between BEGIN and END."""
    dtypes = ", ".join(f"FLURKA_DTYPE_{d.upper()} = {i}" for i, d in enumerate(DTYPES))
    fmaps = ", ".join(f"{fmap_constant(m.name)} = {m.enum_id}" for m in REGISTRY.values())
    attrs = "".join(f"  {a.c_type} {a.name};\n" for a in OPTIONAL_ATTRIBUTES if a.c_type)
    names = ", ".join(f'"{m.name}"' for m in REGISTRY.values())
    proj = ", ".join(str(int(m.needs_feature_proj)) for m in REGISTRY.values())
    return f"""{BEGIN}
typedef enum {{ {dtypes} }} flurka_dtype_t;
typedef enum {{ {fmaps} }} flurka_feature_map_t;
#define FLURKA_FMAP_COUNT {len(REGISTRY)}
/* By enum id: the op's feature_map strings, and 1 where the map reads input 3 (feature_proj [H, P, d]). */
#define FLURKA_FMAP_NAMES {{ {names} }}
#define FLURKA_FMAP_NEEDS_FEATURE_PROJ {{ {proj} }}
typedef struct {{
  int batch, num_heads, q_len, kv_len, head_dim, value_dim, num_proj;
  flurka_dtype_t dtype;
  flurka_feature_map_t feature_map;
{attrs}}} flurka_attention_params_t;
size_t flurka_attention_workspace_size(const flurka_attention_params_t* p);   /* bytes of device workspace */
int flurka_attention_supported(const flurka_attention_params_t* p);          /* 1 if a kernel image exists for it */
int flurka_attention_launch(const flurka_attention_params_t* p, const void* query, const void* key, const void* value,
                            const void* feature_proj, void* output, void* workspace, size_t workspace_size,
                            CUstream stream); /* 0 = ok */
const char* flurka_attention_error_string(int code);
/* Compute capability (major*10+minor) of the current context's device; 0 = ok, else an error code. */
int flurka_attention_device_cc(int* cc);
/* 1 if a kernel image (cubin, or PTX the driver can JIT) runs on compute capability cc. */
int flurka_attention_device_supported(int cc);
/* Load the modules that p needs into the current context (before any launch or graph capture); 0 = ok. */
int flurka_attention_prepare(const flurka_attention_params_t* p);
/* One line: the cubin archs, the PTX arch and ISA version, and the minimum driver the PTX needs. */
const char* flurka_attention_build_info(void);
/* NULL once the NVIDIA driver (libcuda.so.1, opened on first use) is loaded; else why it cannot be. */
const char* flurka_attention_driver_error(void);
{END}"""


def _switch(fn: str, doc: str, cases: dict[str, str]) -> str:
    """A switch over the feature map; the registry's int expressions are evaluated in long long (no overflow)."""
    body = "".join(f"    case {fmap_constant(name)}: return {expr.replace('p->', '(long long)p->')};\n"
                   for name, expr in cases.items())
    return (f"/* {doc} */\nstatic long long {fn}(const flurka_attention_params_t* p) {{\n"
            f"  switch (p->feature_map) {{\n{body}    default: return 0;\n  }}\n}}\n")


def _any_of(names: list[str]) -> str:
    return " || ".join(f"p->feature_map == {fmap_constant(n)}" for n in names) or "0"


def launcher_functions() -> str:
    """The launcher's per-map functions: M, the kernels' P, the feature columns, feature_proj, attribute checks."""
    maps = REGISTRY.values()
    checks = []
    for a in OPTIONAL_ATTRIBUTES:
        readers = [m.name for m in maps if a in m.attributes]
        if a.minimum is not None and readers and a.c_type:
            checks.append(f"  if (({_any_of(readers)}) && p->{a.name} < {a.minimum}) return 0;\n")
    proj = _any_of([m.name for m in maps if m.needs_feature_proj])
    key_max = _any_of([m.name for m in maps if m.name in NEEDS_KEY_MAX])
    return "\n".join([
        _switch("phi_dim", "M, the rows of S", {m.name: m.c_phi_dim for m in maps}),
        _switch("kernel_p", "the kernels' P argument", {m.name: m.c_kernel_p for m in maps}),
        _switch("kernel_columns", "the feature columns kv_state tiles over", {m.name: m.c_kernel_columns for m in maps}),
        f"static int uses_proj(const flurka_attention_params_t* p) {{ return {proj}; }}\n",
        f"static int needs_key_max(const flurka_attention_params_t* p) {{ return {key_max}; }}\n",
        "/* 1 when the attributes the feature map reads are in range */\n"
        "static int valid_attributes(const flurka_attention_params_t* p) {\n" + "".join(checks) + "  return 1;\n}\n",
    ])


def write_block(path: str) -> None:
    """Replace the BEGIN..END block of the header at `path` with the current declarations."""
    from ..utils import atomic_path

    text = open(path).read()
    start, end = text.find("/* FLURKA-API-BEGIN"), text.find(END)  # the marker, whatever its comment says
    if start < 0 or end < 0:
        raise SystemExit(f"{path} has no FLURKA-API-BEGIN ... FLURKA-API-END block to replace")
    with atomic_path(path) as tmp:
        tmp.write_text(text[:start] + declarations() + text[end + len(END):])


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_block(sys.argv[2])
    elif len(sys.argv) == 1:
        print(declarations())
    else:
        raise SystemExit("usage: python -m flurka_export.kernels.c_api [--write HEADER]")
