/*
 * flurka_attention_launch_api.h: fallback copy of the launcher's C API.
 *
 * The real header, flurka_attention_launch.h, is generated together with the launcher source and the
 * ahead-of-time compiled kernels by `flurka-export build-kernels --arch 80,86,89,90 -o DIR`. The plugin
 * includes the generated header whenever CMake is given FLURKA_KERNELS_DIR (FLURKA_HAVE_GENERATED_LAUNCHER
 * is defined then); this copy only serves the compile check without kernels (FLURKA_CHECK_ONLY=ON).
 * Keep it identical to the generated declarations: tests/trt/test_plugin_fields.py compares them.
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

typedef enum { FLURKA_DTYPE_FP32 = 0, FLURKA_DTYPE_FP16 = 1, FLURKA_DTYPE_BF16 = 2 } flurka_dtype_t;
typedef enum { FLURKA_FMAP_RELU = 0, FLURKA_FMAP_ELU = 1, FLURKA_FMAP_RFA = 2, FLURKA_FMAP_FAVOR = 3 } flurka_feature_map_t;
typedef struct { int batch, num_heads, q_len, kv_len, head_dim, value_dim, num_proj; flurka_dtype_t dtype; flurka_feature_map_t feature_map; float stabilizer, eps; } flurka_attention_params_t;
size_t flurka_attention_workspace_size(const flurka_attention_params_t* p);
int flurka_attention_supported(const flurka_attention_params_t* p);
int flurka_attention_launch(const flurka_attention_params_t* p, const void* query, const void* key, const void* value, const void* feature_proj, void* output, void* workspace, size_t workspace_size, CUstream stream); /* 0 = ok */
const char* flurka_attention_error_string(int code);
int flurka_attention_device_cc(int* cc); /* 0 = ok */
int flurka_attention_device_supported(int cc);
int flurka_attention_prepare(const flurka_attention_params_t* p); /* 0 = ok */
const char* flurka_attention_build_info(void);

#ifdef __cplusplus
}
#endif

#endif /* FLURKA_ATTENTION_LAUNCH_API_H */
