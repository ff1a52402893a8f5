// Instruction-set levels, the process-wide active level, and the forced-ISA switch.
//
// The active level is chosen once (best supported, or MOBILEKERNELS_ISA) and can be changed
// with set_isa(). Each kernel family resolves its kernel by walking from the active level
// down its fallback chain (e.g. amx -> avx512vnni -> avx512 -> avx2 -> scalar) to the first
// level it has a kernel for, so forcing "avx2" on an AVX-512 machine really runs AVX2 code.
#pragma once
#include <string>
#include <vector>

namespace mk {

enum class Isa : int {
  scalar = 0,
  avx2,
  avxvnni,
  avx512,
  avx512vnni,
  amx,
  neon,
  neondot,
  neoni8mm,
  count
};

const char* isa_name(Isa isa);
// Throws std::invalid_argument on an unknown name ("auto" resolves to best_isa()).
Isa isa_from_name(const std::string& name);
// The level one step down the fallback chain (scalar falls back to itself).
Isa isa_fallback(Isa isa);
// Was code for this level compiled into the binary (target architecture)?
bool isa_compiled(Isa isa);
// Can this CPU execute it (and was it compiled)?
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();
Isa best_isa();

// The active level; first call reads MOBILEKERNELS_ISA (throws std::invalid_argument on a bad
// or unsupported value).
Isa active_isa();
// Force a level by name ("auto" = best). Throws std::invalid_argument if unknown or unsupported.
void set_isa(const std::string& name);

// Walk the fallback chain from `from` to the first level for which has(level) is true.
template <class Has>
Isa resolve_isa(Isa from, Has has) {
  Isa cur = from;
  while (!has(cur) && cur != Isa::scalar) cur = isa_fallback(cur);
  return cur;
}

// The entry of a kernel table (an array of structs with an `isa` member, scalar entry first) for
// `level`: the first level of its fallback chain the table has. One rule for every family.
template <class Table>
const auto& kernel_for(const Table& table, Isa level) {
  const Isa isa = resolve_isa(level, [&](Isa i) {
    for (const auto& k : table)
      if (k.isa == i) return true;
    return false;
  });
  for (const auto& k : table)
    if (k.isa == isa) return k;
  return table[0];
}

}  // namespace mk
