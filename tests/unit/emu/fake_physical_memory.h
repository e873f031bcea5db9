// A guest-physical address space over a byte vector, for the emulator's tests: reads outside it are all-ones,
// writes outside it dropped, and both counted.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "emu/memory_access.h"

namespace hako::emu::test {

class FakePhysicalMemory final : public PhysicalMemory {
public:
    explicit FakePhysicalMemory(size_t size) : ram(size, 0) {}

    void read(uint64_t pa, std::span<uint8_t> out) override
    {
        if (!inside(pa, out.size())) {
            ++outside;
            std::fill(out.begin(), out.end(), 0xff);
            return;
        }
        std::memcpy(out.data(), ram.data() + pa, out.size());
    }
    void write(uint64_t pa, std::span<uint8_t const> in) override
    {
        if (!inside(pa, in.size())) {
            ++outside;
            return;
        }
        std::memcpy(ram.data() + pa, in.data(), in.size());
    }
    bool compare_exchange(uint64_t pa, std::span<uint8_t> expected, std::span<uint8_t const> desired) override
    {
        if (!inside(pa, expected.size()) || desired.size() != expected.size()) {
            ++outside;
            return false;
        }
        ++exchanges;
        if (std::memcmp(ram.data() + pa, expected.data(), expected.size()) == 0) {
            std::memcpy(ram.data() + pa, desired.data(), desired.size());
            return true;
        }
        std::memcpy(expected.data(), ram.data() + pa, expected.size());
        return false;
    }

    void put(uint64_t pa, std::vector<uint8_t> const& bytes) { std::copy(bytes.begin(), bytes.end(), ram.begin() + static_cast<ptrdiff_t>(pa)); }
    void put64(uint64_t pa, uint64_t v)
    {
        for (size_t i = 0; i < 8; ++i)
            ram[pa + i] = static_cast<uint8_t>(v >> (8 * i));
    }
    void put32(uint64_t pa, uint32_t v)
    {
        for (size_t i = 0; i < 4; ++i)
            ram[pa + i] = static_cast<uint8_t>(v >> (8 * i));
    }
    uint64_t get64(uint64_t pa) const
    {
        uint64_t v = 0;
        for (size_t i = 8; i-- > 0;)
            v = (v << 8) | ram[pa + i];
        return v;
    }
    uint32_t get32(uint64_t pa) const { return static_cast<uint32_t>(get64(pa)); }
    uint16_t get16(uint64_t pa) const { return static_cast<uint16_t>(ram[pa] | (ram[pa + 1] << 8)); }

    std::vector<uint8_t> ram;
    uint64_t outside { 0 };
    uint64_t exchanges { 0 };

private:
    bool inside(uint64_t pa, size_t n) const { return pa <= ram.size() && n <= ram.size() - pa; }
};

} // namespace hako::emu::test
