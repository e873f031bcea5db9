// emu::sse_compute(): the data operations of the SSE-family integer and bitwise instructions the userspace emulator
// finishes (Intel SDM vol. 2 instruction pages; SSE2, SSSE3, SSE4.1, PCLMULQDQ), as pure functions on 128-bit values.
//
// emulator.cpp fetches the operands (XMM registers from the XSAVE image, general registers, memory with the
// alignment rules of legacy SSE encodings) and writes the result back; this file only computes. Only the legacy
// (non-VEX) 128-bit forms exist here: MMX forms and VEX/EVEX encodings are reported as unsupported by the caller.
#pragma once

#include <Zydis/Zydis.h>

#include <array>
#include <cstdint>
#include <optional>

namespace hako::emu {

/// An XMM value, little-endian bytes.
using Xmm = std::array<uint8_t, 16>;

/// dst OP= src for the two-operand instructions whose destination is an XMM register (PADDD xmm1, xmm2/m128 and so
/// on; for the shifts `src` holds the count, from an immediate or an XMM register/m128; PSHUFD/PSHUFLW/PSHUFHW take
/// only `src` and `imm`). nullopt when `mnemonic` is not one of them.
[[nodiscard]] std::optional<Xmm> sse_compute(ZydisMnemonic mnemonic, Xmm const& dst, Xmm const& src, uint8_t imm);

/// Whether sse_compute() knows `mnemonic`.
[[nodiscard]] bool sse_computes(ZydisMnemonic mnemonic);

/// CRC32 (SSE4.2): the CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `size` bytes of `data`
/// (little-endian), continuing from `crc`. No final inversion, as the instruction.
[[nodiscard]] uint32_t crc32c_update(uint32_t crc, uint64_t data, unsigned size);

/// Zero-extends the low `bytes` bytes of a value into an XMM value.
[[nodiscard]] Xmm xmm_from_low(uint64_t value, unsigned bytes);

/// The low 64 bits of an XMM value.
[[nodiscard]] uint64_t xmm_low64(Xmm const& v);

} // namespace hako::emu
