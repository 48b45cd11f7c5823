"""The C launcher's CUDA driver loader (spliced into c_sources.LAUNCH_C at @DRIVER_LOADER@): the driver is
dlopen'ed at first use, so nothing links libcuda and the launcher and plugin build without a driver."""

from __future__ import annotations

DRIVER_LOADER = r"""
/* The CUDA driver, loaded on first use as Triton's own launchers do: dlopen(libcuda.so.1), then each entry point
 * by name through cuGetProcAddress_v2 (CUDA 12.0+), at the CUDA 12.0 ABI these pointer types spell out. Nothing
 * links libcuda, so the launcher builds where only the toolkit's headers are (image builds, CI). The library
 * opened is the one the process already uses (same soname). FLURKA_CUDA_DRIVER_LIBRARY names another file
 * (tests load a fake driver with it). */
#define FLURKA_DRIVER_ABI 12000
#ifdef _WIN32
#define FLURKA_DRIVER_LIBRARY "nvcuda.dll"
#else
#define FLURKA_DRIVER_LIBRARY "libcuda.so.1"
#endif
#ifdef CUDA_API_PER_THREAD_DEFAULT_STREAM
#define FLURKA_STREAM_FLAGS CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
#else
#define FLURKA_STREAM_FLAGS CU_GET_PROC_ADDRESS_LEGACY_STREAM
#endif
typedef CUresult(CUDAAPI* flurka_get_proc_t)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);
static struct {
  CUresult(CUDAAPI* ctx_get_current)(CUcontext*);
  CUresult(CUDAAPI* ctx_get_id)(CUcontext, unsigned long long*);
  CUresult(CUDAAPI* ctx_get_device)(CUdevice*);
  CUresult(CUDAAPI* device_get_attribute)(int*, CUdevice_attribute, CUdevice);
  CUresult(CUDAAPI* module_load_data)(CUmodule*, const void*);
  CUresult(CUDAAPI* module_get_function)(CUfunction*, CUmodule, const char*);
  CUresult(CUDAAPI* module_unload)(CUmodule);
  CUresult(CUDAAPI* func_set_attribute)(CUfunction, CUfunction_attribute, int);
  CUresult(CUDAAPI* launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                   CUstream, void**, void**);
  CUresult(CUDAAPI* get_error_string)(CUresult, const char**);
} g_cu;
static int g_driver_rc = FLURKA_ERR_NO_DRIVER;
static char g_driver_error[768] = "the NVIDIA driver has not been loaded yet";

#ifdef _WIN32
static INIT_ONCE g_driver_once = INIT_ONCE_STATIC_INIT;
static void* driver_open(const char* path) { return (void*)LoadLibraryA(path); }
static void* driver_symbol(void* lib, const char* name) { return (void*)GetProcAddress((HMODULE)lib, name); }
static const char* driver_open_error(void) { return "LoadLibrary failed"; }
#else
static pthread_once_t g_driver_once = PTHREAD_ONCE_INIT;
static void* driver_open(const char* path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL); }
static void* driver_symbol(void* lib, const char* name) { return dlsym(lib, name); }
static const char* driver_open_error(void) { const char* e = dlerror(); return e ? e : "not found"; }
#endif

static void load_driver(void) {
  static const char* const names[] = {"cuCtxGetCurrent", "cuCtxGetId", "cuCtxGetDevice", "cuDeviceGetAttribute",
                                      "cuModuleLoadData", "cuModuleGetFunction", "cuModuleUnload",
                                      "cuFuncSetAttribute", "cuLaunchKernel", "cuGetErrorString"};
  void* const slots[] = {&g_cu.ctx_get_current, &g_cu.ctx_get_id, &g_cu.ctx_get_device, &g_cu.device_get_attribute,
                         &g_cu.module_load_data, &g_cu.module_get_function, &g_cu.module_unload,
                         &g_cu.func_set_attribute, &g_cu.launch_kernel, &g_cu.get_error_string};
  const char* path = getenv("FLURKA_CUDA_DRIVER_LIBRARY");
  flurka_get_proc_t get_proc;
  void* lib;
  void* sym;
  void* fn;
  size_t i;
  if (!path || !*path) path = FLURKA_DRIVER_LIBRARY;
  if (!(lib = driver_open(path))) {
    snprintf(g_driver_error, sizeof(g_driver_error), "cannot load the CUDA driver library %s (%s): running the "
             "FlurkaAttention kernels needs a NVIDIA driver (CUDA 12.0 or newer) on this machine", path,
             driver_open_error());
    return;
  }
  if (!(sym = driver_symbol(lib, "cuGetProcAddress_v2"))) {
    snprintf(g_driver_error, sizeof(g_driver_error), "the CUDA driver library %s has no cuGetProcAddress_v2: the "
             "FlurkaAttention kernels need a NVIDIA driver for CUDA 12.0 or newer", path);
    return;
  }
  memcpy(&get_proc, &sym, sizeof(sym)); /* POSIX: function and object pointers convert */
  for (i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r;
    fn = NULL;
    r = get_proc(names[i], &fn, FLURKA_DRIVER_ABI, FLURKA_STREAM_FLAGS, &found);
    if (r != CUDA_SUCCESS || found != CU_GET_PROC_ADDRESS_SUCCESS || !fn) {
      snprintf(g_driver_error, sizeof(g_driver_error), "the CUDA driver library %s has no %s (error %d, status %d): "
               "the FlurkaAttention kernels need a NVIDIA driver for CUDA 12.0 or newer", path, names[i], (int)r,
               (int)found);
      return;
    }
    memcpy(slots[i], &fn, sizeof(fn));
  }
  g_driver_error[0] = '\0';
  g_driver_rc = FLURKA_OK;
}

#ifdef _WIN32
static BOOL CALLBACK load_driver_once(PINIT_ONCE once, PVOID arg, PVOID* ctx) {
  (void)once; (void)arg; (void)ctx;
  load_driver();
  return TRUE;
}
#endif

/* FLURKA_OK once the driver's entry points are loaded; else FLURKA_ERR_NO_DRIVER (the reason: driver_error). */
static int driver(void) {
#ifdef _WIN32
  InitOnceExecuteOnce(&g_driver_once, load_driver_once, NULL, NULL);
#else
  pthread_once(&g_driver_once, load_driver);
#endif
  return g_driver_rc;
}

const char* flurka_attention_driver_error(void) { return driver() == FLURKA_OK ? NULL : g_driver_error; }
"""
