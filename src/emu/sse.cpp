// The data operations of the emulated SSE-family instructions (see sse.h). Lanes are little-endian; signed lanes are
// handled through their unsigned representation so that wrapping arithmetic is defined.
#include "emu/sse.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

namespace hako::emu {

namespace {

template <typename T>
T lane(Xmm const& v, size_t i)
{
    T x;
    std::memcpy(&x, v.data() + i * sizeof(T), sizeof(T));
    return x;
}

template <typename T>
void set_lane(Xmm& v, size_t i, T x)
{
    std::memcpy(v.data() + i * sizeof(T), &x, sizeof(T));
}

/// r[i] = f(a[i], b[i]) over lanes of T.
template <typename T, typename F>
Xmm lanes(Xmm const& a, Xmm const& b, F f)
{
    Xmm r {};
    for (size_t i = 0; i < 16 / sizeof(T); ++i)
        set_lane<T>(r, i, static_cast<T>(f(lane<T>(a, i), lane<T>(b, i))));
    return r;
}

template <typename T>
Xmm add(Xmm const& a, Xmm const& b)
{
    return lanes<T>(a, b, [](T x, T y) { return static_cast<T>(x + y); });
}

template <typename T>
Xmm sub(Xmm const& a, Xmm const& b)
{
    return lanes<T>(a, b, [](T x, T y) { return static_cast<T>(x - y); });
}

/// Saturating add/sub: T is the unsigned lane type, S its signed counterpart (or T itself for unsigned saturation).
template <typename T, typename S>
Xmm saturate(Xmm const& a, Xmm const& b, bool subtract)
{
    return lanes<T>(a, b, [subtract](T x, T y) {
        int64_t const r = subtract ? int64_t(static_cast<S>(x)) - int64_t(static_cast<S>(y))
                                   : int64_t(static_cast<S>(x)) + int64_t(static_cast<S>(y));
        int64_t const lo = std::numeric_limits<S>::min(), hi = std::numeric_limits<S>::max();
        return static_cast<T>(static_cast<S>(std::clamp(r, lo, hi)));
    });
}

template <typename T>
Xmm compare_eq(Xmm const& a, Xmm const& b)
{
    return lanes<T>(a, b, [](T x, T y) { return x == y ? static_cast<T>(~T(0)) : T(0); });
}

template <typename T>
Xmm compare_gt(Xmm const& a, Xmm const& b)
{
    using S = std::make_signed_t<T>;
    return lanes<T>(a, b, [](T x, T y) { return static_cast<S>(x) > static_cast<S>(y) ? static_cast<T>(~T(0)) : T(0); });
}

/// PMIN/PMAX: `S` is the type compared (signed or unsigned), T the lane type.
template <typename T, typename S>
Xmm minmax(Xmm const& a, Xmm const& b, bool max)
{
    return lanes<T>(a, b, [max](T x, T y) {
        bool const x_less = static_cast<S>(x) < static_cast<S>(y);
        return (x_less != max) ? x : y;
    });
}

/// Shifts by the count in the low 64 bits of `count` (logical: zero beyond the lane width; arithmetic: sign fill).
template <typename T>
Xmm shift(Xmm const& a, Xmm const& count, int kind /* 0 left, 1 right logical, 2 right arithmetic */)
{
    uint64_t const n = xmm_low64(count);
    unsigned const bits = sizeof(T) * 8;
    Xmm r {};
    for (size_t i = 0; i < 16 / sizeof(T); ++i) {
        T x = lane<T>(a, i);
        T v;
        if (kind == 2) {
            using S = std::make_signed_t<T>;
            unsigned const s = n >= bits ? bits - 1 : static_cast<unsigned>(n);
            v = static_cast<T>(static_cast<S>(x) >> s);
        } else if (n >= bits) {
            v = 0;
        } else {
            v = kind == 0 ? static_cast<T>(x << n) : static_cast<T>(x >> n);
        }
        set_lane<T>(r, i, v);
    }
    return r;
}

/// PUNPCKL*/PUNPCKH*: interleaves the low (or high) halves' lanes of a and b, a's first.
template <typename T>
Xmm unpack(Xmm const& a, Xmm const& b, bool high)
{
    size_t const n = 16 / sizeof(T);
    size_t const base = high ? n / 2 : 0;
    Xmm r {};
    for (size_t i = 0; i < n / 2; ++i) {
        set_lane<T>(r, 2 * i, lane<T>(a, base + i));
        set_lane<T>(r, 2 * i + 1, lane<T>(b, base + i));
    }
    return r;
}

/// PACKSS*/PACKUS*: narrows a's lanes then b's, saturating. `W` is the wide signed type, `N` the narrow result type.
template <typename W, typename N>
Xmm pack(Xmm const& a, Xmm const& b)
{
    size_t const n = 16 / sizeof(W);
    Xmm r {};
    auto narrow = [](W x) {
        int64_t const lo = std::numeric_limits<N>::min(), hi = std::numeric_limits<N>::max();
        return static_cast<N>(std::clamp(int64_t(x), lo, hi));
    };
    for (size_t i = 0; i < n; ++i) {
        set_lane<N>(r, i, narrow(static_cast<W>(lane<std::make_unsigned_t<W>>(a, i))));
        set_lane<N>(r, n + i, narrow(static_cast<W>(lane<std::make_unsigned_t<W>>(b, i))));
    }
    return r;
}

Xmm bytes_shift(Xmm const& a, unsigned n, bool left)
{
    Xmm r {};
    if (n > 15)
        return r;
    for (size_t i = 0; i < 16; ++i) {
        if (left) {
            if (i >= n)
                r[i] = a[i - n];
        } else if (i + n < 16) {
            r[i] = a[i + n];
        }
    }
    return r;
}

Xmm pshufd(Xmm const& s, uint8_t imm)
{
    Xmm r {};
    for (size_t i = 0; i < 4; ++i)
        set_lane<uint32_t>(r, i, lane<uint32_t>(s, (imm >> (2 * i)) & 3));
    return r;
}

/// PSHUFLW (high = false) / PSHUFHW: shuffles the words of one half, copies the other.
Xmm pshufw_half(Xmm const& s, uint8_t imm, bool high)
{
    Xmm r = s;
    size_t const base = high ? 4 : 0;
    for (size_t i = 0; i < 4; ++i)
        set_lane<uint16_t>(r, base + i, lane<uint16_t>(s, base + ((imm >> (2 * i)) & 3)));
    return r;
}

Xmm pshufb(Xmm const& a, Xmm const& b)
{
    Xmm r {};
    for (size_t i = 0; i < 16; ++i)
        r[i] = (b[i] & 0x80) ? 0 : a[b[i] & 15];
    return r;
}

Xmm palignr(Xmm const& dst, Xmm const& src, uint8_t imm)
{
    // The 32-byte value dst:src (dst high) shifted right by imm bytes; the low 16 bytes.
    std::array<uint8_t, 32> cat {};
    std::copy(src.begin(), src.end(), cat.begin());
    std::copy(dst.begin(), dst.end(), cat.begin() + 16);
    Xmm r {};
    for (size_t i = 0; i < 16; ++i)
        r[i] = imm + i < 32 ? cat[imm + i] : 0;
    return r;
}

Xmm shufps(Xmm const& dst, Xmm const& src, uint8_t imm)
{
    Xmm r {};
    set_lane<uint32_t>(r, 0, lane<uint32_t>(dst, imm & 3));
    set_lane<uint32_t>(r, 1, lane<uint32_t>(dst, (imm >> 2) & 3));
    set_lane<uint32_t>(r, 2, lane<uint32_t>(src, (imm >> 4) & 3));
    set_lane<uint32_t>(r, 3, lane<uint32_t>(src, (imm >> 6) & 3));
    return r;
}

Xmm pclmulqdq(Xmm const& dst, Xmm const& src, uint8_t imm)
{
    uint64_t const a = lane<uint64_t>(dst, (imm & 0x01) ? 1 : 0);
    uint64_t const b = lane<uint64_t>(src, (imm & 0x10) ? 1 : 0);
    uint64_t lo = 0, hi = 0;
    for (unsigned i = 0; i < 64; ++i) {
        if (!((b >> i) & 1))
            continue;
        lo ^= a << i;
        if (i != 0)
            hi ^= a >> (64 - i);
    }
    Xmm r {};
    set_lane<uint64_t>(r, 0, lo);
    set_lane<uint64_t>(r, 1, hi);
    return r;
}

template <typename T>
Xmm mul_low(Xmm const& a, Xmm const& b)
{
    // Multiplies in uint64_t so that no promoted int overflows.
    return lanes<T>(a, b, [](T x, T y) { return static_cast<T>(uint64_t(x) * uint64_t(y)); });
}

Xmm pmulhw(Xmm const& a, Xmm const& b, bool is_signed)
{
    return lanes<uint16_t>(a, b, [is_signed](uint16_t x, uint16_t y) {
        if (is_signed)
            return static_cast<uint16_t>(static_cast<uint32_t>(int32_t(int16_t(x)) * int32_t(int16_t(y))) >> 16);
        return static_cast<uint16_t>((uint32_t(x) * uint32_t(y)) >> 16);
    });
}

Xmm pmuludq(Xmm const& a, Xmm const& b)
{
    Xmm r {};
    for (size_t i = 0; i < 2; ++i)
        set_lane<uint64_t>(r, i, uint64_t(lane<uint32_t>(a, 2 * i)) * uint64_t(lane<uint32_t>(b, 2 * i)));
    return r;
}

Xmm pmaddwd(Xmm const& a, Xmm const& b)
{
    Xmm r {};
    for (size_t i = 0; i < 4; ++i) {
        int64_t const s = int64_t(int16_t(lane<uint16_t>(a, 2 * i))) * int16_t(lane<uint16_t>(b, 2 * i))
            + int64_t(int16_t(lane<uint16_t>(a, 2 * i + 1))) * int16_t(lane<uint16_t>(b, 2 * i + 1));
        set_lane<uint32_t>(r, i, static_cast<uint32_t>(s)); // wraps only for 0x8000*0x8000*2, as the processor does
    }
    return r;
}

template <typename T>
Xmm average(Xmm const& a, Xmm const& b)
{
    return lanes<T>(a, b, [](T x, T y) { return static_cast<T>((uint32_t(x) + uint32_t(y) + 1) >> 1); });
}

Xmm psadbw(Xmm const& a, Xmm const& b)
{
    Xmm r {};
    for (size_t h = 0; h < 2; ++h) {
        uint64_t sum = 0;
        for (size_t i = 0; i < 8; ++i) {
            uint8_t const x = a[8 * h + i], y = b[8 * h + i];
            sum += x > y ? x - y : y - x;
        }
        set_lane<uint64_t>(r, h, sum);
    }
    return r;
}

Xmm bitwise(Xmm const& a, Xmm const& b, int op /* 0 and, 1 andn, 2 or, 3 xor */)
{
    Xmm r {};
    for (size_t i = 0; i < 16; ++i) {
        switch (op) {
        case 0: r[i] = a[i] & b[i]; break;
        case 1: r[i] = static_cast<uint8_t>(~a[i] & b[i]); break;
        case 2: r[i] = a[i] | b[i]; break;
        default: r[i] = a[i] ^ b[i]; break;
        }
    }
    return r;
}

} // namespace

Xmm xmm_from_low(uint64_t value, unsigned bytes)
{
    Xmm r {};
    for (unsigned i = 0; i < bytes && i < 8; ++i)
        r[i] = static_cast<uint8_t>(value >> (8 * i));
    return r;
}

uint64_t xmm_low64(Xmm const& v) { return lane<uint64_t>(v, 0); }

bool sse_computes(ZydisMnemonic mnemonic)
{
    Xmm const zero {};
    return sse_compute(mnemonic, zero, zero, 0).has_value();
}

uint32_t crc32c_update(uint32_t crc, uint64_t data, unsigned size)
{
    for (unsigned i = 0; i < size && i < 8; ++i) {
        crc ^= static_cast<uint8_t>(data >> (8 * i));
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return crc;
}

std::optional<Xmm> sse_compute(ZydisMnemonic m, Xmm const& d, Xmm const& s, uint8_t imm)
{
    switch (m) {
    // Bitwise (the packed-single/double forms act on the bits alike).
    case ZYDIS_MNEMONIC_PAND: case ZYDIS_MNEMONIC_ANDPS: case ZYDIS_MNEMONIC_ANDPD: return bitwise(d, s, 0);
    case ZYDIS_MNEMONIC_PANDN: case ZYDIS_MNEMONIC_ANDNPS: case ZYDIS_MNEMONIC_ANDNPD: return bitwise(d, s, 1);
    case ZYDIS_MNEMONIC_POR: case ZYDIS_MNEMONIC_ORPS: case ZYDIS_MNEMONIC_ORPD: return bitwise(d, s, 2);
    case ZYDIS_MNEMONIC_PXOR: case ZYDIS_MNEMONIC_XORPS: case ZYDIS_MNEMONIC_XORPD: return bitwise(d, s, 3);
    // Wrapping add and subtract.
    case ZYDIS_MNEMONIC_PADDB: return add<uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PADDW: return add<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PADDD: return add<uint32_t>(d, s);
    case ZYDIS_MNEMONIC_PADDQ: return add<uint64_t>(d, s);
    case ZYDIS_MNEMONIC_PSUBB: return sub<uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PSUBW: return sub<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PSUBD: return sub<uint32_t>(d, s);
    case ZYDIS_MNEMONIC_PSUBQ: return sub<uint64_t>(d, s);
    // Saturating add and subtract.
    case ZYDIS_MNEMONIC_PADDSB: return saturate<uint8_t, int8_t>(d, s, false);
    case ZYDIS_MNEMONIC_PADDSW: return saturate<uint16_t, int16_t>(d, s, false);
    case ZYDIS_MNEMONIC_PADDUSB: return saturate<uint8_t, uint8_t>(d, s, false);
    case ZYDIS_MNEMONIC_PADDUSW: return saturate<uint16_t, uint16_t>(d, s, false);
    case ZYDIS_MNEMONIC_PSUBSB: return saturate<uint8_t, int8_t>(d, s, true);
    case ZYDIS_MNEMONIC_PSUBSW: return saturate<uint16_t, int16_t>(d, s, true);
    case ZYDIS_MNEMONIC_PSUBUSB: return saturate<uint8_t, uint8_t>(d, s, true);
    case ZYDIS_MNEMONIC_PSUBUSW: return saturate<uint16_t, uint16_t>(d, s, true);
    // Multiplies.
    case ZYDIS_MNEMONIC_PMULLW: return mul_low<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PMULLD: return mul_low<uint32_t>(d, s);
    case ZYDIS_MNEMONIC_PMULHW: return pmulhw(d, s, true);
    case ZYDIS_MNEMONIC_PMULHUW: return pmulhw(d, s, false);
    case ZYDIS_MNEMONIC_PMULUDQ: return pmuludq(d, s);
    case ZYDIS_MNEMONIC_PMADDWD: return pmaddwd(d, s);
    case ZYDIS_MNEMONIC_PCLMULQDQ: return pclmulqdq(d, s, imm);
    // Averages, sums of absolute differences.
    case ZYDIS_MNEMONIC_PAVGB: return average<uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PAVGW: return average<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PSADBW: return psadbw(d, s);
    // Compares.
    case ZYDIS_MNEMONIC_PCMPEQB: return compare_eq<uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPEQW: return compare_eq<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPEQD: return compare_eq<uint32_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPEQQ: return compare_eq<uint64_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPGTB: return compare_gt<uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPGTW: return compare_gt<uint16_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPGTD: return compare_gt<uint32_t>(d, s);
    case ZYDIS_MNEMONIC_PCMPGTQ: return compare_gt<uint64_t>(d, s);
    // Minimum and maximum.
    case ZYDIS_MNEMONIC_PMINUB: return minmax<uint8_t, uint8_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXUB: return minmax<uint8_t, uint8_t>(d, s, true);
    case ZYDIS_MNEMONIC_PMINSB: return minmax<uint8_t, int8_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXSB: return minmax<uint8_t, int8_t>(d, s, true);
    case ZYDIS_MNEMONIC_PMINUW: return minmax<uint16_t, uint16_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXUW: return minmax<uint16_t, uint16_t>(d, s, true);
    case ZYDIS_MNEMONIC_PMINSW: return minmax<uint16_t, int16_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXSW: return minmax<uint16_t, int16_t>(d, s, true);
    case ZYDIS_MNEMONIC_PMINUD: return minmax<uint32_t, uint32_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXUD: return minmax<uint32_t, uint32_t>(d, s, true);
    case ZYDIS_MNEMONIC_PMINSD: return minmax<uint32_t, int32_t>(d, s, false);
    case ZYDIS_MNEMONIC_PMAXSD: return minmax<uint32_t, int32_t>(d, s, true);
    // Shifts (count from an immediate or from the low quadword of an XMM register/m128).
    case ZYDIS_MNEMONIC_PSLLW: return shift<uint16_t>(d, s, 0);
    case ZYDIS_MNEMONIC_PSLLD: return shift<uint32_t>(d, s, 0);
    case ZYDIS_MNEMONIC_PSLLQ: return shift<uint64_t>(d, s, 0);
    case ZYDIS_MNEMONIC_PSRLW: return shift<uint16_t>(d, s, 1);
    case ZYDIS_MNEMONIC_PSRLD: return shift<uint32_t>(d, s, 1);
    case ZYDIS_MNEMONIC_PSRLQ: return shift<uint64_t>(d, s, 1);
    case ZYDIS_MNEMONIC_PSRAW: return shift<uint16_t>(d, s, 2);
    case ZYDIS_MNEMONIC_PSRAD: return shift<uint32_t>(d, s, 2);
    case ZYDIS_MNEMONIC_PSLLDQ: return bytes_shift(d, static_cast<unsigned>(std::min<uint64_t>(xmm_low64(s), 16)), true);
    case ZYDIS_MNEMONIC_PSRLDQ: return bytes_shift(d, static_cast<unsigned>(std::min<uint64_t>(xmm_low64(s), 16)), false);
    // Shuffles, unpacks, packs.
    case ZYDIS_MNEMONIC_PSHUFD: return pshufd(s, imm);
    case ZYDIS_MNEMONIC_PSHUFLW: return pshufw_half(s, imm, false);
    case ZYDIS_MNEMONIC_PSHUFHW: return pshufw_half(s, imm, true);
    case ZYDIS_MNEMONIC_PSHUFB: return pshufb(d, s);
    case ZYDIS_MNEMONIC_PALIGNR: return palignr(d, s, imm);
    case ZYDIS_MNEMONIC_SHUFPS: return shufps(d, s, imm);
    case ZYDIS_MNEMONIC_PUNPCKLBW: return unpack<uint8_t>(d, s, false);
    case ZYDIS_MNEMONIC_PUNPCKLWD: return unpack<uint16_t>(d, s, false);
    case ZYDIS_MNEMONIC_PUNPCKLDQ: case ZYDIS_MNEMONIC_UNPCKLPS: return unpack<uint32_t>(d, s, false);
    case ZYDIS_MNEMONIC_PUNPCKLQDQ: case ZYDIS_MNEMONIC_UNPCKLPD: return unpack<uint64_t>(d, s, false);
    case ZYDIS_MNEMONIC_PUNPCKHBW: return unpack<uint8_t>(d, s, true);
    case ZYDIS_MNEMONIC_PUNPCKHWD: return unpack<uint16_t>(d, s, true);
    case ZYDIS_MNEMONIC_PUNPCKHDQ: case ZYDIS_MNEMONIC_UNPCKHPS: return unpack<uint32_t>(d, s, true);
    case ZYDIS_MNEMONIC_PUNPCKHQDQ: case ZYDIS_MNEMONIC_UNPCKHPD: return unpack<uint64_t>(d, s, true);
    case ZYDIS_MNEMONIC_PACKSSWB: return pack<int16_t, int8_t>(d, s);
    case ZYDIS_MNEMONIC_PACKUSWB: return pack<int16_t, uint8_t>(d, s);
    case ZYDIS_MNEMONIC_PACKSSDW: return pack<int32_t, int16_t>(d, s);
    case ZYDIS_MNEMONIC_PACKUSDW: return pack<int32_t, uint16_t>(d, s);
    default: return std::nullopt;
    }
}

} // namespace hako::emu
