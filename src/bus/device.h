// The one device interface: a device answers reads and writes at offsets relative to its base address.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace hako::bus {

/// A port-I/O or MMIO device. Offsets are relative to the start of the range the device was inserted at.
/// A device absorbs every access the guest makes: an unknown register reads as all-ones (open bus) and a
/// write to it is dropped, counted and logged with a rate limit. read() and write() may be called from any
/// vCPU thread at once; a device with state guards it with its own mutex.
class Device {
public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    /// \param offset offset from the range base  \param data bytes to fill (1, 2, 4 or 8 long)
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    /// \param offset offset from the range base  \param data bytes the guest wrote
    virtual void write(uint64_t offset, std::span<uint8_t const> data) = 0;
};

} // namespace hako::bus
