# The kernel source list: one line per (family, ISA) file. Adding a kernel = one file + one line.
set(MK_KERNEL_SOURCES
  csrc/kernels/f32-dwconv/f32_dwconv_pack.cpp
  csrc/kernels/f32-dwconv/f32_dwconv_scalar.cpp)

function(mk_isa_kernel file flags)
  set_source_files_properties(${file} PROPERTIES COMPILE_OPTIONS "${flags}")
  set(MK_KERNEL_SOURCES ${MK_KERNEL_SOURCES} ${file} PARENT_SCOPE)
endfunction()

if(MK_X86)
  mk_isa_kernel(csrc/kernels/f32-dwconv/f32_dwconv_avx2.cpp "${MK_FLAGS_AVX2}")
  mk_isa_kernel(csrc/kernels/f32-dwconv/f32_dwconv_avx512.cpp "${MK_FLAGS_AVX512}")
elseif(MK_ARM64)
  mk_isa_kernel(csrc/kernels/f32-dwconv/f32_dwconv_neon.cpp "${MK_FLAGS_NEON}")
endif()
