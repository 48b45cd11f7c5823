/*
 * flurka_attention_launch_api.h: fallback copy of the launcher's C API.
 *
 * The real header, flurka_attention_launch.h, is generated together with the launcher source and the
 * ahead-of-time compiled kernels by `flurka-export build-kernels --arch 80,86,89,90 -o DIR`. The plugin
 * includes the generated header whenever CMake is given FLURKA_KERNELS_DIR (FLURKA_HAVE_GENERATED_LAUNCHER
 * is defined then); this copy only serves the compile check without kernels (FLURKA_CHECK_ONLY=ON).
 * The block between FLURKA-API-BEGIN and FLURKA-API-END is generated from the feature-map registry
 * (`python -m flurka_export.kernels.c_api`); tests/trt/test_plugin_fields.py checks it is current.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef FLURKA_ATTENTION_LAUNCH_API_H
#define FLURKA_ATTENTION_LAUNCH_API_H

#include <stddef.h>
#include <cuda.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FLURKA-API-BEGIN (generated from flurka_export/ops/feature_maps: python -m flurka_export.kernels.c_api) */
typedef enum { FLURKA_DTYPE_FP32 = 0, FLURKA_DTYPE_FP16 = 1, FLURKA_DTYPE_BF16 = 2 } flurka_dtype_t;
typedef enum { FLURKA_FMAP_RELU = 0, FLURKA_FMAP_ELU = 1, FLURKA_FMAP_RFA = 2, FLURKA_FMAP_FAVOR = 3, FLURKA_FMAP_DPFP = 4, FLURKA_FMAP_FAVOR_CAUSAL = 5 } flurka_feature_map_t;
#define FLURKA_FMAP_COUNT 6
/* By enum id: the op's feature_map strings, and 1 where the map reads input 3 (feature_proj [H, P, d]). */
#define FLURKA_FMAP_NAMES { "relu", "elu", "rfa", "favor", "dpfp", "favor-causal" }
#define FLURKA_FMAP_NEEDS_FEATURE_PROJ { 0, 0, 1, 1, 0, 1 }
typedef struct {
  int batch, num_heads, q_len, kv_len, head_dim, value_dim, num_proj;
  flurka_dtype_t dtype;
  flurka_feature_map_t feature_map;
  float stabilizer;
  float eps;
  int nu;
} flurka_attention_params_t;
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
/* FLURKA-API-END */

#ifdef __cplusplus
}
#endif

#endif /* FLURKA_ATTENTION_LAUNCH_API_H */
