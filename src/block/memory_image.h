// MemoryImage: a BlockDevice over a byte vector, for unit tests and fuzz targets of disk controllers (no file, no
// lock), and for stores that live only as long as the VM (--firmware uefi without vars=: the variable flash). Range checks as every BlockDevice: a request leaving the image fails and touches nothing. Reads and writes
// can be made to fail (fail_io) to test a controller's error paths.
#pragma once

#include <algorithm>
#include <vector>

#include "base/checked.h"
#include "block/block_device.h"

namespace hako::block {

class MemoryImage final : public BlockDevice {
public:
    explicit MemoryImage(std::vector<uint8_t> bytes, ReadOnly ro = ReadOnly::No)
        : m_bytes(std::move(bytes)), m_read_only(ro == ReadOnly::Yes)
    {
    }

    std::string const& path() const override { return m_path; }
    bool read_only() const override { return m_read_only; }
    uint64_t size_bytes() const override { return m_bytes.size(); }
    std::vector<uint8_t>& bytes() { return m_bytes; }
    bool fail_io { false };
    uint64_t writes { 0 };
    uint64_t flushes { 0 };

    Result<void> read_vectored(uint64_t offset, std::span<std::span<uint8_t> const> bufs) override
    {
        uint64_t len = 0;
        for (auto const& b : bufs)
            len += b.size();
        TRY(check(offset, len));
        for (auto const& b : bufs) {
            std::copy_n(m_bytes.begin() + static_cast<std::ptrdiff_t>(offset), b.size(), b.begin());
            offset += b.size();
        }
        return ok();
    }
    Result<void> write_vectored(uint64_t offset, std::span<std::span<uint8_t const> const> bufs) override
    {
        if (m_read_only)
            return Error(ErrorKind::Permission, "Read-only image");
        uint64_t len = 0;
        for (auto const& b : bufs)
            len += b.size();
        TRY(check(offset, len));
        for (auto const& b : bufs) {
            std::copy(b.begin(), b.end(), m_bytes.begin() + static_cast<std::ptrdiff_t>(offset));
            offset += b.size();
        }
        ++writes;
        return ok();
    }
    Result<void> flush() override
    {
        ++flushes;
        return fail_io ? Error(ErrorKind::Io, "Injected failure") : ok();
    }
    Result<DiscardOutcome> discard(uint64_t, uint64_t) override { return DiscardOutcome::Ignored; }
    Result<ZeroOutcome> write_zeroes(uint64_t offset, uint64_t len, MayUnmap) override
    {
        TRY(check(offset, len));
        std::fill_n(m_bytes.begin() + static_cast<std::ptrdiff_t>(offset), len, uint8_t { 0 });
        return ZeroOutcome::Written;
    }

private:
    Result<void> check(uint64_t offset, uint64_t len) const
    {
        if (fail_io)
            return Error(ErrorKind::Io, "Injected failure");
        if (!range_within(offset, len, m_bytes.size()))
            return Error(ErrorKind::OutOfRange, "Beyond the image");
        return ok();
    }

    std::vector<uint8_t> m_bytes;
    bool m_read_only;
    std::string m_path { "memory" };
};

} // namespace hako::block
