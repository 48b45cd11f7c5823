# FindTensorRT: locate the TensorRT C++ headers and, unless only headers are wanted, libnvinfer.
#
# Inputs (cache or command line):
#   TensorRT_ROOT          an install prefix (tar package root, or /usr); also read from the environment
#   TensorRT_INCLUDE_DIR   the directory holding NvInferRuntime.h
#   TensorRT_LIBRARY_DIR   the directory holding libnvinfer.so
#   TensorRT_HEADERS_ONLY  ON: do not look for the library (compile checks)
#   TensorRT_LIBRARY_OPTIONAL  ON: look for the library, but find the package without it
# Outputs: TensorRT_FOUND, TensorRT_INCLUDE_DIR, TensorRT_LIBRARY, TensorRT_VERSION, target TensorRT::nvinfer.

set(_trt_roots ${TensorRT_ROOT} $ENV{TensorRT_ROOT} $ENV{TENSORRT_ROOT})

find_path(TensorRT_INCLUDE_DIR NvInferRuntime.h
  HINTS ${_trt_roots}
  PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu
  PATHS /usr/local/TensorRT /opt/tensorrt)

if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(READ "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" _trt_version_h)
  foreach(_part MAJOR MINOR PATCH)
    # TensorRT 11 defines TRT_<PART>_ENTERPRISE (NV_TENSORRT_<PART> aliases it); TensorRT 10 NV_TENSORRT_<PART>.
    if(_trt_version_h MATCHES "#define TRT_${_part}_ENTERPRISE ([0-9]+)")
      set(_trt_${_part} "${CMAKE_MATCH_1}")
    elseif(_trt_version_h MATCHES "#define NV_TENSORRT_${_part} ([0-9]+)")
      set(_trt_${_part} "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(TensorRT_VERSION "${_trt_MAJOR}.${_trt_MINOR}.${_trt_PATCH}")
endif()

set(_trt_required TensorRT_INCLUDE_DIR)
if(NOT TensorRT_HEADERS_ONLY)
  find_library(TensorRT_LIBRARY NAMES nvinfer nvinfer_11 nvinfer_10
    HINTS ${TensorRT_LIBRARY_DIR} ${_trt_roots}
    PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu
    PATHS /usr/local/TensorRT /opt/tensorrt)
  if(NOT TensorRT_LIBRARY_OPTIONAL)
    list(APPEND _trt_required TensorRT_LIBRARY)
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRT
  REQUIRED_VARS ${_trt_required}
  VERSION_VAR TensorRT_VERSION
  FAIL_MESSAGE "TensorRT not found: pass -DTensorRT_ROOT=<TensorRT install dir> (or -DTensorRT_INCLUDE_DIR=... -DTensorRT_LIBRARY_DIR=...), the SDK (10.9 or newer) comes from https://developer.nvidia.com/tensorrt")

if(TensorRT_FOUND AND TensorRT_LIBRARY AND NOT TARGET TensorRT::nvinfer)
  add_library(TensorRT::nvinfer SHARED IMPORTED)
  set_target_properties(TensorRT::nvinfer PROPERTIES
    IMPORTED_LOCATION "${TensorRT_LIBRARY}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}"
    INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
endif()
mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_LIBRARY)
