// A test bench for IdeChannel: guest RAM over a heap buffer, in-memory images, a fake interrupt line that records
// its level and counts rising edges, and register helpers as a driver would use them.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "block/memory_image.h"
#include "devices/ide/ata_regs.h"
#include "devices/ide/ide_channel.h"

namespace hako::test {

class EdgeIrq final : public bus::IrqLine {
public:
    void set_level(bool asserted) override
    {
        if (asserted && !level)
            ++edges;
        level = asserted;
    }
    bool level { false };
    int edges { 0 };
};

/// An image whose 512-byte sector n starts with n (little-endian u32) and is filled with (n + i) bytes after it.
inline std::vector<uint8_t> sector_pattern(size_t bytes, size_t sector_size = 512)
{
    std::vector<uint8_t> v(bytes);
    for (size_t i = 0; i < bytes; ++i) {
        size_t const s = i / sector_size;
        size_t const o = i % sector_size;
        v[i] = o < 4 ? static_cast<uint8_t>(s >> (8 * o)) : static_cast<uint8_t>(s + o);
    }
    return v;
}

class IdeBench {
public:
    static constexpr size_t RAM_SIZE = 0x100000;

    IdeBench() : ram(RAM_SIZE), irq(std::make_shared<EdgeIrq>())
    {
        auto m = memory::GuestMemory::from_buffers({ { memory::GuestAddr(0), std::span<uint8_t>(ram) } });
        EXPECT_TRUE(m.has_value());
        mem = std::make_unique<memory::GuestMemory>(std::move(*m));
        channel = std::make_unique<devices::ide::IdeChannel>(*mem, irq);
    }

    std::shared_ptr<block::MemoryImage> attach(unsigned unit, devices::ide::DriveKind kind, size_t bytes,
                                               block::ReadOnly ro = block::ReadOnly::No)
    {
        auto img = std::make_shared<block::MemoryImage>(
            sector_pattern(bytes, kind == devices::ide::DriveKind::Cdrom ? 2048 : 512), ro);
        channel->attach(unit, std::make_shared<devices::ide::IdeDrive>(kind, img, "", unit));
        return img;
    }

    void out(uint8_t reg, uint8_t v)
    {
        std::array<uint8_t, 1> b { v };
        channel->command_write(reg, b);
    }
    uint8_t in(uint8_t reg)
    {
        std::array<uint8_t, 1> b {};
        channel->command_read(reg, b);
        return b[0];
    }
    uint16_t in16()
    {
        std::array<uint8_t, 2> b {};
        channel->command_read(devices::ide::REG_DATA, b);
        return static_cast<uint16_t>(b[0] | b[1] << 8);
    }
    void out16(uint16_t v)
    {
        std::array<uint8_t, 2> b { static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8) };
        channel->command_write(devices::ide::REG_DATA, b);
    }
    std::vector<uint8_t> read_data(size_t bytes)
    {
        std::vector<uint8_t> out;
        for (size_t i = 0; i < bytes; i += 2) {
            uint16_t const w = in16();
            out.push_back(static_cast<uint8_t>(w));
            out.push_back(static_cast<uint8_t>(w >> 8));
        }
        return out;
    }
    void write_data(std::vector<uint8_t> const& bytes)
    {
        for (size_t i = 0; i + 1 < bytes.size(); i += 2)
            out16(static_cast<uint16_t>(bytes[i] | bytes[i + 1] << 8));
    }
    /// Selects `unit` in LBA mode and writes an LBA28 address and count.
    void lba28(unsigned unit, uint32_t lba, uint8_t count)
    {
        out(devices::ide::REG_DEVICE, static_cast<uint8_t>(0xe0 | unit << 4 | (lba >> 24 & 0xf)));
        out(devices::ide::REG_COUNT, count);
        out(devices::ide::REG_LBA_LOW, static_cast<uint8_t>(lba));
        out(devices::ide::REG_LBA_MID, static_cast<uint8_t>(lba >> 8));
        out(devices::ide::REG_LBA_HIGH, static_cast<uint8_t>(lba >> 16));
    }
    /// The 48-bit form: high bytes first, as the HOB registers take them.
    void lba48(unsigned unit, uint64_t lba, uint16_t count)
    {
        out(devices::ide::REG_DEVICE, static_cast<uint8_t>(0x40 | unit << 4));
        out(devices::ide::REG_COUNT, static_cast<uint8_t>(count >> 8));
        out(devices::ide::REG_LBA_LOW, static_cast<uint8_t>(lba >> 24));
        out(devices::ide::REG_LBA_MID, static_cast<uint8_t>(lba >> 32));
        out(devices::ide::REG_LBA_HIGH, static_cast<uint8_t>(lba >> 40));
        out(devices::ide::REG_COUNT, static_cast<uint8_t>(count));
        out(devices::ide::REG_LBA_LOW, static_cast<uint8_t>(lba));
        out(devices::ide::REG_LBA_MID, static_cast<uint8_t>(lba >> 8));
        out(devices::ide::REG_LBA_HIGH, static_cast<uint8_t>(lba >> 16));
    }
    void bm_out(uint8_t reg, uint32_t v, size_t len)
    {
        std::array<uint8_t, 4> b { static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
            static_cast<uint8_t>(v >> 24) };
        channel->bus_master_write(reg, std::span<uint8_t const>(b).first(len));
    }
    uint8_t bm_in(uint8_t reg)
    {
        std::array<uint8_t, 1> b {};
        channel->bus_master_read(reg, b);
        return b[0];
    }
    /// Writes a PRD entry at `at`.
    void prd(uint32_t at, uint32_t addr, uint32_t count, bool eot)
    {
        uint32_t const flags = (count & 0xffff) | (eot ? devices::ide::PRD_EOT : 0);
        for (size_t i = 0; i < 4; ++i) {
            ram[at + i] = static_cast<uint8_t>(addr >> (8 * i));
            ram[at + 4 + i] = static_cast<uint8_t>(flags >> (8 * i));
        }
    }
    /// Sends a 12-byte packet to the selected ATAPI device with a byte count limit.
    void packet(std::array<uint8_t, 12> const& cdb, uint16_t byte_limit, bool dma = false)
    {
        out(devices::ide::REG_FEATURES, dma ? 1 : 0);
        out(devices::ide::REG_LBA_MID, static_cast<uint8_t>(byte_limit));
        out(devices::ide::REG_LBA_HIGH, static_cast<uint8_t>(byte_limit >> 8));
        out(devices::ide::REG_COMMAND, devices::ide::cmd::PACKET);
        write_data(std::vector<uint8_t>(cdb.begin(), cdb.end()));
    }
    /// Reads an ATAPI PIO data-in phase to its end, chunk by chunk; returns the data and records chunk sizes.
    std::vector<uint8_t> atapi_read_all(std::vector<size_t>* chunks = nullptr)
    {
        std::vector<uint8_t> data;
        for (int guard = 0; guard < 10000 && (in(devices::ide::REG_STATUS) & devices::ide::ST_DRQ); ++guard) {
            EXPECT_EQ(in(devices::ide::REG_COUNT), devices::ide::IR_IO);
            size_t const n = static_cast<size_t>(in(devices::ide::REG_LBA_MID) | in(devices::ide::REG_LBA_HIGH) << 8);
            if (chunks)
                chunks->push_back(n);
            auto part = read_data(n);
            part.resize(n);
            data.insert(data.end(), part.begin(), part.end());
        }
        return data;
    }

    std::vector<uint8_t> ram;
    std::unique_ptr<memory::GuestMemory> mem;
    std::shared_ptr<EdgeIrq> irq;
    std::unique_ptr<devices::ide::IdeChannel> channel;
};

} // namespace hako::test
